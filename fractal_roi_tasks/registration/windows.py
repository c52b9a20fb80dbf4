"""Where to cut the full-resolution windows that refine a coarse shift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.registration.inputs import MIN_OVERLAP_PX, yx_image
from fractal_roi_tasks.translation.boxes import moved
from fractal_roi_tasks.translation.intensity import clip_to_quantiles


@dataclass(frozen=True)
class RefinementWindows:
    """Where to cut the two windows of `refine_shift`, in full-resolution pixels.

    Attributes:
        reference: (y, x) slices of the reference window, relative to the
            first pixel of the ROI.
        moving: (y, x) slices of the moving window, same size, relative to
            the first pixel of the moving acquisition's ROI.
        offset_px: (y, x) whole pixels the moving window is cut further
            than the reference window (the rounded coarse displacement).
    """

    reference: tuple[slice, slice]
    moving: tuple[slice, slice]
    offset_px: tuple[int, int]


def refinement_windows(
    reference_coarse: np.ndarray,
    shape_px: Sequence[int],
    shift_px: Sequence[float],
    *,
    factor: int,
    window_px: int = 96,
) -> RefinementWindows | None:
    """A window of the ROI with texture, seen by both acquisitions at ``shift_px``.

    The window is ``window_px`` square (smaller where the ROI, less the
    shift, is smaller), lies inside the ROI in both acquisitions, and among
    those positions holds the most detail of the reference (squared
    gradients of ``reference_coarse``, clipped to its 1% and 99.9%
    intensity quantiles, summed over the window), so a field with a few
    nuclei is refined on them rather than on background.

    Args:
        reference_coarse: (Y, X) or (Z, Y, X) the reference ROI at the coarse
            level (as given to `coarse_shift`).
        shape_px: ((z,) y, x) shape of the ROI at full resolution.
        shift_px: ((z,) y, x) shift found by `coarse_shift`, full-resolution
            pixels, fractal-tasks-core's sign.
        factor: pixel size of the coarse level over the full-resolution one.
        window_px: side of the window in full-resolution pixels.

    Returns:
        A `RefinementWindows`, or None when the ROI and its shifted copy
        overlap by less than 32 pixels along y or x.

    >>> windows = refinement_windows(np.zeros((128, 128)), (512, 512), (-10.2, 3.7), factor=4)
    >>> windows.offset_px, windows.reference[0].stop - windows.reference[0].start
    ((10, -4), 96)
    """
    offset = tuple(int(round(-float(s))) for s in list(shift_px)[-2:])
    sizes, ranges = [], []
    for n, o in zip(list(shape_px)[-2:], offset):
        size = min(int(window_px), int(n) - abs(o))
        if size < 2 * MIN_OVERLAP_PX:
            return None
        sizes.append(size)
        ranges.append((max(0, -o), min(n - size, n - size - o)))
    guide = yx_image(clip_to_quantiles(np.asarray(reference_coarse), (0.01, 0.999))[0])
    energy = np.diff(guide, axis=0)[:, :-1] ** 2
    energy += np.diff(guide, axis=1)[:-1, :] ** 2
    # Candidate window starts, in coarse pixels, and the window side there.
    coarse_sizes = [max(1, size // factor) for size in sizes]
    firsts = [-(-low // factor) for low, _ in ranges]
    lasts = [min(high // factor, n - c) for (_, high), n, c in zip(ranges, energy.shape, coarse_sizes)]
    if all(last >= first for first, last in zip(firsts, lasts)):
        (y0, x0), (y1, x1), (hy, hx) = firsts, lasts, coarse_sizes
        # Summed-area table of the part the candidates cover: box sums by 4 lookups.
        integral = np.zeros((y1 + hy - y0 + 1, x1 + hx - x0 + 1))
        np.cumsum(energy[y0 : y1 + hy, x0 : x1 + hx], axis=0, dtype=np.float64, out=integral[1:, 1:])
        np.cumsum(integral[1:, 1:], axis=1, out=integral[1:, 1:])
        box = integral[hy:, hx:] - integral[:-hy, hx:] - integral[hy:, :-hx] + integral[:-hy, :-hx]
        iy, ix = np.unravel_index(int(np.argmax(box)), box.shape)
        starts = [(y0 + int(iy)) * factor, (x0 + int(ix)) * factor]
    else:
        starts = [(low + high) // 2 for low, high in ranges]
    starts = [min(max(s, low), high) for s, (low, high) in zip(starts, ranges)]
    reference = tuple(slice(s, s + size) for s, size in zip(starts, sizes))
    return RefinementWindows(reference, moved(reference, offset), offset)
