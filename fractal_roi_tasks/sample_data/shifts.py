"""Fields displaced by known sub-pixel amounts: the ground truth for registration.

`shifted_field` moves the content of any real image by a band-limited
(Fourier) shift of its mirror-extended surroundings, in 2D or through the
defocus law of the sample stacks in z; `random_shifts` draws displacements
for `make_plate`'s ``shifts``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data.constants import FOV_SIZE_PX


def _mirror_indices(indices: np.ndarray, size: int) -> np.ndarray:
    """Map any integer positions into ``[0, size)`` by mirror symmetry.

    The image continues beyond each edge as its mirror image (edge pixel
    repeated: numpy's ``"symmetric"`` padding, scipy.ndimage's ``"reflect"``
    mode), periodically with period ``2 * size``.
    """
    folded = np.mod(indices, 2 * size)
    return np.where(folded >= size, 2 * size - 1 - folded, folded)


def _mirror_region(
    source: np.ndarray, origin: Sequence[int], shape: Sequence[int]
) -> np.ndarray:
    """``source[origin : origin + shape]`` (last two axes) of the mirror-extended source."""
    rows = _mirror_indices(np.arange(origin[0], origin[0] + shape[0]), source.shape[-2])
    cols = _mirror_indices(np.arange(origin[1], origin[1] + shape[1]), source.shape[-1])
    return source[..., rows[:, None], cols[None, :]]


def _fourier_shift(region: np.ndarray, displacement: Sequence[float]) -> np.ndarray:
    """Band-limited (Fourier) shift of a 2D float64 ``region`` by ``displacement`` (dy, dx).

    The region is mirrored into a 2x2 tile first, so its periodic extension
    has no jumps (no ringing from the borders); the result is then exactly the
    trigonometric interpolant of that tile, evaluated at ``x - displacement``.
    """
    from scipy import fft as sp_fft

    height, width = region.shape
    tile = np.concatenate([region, region[::-1]], axis=0)
    tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
    spectrum = sp_fft.rfft2(tile)
    fy = sp_fft.fftfreq(tile.shape[0])[:, None]
    fx = sp_fft.rfftfreq(tile.shape[1])[None, :]
    spectrum *= np.exp(-2j * np.pi * (fy * displacement[0] + fx * displacement[1]))
    return sp_fft.irfft2(spectrum, s=tile.shape)[:height, :width]


def _defocus_sigma(plane: float, z_planes: int) -> float:
    """Gaussian blur of a plane at (possibly fractional) depth ``plane``: 1 + |plane - mid|."""
    return 1.0 + abs(plane - z_planes // 2)


def _blur_radius(sigma: float) -> int:
    """Reach of scipy.ndimage.gaussian_filter (truncate=4) in pixels."""
    return int(4.0 * sigma + 0.5)


def shifted_field(
    source: np.ndarray,
    displacement: Sequence[float],
    *,
    origin: Sequence[int] = (0, 0),
    shape: Sequence[int] = (FOV_SIZE_PX, FOV_SIZE_PX),
    z_planes: int = 1,
) -> np.ndarray:
    """A field of ``source`` whose content is displaced by a known sub-pixel amount.

    The field covers ``shape`` pixels from ``origin`` of ``source``, with the
    content moved by ``displacement``: what sits at (y, x) in the undisplaced
    field sits at (y + dy, x + dx) here. Beyond its edges the source
    continues as its mirror image (so 40+ px shifts of the 512 x 512 nuclei
    image stay realistic), and the shift is band-limited: a Fourier shift of
    a mirrored region around the field, exact at every frequency for the
    trigonometric interpolant of that region (`estimate_shift` recovers it
    to 3e-4 px without noise; a cubic-spline shift gives 4e-4 px, being
    accurate at the periods the estimator weighs). Whole-pixel
    displacements are copied exactly, with no Fourier transform.

    With ``z_planes > 1`` the field becomes a stack built like the sample
    stacks (plane ``k`` blurred by a gaussian of sigma ``1 + |k - mid|``,
    ``mid = z_planes // 2``), and ``dz`` moves it in z: plane ``k`` is the
    continuous stack at depth ``k - dz`` (blur ``1 + |k - dz - mid|``). The
    blur is computed with margin, so the undisplaced stack equals the sample
    stack exactly (up to rounding).

    Args:
        source: (Y, X) real image, e.g. from `load_source`.
        displacement: (dy, dx), or (dz, dy, dx) when ``z_planes > 1``, in
            pixels (z in planes).
        origin: (y, x) top-left of the undisplaced field in ``source``.
        shape: (height, width) of the field in pixels.
        z_planes: number of planes; 1 returns a 2D field.

    Returns:
        A new float array: (Y, X) float64 if ``z_planes == 1``, else
        (Z, Y, X) float32 (the dtype the sample stacks are blurred in).
        Values are not rounded or clipped (a Fourier shift may overshoot
        the source's range slightly near sharp edges).

    Raises:
        InvalidInputError: (a ValueError) for a displacement of the wrong
            length, a z displacement of a 2D field, or non-finite values.

    >>> from fractal_roi_tasks.sample_data import load_source
    >>> source = load_source("coins")
    >>> moved = shifted_field(source, (2.0, -3.0), origin=(50, 60), shape=(100, 100))
    >>> bool(np.array_equal(moved[2:, :-3], source[50:148, 63:160]))
    True
    """
    values = [float(v) for v in displacement]
    if len(values) not in (2, 3) or not all(np.isfinite(values)):
        raise InvalidInputError(
            f"displacement must be (dy, dx) or (dz, dy, dx) finite pixels, got {displacement!r}."
        )
    dz, dy, dx = values if len(values) == 3 else (0.0, *values)
    if z_planes == 1 and dz != 0:
        raise InvalidInputError(
            f"A 2D field (z_planes=1) cannot be displaced in z, got dz={dz}."
        )
    height, width = (int(n) for n in shape)
    sigmas = [_defocus_sigma(k - dz, z_planes) for k in range(z_planes)] if z_planes > 1 else []
    blur_margin = max((_blur_radius(s) for s in sigmas), default=0)
    whole = float(dy).is_integer() and float(dx).is_integer()
    # Margin for the shift itself and, for a Fourier shift, a guard band.
    margin = blur_margin + int(np.ceil(max(abs(dy), abs(dx)))) + (0 if whole else 8)
    region = _mirror_region(
        np.asarray(source, dtype=np.float64),
        (origin[0] - margin, origin[1] - margin),
        (height + 2 * margin, width + 2 * margin),
    )
    if whole:
        moved = np.roll(region, (int(dy), int(dx)), axis=(0, 1))
    else:
        moved = _fourier_shift(region, (dy, dx))
    if z_planes == 1:
        return moved[margin : margin + height, margin : margin + width].copy()
    from scipy import ndimage

    moved = moved.astype(np.float32)
    planes = []
    for sigma in sigmas:
        blurred = ndimage.gaussian_filter(moved, sigma=sigma)
        planes.append(blurred[margin : margin + height, margin : margin + width])
    return np.stack(planes)


def split_displacement(displacement: Sequence[float]) -> tuple[float, float, float]:
    values = [float(v) for v in displacement]
    if len(values) == 2:
        return (0.0, *values)
    if len(values) == 3:
        return tuple(values)
    raise InvalidInputError(
        f"displacement must be (dy, dx) or (dz, dy, dx) pixels, got {displacement!r}."
    )


def random_shifts(
    *,
    acquisitions: int,
    n_fovs: int,
    max_shift_px: float = 5.0,
    max_shift_z: float = 0.0,
    seed: int = 0,
) -> dict[tuple[int, int], tuple[float, float, float]]:
    """Random content displacements for `make_plate`'s ``shifts``: one per (acquisition, FOV).

    Every acquisition but the reference (0) gets, for every FOV, a
    displacement drawn uniformly from ``[-max_shift_px, max_shift_px]`` in y
    and x and ``[-max_shift_z, max_shift_z]`` in z, rounded to 0.001 px.

    >>> shifts = random_shifts(acquisitions=3, n_fovs=2, max_shift_px=50, seed=1)
    >>> sorted(shifts), all(abs(v) <= 50 for d in shifts.values() for v in d)
    ([(1, 0), (1, 1), (2, 0), (2, 1)], True)
    """
    rng = np.random.default_rng(seed)
    out = {}
    for acquisition in range(1, acquisitions):
        for fov in range(n_fovs):
            dz = rng.uniform(-max_shift_z, max_shift_z) if max_shift_z > 0 else 0.0
            dy, dx = rng.uniform(-max_shift_px, max_shift_px, 2)
            out[(acquisition, fov)] = tuple(round(float(v), 3) + 0.0 for v in (dz, dy, dx))
    return out
