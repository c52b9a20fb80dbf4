"""Whole-pixel matches: phase correlation of whole images, masked NCC of overlaps.

Displacements here are those of the *moving content*, (dy, dx) in pixels:
`coarse_displacement` (registration's coarse step) finds the displacement of
``moving`` against ``reference`` by phase correlation over whole binned
images; `masked_ncc_match` (stitching's first step) scores every candidate
displacement of two windows by the normalised cross-correlation over
exactly the pixels they share at that displacement.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from fractal_roi_tasks.translation.peak import correlation_grid, grid_peak, newton_maximum
from fractal_roi_tasks.translation.spectra import band, fast_shape

NOISE_FLOOR_FACTOR = 4.0
"""A frequency counts in the phase correlation when both images' power there is
above this many times their noise floor."""

MIN_COUNTED_FREQUENCIES = 64
"""At least this many frequencies (the strongest) count, whatever the noise floor."""


@functools.lru_cache(maxsize=16)
def _hann(shape: tuple[int, int]) -> np.ndarray:
    window = np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)
    window.flags.writeable = False
    return window


def coarse_displacement(
    reference: np.ndarray,
    moving: np.ndarray,
    max_shift: Sequence[float],
    band_px: tuple[float, float],
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Displacement of ``moving`` against ``reference``, both small (binned) (Y, X) images.

    The coarse step of `estimate_shift`. Both images lose their mean and get
    a Hann window; the maximum of the phase correlation (the inverse FFT of
    the normalised cross-power spectrum, fractal-tasks-core's method) within
    ``max_shift`` pixels gives whole pixels, robustly for large shifts. Only
    frequencies above both images' noise floor count (`above_noise_floor`):
    in a blurred image the others are noise, which would place the peak. The
    same two spectra then give a band-passed plain cross-correlation whose
    maximum near that pixel, found by Newton's method, is a sub-pixel
    estimate (good to a few tenths of a binned pixel) that places the
    windows of the fine step.

    Args:
        reference: (Y, X) float32 image.
        moving: (Y, X) float32 image of the same shape.
        max_shift: largest |displacement| searched per axis, in pixels.
        band_px: the `band` used for the sub-pixel estimate, in these pixels.

    Returns:
        ``(whole, subpixel, quality)``: (dy, dx) in pixels of these images,
        and the normalised band-passed cross-correlation at ``subpixel`` (in
        [-1, 1]; the windowed images are compared whole, so it is below the
        fine step's quality when the shift is large).

    >>> rng = np.random.default_rng(0)
    >>> ref = rng.random((64, 64)).astype(np.float32)
    >>> coarse_displacement(ref, np.roll(ref, (3, -5), axis=(0, 1)), (20, 20), (0, 0))[0]
    (3, -5)
    """
    shape = reference.shape
    both = np.stack([reference, moving]).astype(np.float32, copy=False)
    both -= both.mean(axis=(1, 2), keepdims=True)
    both *= _hann(shape)
    fa, fb = sp_fft.rfft2(both)
    cross = fb * np.conj(fa)
    magnitude = np.abs(cross)
    # Phase correlation gives every frequency the same say: where blur has left
    # only noise (the high frequencies of a deep defocus stack's y/x image),
    # noise would place the peak; such frequencies do not count (divided by inf).
    counted = above_noise_floor(fa, fb, shape)
    normalised = cross / np.where(counted, magnitude + np.float32(1e-30), np.float32(np.inf))
    surface = sp_fft.irfft2(normalised, s=shape)
    limit = [min(int(math.floor(m)), n // 2) for m, n in zip(max_shift, shape)]
    if all(2 * m + 1 >= n for m, n in zip(limit, shape)):
        # Every displacement is searched: no need to gather them.
        peak = np.unravel_index(int(np.argmax(surface)), shape)
        whole = tuple(int(i) - n if i > n // 2 else int(i) for i, n in zip(peak, shape))
    else:
        ys = np.arange(-limit[0], limit[0] + 1)
        xs = np.arange(-limit[1], limit[1] + 1)
        values = surface[np.ix_(ys % shape[0], xs % shape[1])]
        iy, ix = np.unravel_index(int(np.argmax(values)), values.shape)
        whole = (int(ys[iy]), int(xs[ix]))
    spectral_band = band(shape, band_px)
    cross_band = spectral_band.crop(cross) * spectral_band.weight
    start = grid_peak(cross_band, spectral_band, whole, (1, 1))
    *subpixel, peak = newton_maximum(cross_band, spectral_band, start, tolerance=1e-2)
    if max(abs(a - b) for a, b in zip(subpixel, whole)) > 1.5:
        subpixel = [float(whole[0]), float(whole[1])]
        at = correlation_grid(cross_band, spectral_band, np.array(subpixel[:1]), np.array(subpixel[1:]))
        peak = float(at[0, 0])
    subpixel = tuple(subpixel)
    energy = float(spectral_band.energy(spectral_band.crop(fa))) * float(
        spectral_band.energy(spectral_band.crop(fb))
    )
    quality = float(np.clip(peak / math.sqrt(energy), -1.0, 1.0)) if energy > 0 else 0.0
    return whole, subpixel, quality


def above_noise_floor(fa: np.ndarray, fb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(Y, X // 2 + 1) bool: the frequencies of two `rfft2` spectra that hold signal.

    Each image's noise floor is the median power of its highest frequencies
    (beyond 3/4 of the Nyquist frequency in y and in x): microscopy images
    lose power with frequency and camera noise does not, so these are mostly
    noise. A frequency counts when both images' power there exceeds
    `NOISE_FLOOR_FACTOR` times their floor; at least the
    `MIN_COUNTED_FREQUENCIES` strongest (weaker image's power over its floor)
    count, so an image with a flat spectrum keeps enough for a peak; an image
    too small for the corner keeps every frequency. ``shape`` is the images'.

    >>> rng = np.random.default_rng(0)
    >>> spectrum = np.fft.rfft2(rng.normal(size=(64, 64)))
    >>> counted = above_noise_floor(spectrum, spectrum, (64, 64))
    >>> bool(counted.sum() >= MIN_COUNTED_FREQUENCIES)
    True
    """
    # In rfft2's layout the corner is one block: the middle rows, the last columns.
    rows = slice(int(math.floor(0.375 * shape[0])) + 1, int(math.ceil(0.625 * shape[0])))
    columns = slice(int(math.floor(0.375 * shape[1])) + 1, None)
    corners = np.stack([fa[rows, columns], fb[rows, columns]]).reshape(2, -1)
    if corners.shape[1] == 0:
        return np.ones(fa.shape, bool)
    floors = np.median(corners.real**2 + corners.imag**2, axis=1)
    # Signal over floor of the weaker of the two images at each frequency.
    ratio = np.minimum(
        (fa.real**2 + fa.imag**2) / max(float(floors[0]), 1e-30),
        (fb.real**2 + fb.imag**2) / max(float(floors[1]), 1e-30),
    )
    counted = ratio > NOISE_FLOOR_FACTOR
    keep = min(MIN_COUNTED_FREQUENCIES, ratio.size)
    if int(np.count_nonzero(counted)) < keep:
        flat = ratio.ravel()
        counted = ratio >= np.partition(flat, flat.size - keep)[flat.size - keep]
    return counted


def summed_area(values: np.ndarray) -> np.ndarray:
    """(Y + 1, X + 1) float64 table whose ``[i, j]`` is the sum of ``values[:i, :j]``.

    >>> summed_area(np.ones((2, 3)))[-1].tolist()
    [0.0, 2.0, 4.0, 6.0]
    """
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.float64)
    np.cumsum(np.cumsum(values, axis=0), axis=1, out=table[1:, 1:])
    return table


def rect_sums(table: np.ndarray, start: list[np.ndarray], stop: list[np.ndarray]) -> np.ndarray:
    """Sums over rectangles ``start[0][i]:stop[0][i]`` x ``start[1][j]:stop[1][j]`` (outer grid).

    ``table`` is a `summed_area` table; the result is (len(start[0]), len(start[1])).

    >>> table = summed_area(np.arange(12.0).reshape(3, 4))
    >>> rect_sums(table, [np.array([0, 1]), np.array([1])], [np.array([2, 3]), np.array([3])]).tolist()
    [[14.0], [30.0]]
    """
    y0, y1 = start[0][:, None], stop[0][:, None]
    x0, x1 = start[1][None, :], stop[1][None, :]
    return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]


@dataclass(frozen=True)
class WholePixelMatch:
    """Whole-pixel result of `masked_ncc_match`.

    Attributes:
        displacement: (dy, dx) such that ``second[v]`` matches ``first[v + d]``.
        score: the masked normalised cross-correlation there, in [-1, 1].
        on_edge: the best match has a neighbour (8-connected) outside the
            searched, usable displacements: the true one may lie beyond.
    """

    displacement: tuple[int, int]
    score: float
    on_edge: bool


def masked_ncc_match(
    first: Sequence[np.ndarray],
    second: Sequence[np.ndarray],
    centre: Sequence[int],
    radius: int,
    min_overlap_px: float,
) -> WholePixelMatch | None:
    """Best normalised cross-correlation over the overlap, for displacements near ``centre``.

    ``first`` and ``second`` are the channels (e.g. the y and x derivatives)
    of each window, all of one shape per window. The displacement ``d``
    pairs ``second[v]`` with ``first[v + d]``; candidates are every ``d``
    within ``radius`` of ``centre`` (per axis) whose overlap is at least
    ``min_overlap_px`` in y and x. For each, the overlap is a rectangle of
    both windows; its sums and sums of squares (summed-area tables) and the
    cross terms (one FFT correlation per channel) give the normalised
    cross-correlation over exactly the overlapping pixels, the channels
    summed (numerator and both variances summed before the ratio).

    Returns:
        A `WholePixelMatch`, or None when no candidate overlaps enough or has
        contrast.

    >>> rng = np.random.default_rng(1)
    >>> image = rng.random((40, 60))
    >>> match = masked_ncc_match([image[:, :40]], [image[3:, 25:]], (0, 20), 8, 4)
    >>> match.displacement, round(match.score, 6), match.on_edge
    ((3, 25), 1.0, False)
    """
    shape_1, shape_2 = first[0].shape, second[0].shape
    displacements, starts_1, stops_1, starts_2, stops_2 = [], [], [], [], []
    for axis in range(2):
        n1, n2 = shape_1[axis], shape_2[axis]
        d = np.arange(centre[axis] - radius, centre[axis] + radius + 1)
        # v in [max(0, -d), min(n2, n1 - d)): second's pixels; first's are v + d.
        start_2 = np.clip(-d, 0, n2)
        stop_2 = np.maximum(np.clip(n1 - d, 0, n2), start_2)
        displacements.append(d)
        starts_2.append(start_2)
        stops_2.append(stop_2)
        starts_1.append(np.clip(start_2 + d, 0, n1))
        stops_1.append(np.clip(stop_2 + d, 0, n1))
    extent_y = stops_2[0] - starts_2[0]
    extent_x = stops_2[1] - starts_2[1]
    valid = (extent_y[:, None] >= min_overlap_px) & (extent_x[None, :] >= min_overlap_px)
    if not valid.any():
        return None
    count = np.where(valid, extent_y[:, None] * extent_x[None, :], 1).astype(np.float64)
    fft_shape = fast_shape((shape_1[0] + shape_2[0], shape_1[1] + shape_2[1]))
    rows, columns = np.ix_(displacements[0] % fft_shape[0], displacements[1] % fft_shape[1])
    numerator = np.zeros(valid.shape)
    variance_1 = np.zeros(valid.shape)
    variance_2 = np.zeros(valid.shape)
    for channel_1, channel_2 in zip(first, second):
        sum_1 = rect_sums(summed_area(channel_1), starts_1, stops_1)
        sum_2 = rect_sums(summed_area(channel_2), starts_2, stops_2)
        spectrum_1 = sp_fft.rfft2(channel_1, s=fft_shape)
        spectrum_2 = sp_fft.rfft2(channel_2, s=fft_shape)
        # surface[d] = sum_v first[v + d] second[v] (indices modulo the FFT size).
        surface = sp_fft.irfft2(spectrum_1 * np.conj(spectrum_2), s=fft_shape)
        numerator += surface[rows, columns] - sum_1 * sum_2 / count
        variance_1 += (
            rect_sums(summed_area(channel_1 * channel_1), starts_1, stops_1)
            - sum_1 * sum_1 / count
        )
        variance_2 += (
            rect_sums(summed_area(channel_2 * channel_2), starts_2, stops_2)
            - sum_2 * sum_2 / count
        )
    denominator = np.sqrt(np.maximum(variance_1, 0.0) * np.maximum(variance_2, 0.0))
    scale = max(
        sum(float(np.abs(c).max()) for c in first) * sum(float(np.abs(c).max()) for c in second),
        1e-300,
    )
    usable = valid & (denominator > 1e-9 * scale * count)
    if not usable.any():
        return None
    score = np.full(valid.shape, -np.inf)
    score[usable] = numerator[usable] / denominator[usable]
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
    neighbours = np.pad(usable, 1, constant_values=False)[iy : iy + 3, ix : ix + 3]
    return WholePixelMatch(
        displacement=(int(displacements[0][iy]), int(displacements[1][ix])),
        score=float(score[iy, ix]),
        on_edge=not bool(neighbours.all()),
    )
