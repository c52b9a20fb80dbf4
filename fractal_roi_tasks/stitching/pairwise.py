"""Which tiles overlap, and the offset measured between two overlapping tiles.

The first half of tile placement (`fractal_roi_tasks.stitching.solve` is the
second): `link_windows` lists the pairs of tiles whose prior (stage)
positions overlap and the window of each tile to read for the pair;
`measure_link` measures, on those two windows, where the second tile sits
relative to the first, with sub-pixel precision, a quality score and an
expected error, and says whether the measurement can be trusted.

Frames and units: pixels of the tiles, axis order (y, x). A tile's
*position* is where its pixel (0, 0) lies in a common mosaic frame (the
frame of the prior positions); the *offset* of a pair is the position of the
second tile minus that of the first.

Method of `measure_link` (each choice measured on tiles cut from the bundled
images with stage error, vignetting and camera noise; see
``tests/test_stitching_placement.py`` and ``benchmarks/bench_stitch.py``):

1. Whole pixels: both windows are turned into their gaussian derivatives
   along y and x (sigma 2 px; beyond its border a window is continued
   linearly, since a tile's border is exactly where its overlap lies). The
   derivatives ignore the smooth illumination (vignetting, background) and
   average out pixel noise. Their normalised cross-correlation *over the
   overlap only* (masked: means and energies are those of the overlapping
   parts, from summed-area tables, the cross terms from one FFT per
   derivative) is evaluated for every whole-pixel offset within
   ``max_shift_px`` (plus 1) of the prior. A band-pass by differences of
   gaussians instead fails on thin overlaps: its border effects differ
   between the two windows and outweigh faint texture. A best match on the
   edge of the searched range is rejected (the true offset may lie beyond).
2. Sub-pixel: the two windows are cropped to their common part at that
   offset. The first window's part is multiplied by the smooth gain (a
   plane in y and x, fitted on smoothed copies) that best maps it onto the
   second's: vignetting multiplies the two tiles by different profiles
   over their overlap, with opposite slopes, which otherwise pulls the
   peak (median error 0.06 px without the gain, 0.03 px with it, on a
   noise-free 2x-magnified low-texture image with 30% vignetting). Each part then loses its quadratic trend, and both are compared
   by the plain cross-correlation of
   `fractal_roi_tasks.registration.correlation` (Tukey windows, the taper
   of one following the sub-pixel estimate, the maximum found by Newton's
   method on the exact Fourier sum), weighted per spatial frequency for a
   maximum-likelihood estimate (Knapp and Carter, 1976): from the two
   windows themselves, the shared signal ``P`` and the noise ``N`` in rings
   of equal frequency give the weight ``P / (N (2 P + N))``, so the band
   adapts to each pair (fine texture in focus, the coarse texture of a
   magnified low-contrast image: there, with noise at 1% of the range,
   median error 0.51 px instead of 0.87 px with the fixed band). Rounds repeat until the taper's place and the
   estimate agree (Broyden's method: on a thin overlap the taper pulls the
   estimate strongly), the taper staying within 0.5 px of the first
   estimate (with noise, the estimate is a rough function of the taper's
   place and the secant steps can run away). A common part narrower than
   8 px is not refined.
3. Quality and expected error: the quality is the normalised
   cross-correlation of the aligned, tapered, band-passed common parts, in
   [-1, 1]; the expected error is the standard error that the peak's
   curvature under the maximum-likelihood weights predicts (a Fisher
   information; on thin overlaps it underestimates the actual error two-
   to fourfold). The link is accepted when the quality reaches
   ``min_quality``, the expected error stays within ``max_uncertainty_px``
   and the offset lies within ``max_shift_px`` of the prior. The two tests
   are complementary for an empty tile (background and noise only, 13
   cases of 64 to 400 px tiles, 4 seeds): its chance match never reached a
   quality of 0.21 with an expected error below 0.5 px, and never an
   expected error below 0.23 px; real overlaps measured reached quality
   >= 0.28 and expected error <= 0.26 px, down to a 2x-magnified
   low-texture image with noise. The weight of an accepted link in the
   global solve is its quality (weighting by the inverse expected
   covariance was tried: no better).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration import correlation as corr

logger = logging.getLogger(__name__)

_MATCH_SIGMA_PX = 2.0
"""Gaussian derivatives of this sigma (px) feed the whole-pixel match."""

_TAPER_FRACTION = 0.1
"""Cosine flank of the sub-pixel windows, as a fraction of each side (at least 4 px)."""

_FINE_ROUNDS = 8
"""At most this many sub-pixel rounds (crop, taper, correlate, Newton)."""

_WINDOW_TOLERANCE_PX = 0.01
"""The sub-pixel rounds stop once the estimate is this close to the window's placement."""

_MIN_SUBPIXEL_PX = 8
"""The sub-pixel step needs a common part at least this wide (in y and x), in pixels."""

_MAX_REFINEMENT_PX = 1.5
"""A sub-pixel estimate further than this from the whole-pixel match is not trusted."""

_DETREND_ORDER = 2
"""Each common part loses its least-squares polynomial in y and x of this order."""

_GAIN_ORDER = 1
"""Order of the polynomial gain that maps the first window's common part onto the second's."""

_GAIN_SIGMA_PX = 6.0
"""The gain is fitted on copies smoothed by this sigma (px), so that texture does not drive it."""

_DRIFT_PX = 0.5
"""The sub-pixel window stays within this of the first sub-pixel estimate (px, per axis)."""

_GAUSS_PER_PERIOD = 1.0 / (math.pi * math.sqrt(2.0))
"""sigma = period * this: the gaussian that keeps e^-1 of the amplitude at that period."""


# --------------------------------------------------------------------------
# Windows


@dataclass(frozen=True)
class LinkWindow:
    """Two overlapping tiles and the window of each to read for measuring their offset.

    Attributes:
        first: index of the first tile (``first < second``).
        second: index of the second tile.
        first_box: (y, x) slices of the first tile to read, in its own pixels:
            the prior overlap plus a search margin, clipped to the tile.
        second_box: the same for the second tile.
        prior_offset_px: prior position of the second tile minus prior
            position of the first, (y, x) in pixels.
    """

    first: int
    second: int
    first_box: tuple[slice, slice]
    second_box: tuple[slice, slice]
    prior_offset_px: tuple[float, float]

    @property
    def first_shape(self) -> tuple[int, int]:
        """(height, width) of the first window in pixels."""
        return tuple(s.stop - s.start for s in self.first_box)

    @property
    def second_shape(self) -> tuple[int, int]:
        """(height, width) of the second window in pixels."""
        return tuple(s.stop - s.start for s in self.second_box)


def _tile_shapes(tile_shapes: object, count: int) -> np.ndarray:
    shapes = np.asarray(tile_shapes)
    if shapes.shape == (2,):
        shapes = np.broadcast_to(shapes, (count, 2))
    if (
        shapes.shape != (count, 2)
        or shapes.dtype.kind not in "iu"
        and not (shapes.dtype.kind == "f" and np.all(shapes == np.round(shapes)))
    ):
        raise InvalidInputError(
            f"tile_shapes must be (height, width) integers, one pair for all tiles (2,) "
            f"or one per tile ({count}, 2); got shape {shapes.shape}, dtype {shapes.dtype}."
        )
    shapes = shapes.astype(np.int64)
    if count and shapes.min() < 1:
        raise InvalidInputError(f"tile_shapes must be >= 1, got a minimum of {shapes.min()}.")
    return shapes


def _prior(prior_px: object) -> np.ndarray:
    prior = np.asarray(prior_px, dtype=np.float64)
    if prior.ndim != 2 or prior.shape[1] != 2:
        raise InvalidInputError(
            f"prior_px must be an (N, 2) array of (y, x) tile positions in pixels, "
            f"got shape {prior.shape}."
        )
    if not np.isfinite(prior).all():
        raise InvalidInputError("prior_px contains NaN or infinite positions.")
    return prior


def _check_positive(value: float, name: str, *, allow_zero: bool = True) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{name} must be a number, got {value!r}.") from err
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        expected = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {expected}, got {value!r}.")
    return number


def search_radius(max_shift_px: float) -> int:
    """Whole pixels searched on each side of the prior offset: one more than ``max_shift_px``.

    The extra pixel lets a match just beyond ``max_shift_px`` be seen (and
    rejected as such) rather than mistaken for one on the edge of the search.

    >>> search_radius(10.0), search_radius(2.5)
    (11, 4)
    """
    return int(math.ceil(max_shift_px)) + 1


def link_windows(
    prior_px: np.ndarray,
    tile_shapes: np.ndarray,
    *,
    max_shift_px: float,
    min_overlap_px: float = 4.0,
    include_corners: bool = False,
) -> list[LinkWindow]:
    """The pairs of tiles whose prior boxes overlap, and the window of each to read.

    Pairs are found with a k-d tree on the tile centres (Chebyshev distance),
    so thousands of tiles take milliseconds. A pair is linked when its prior
    boxes overlap by at least ``min_overlap_px`` in both y and x and, unless
    ``include_corners``, along at least half the smaller tile in y or in x:
    diagonal neighbours of a grid, which share only a corner, are left out
    (their small corner overlaps, measured, made placement less accurate:
    0.16 instead of 0.09 px on dense texture, 15% overlap). Each
    window is the prior overlap grown by ``search_radius(max_shift_px) + 1``
    pixels on every side (the search and the sub-pixel step need that much
    to see the whole true overlap), clipped to the tile, with fractional
    bounds rounded outwards.

    Args:
        prior_px: (N, 2) float (y, x) of each tile's top-left pixel in a
            common mosaic frame (e.g. from the stage), in pixels.
        tile_shapes: (N, 2) integer (height, width) of each tile, or (2,) for
            all tiles.
        max_shift_px: largest expected error of the prior offset of two
            tiles, per axis, in pixels.
        min_overlap_px: smallest prior overlap (in each of y and x) that
            makes a pair, in pixels.
        include_corners: also link tiles that overlap only at a corner.

    Returns:
        One `LinkWindow` per pair, ``first < second``, sorted by ``(first, second)``.

    Raises:
        InvalidInputError: (a ValueError) for positions or shapes of the wrong
            shape, non-finite positions, or a negative option.

    >>> windows = link_windows(np.array([[0.0, 0.0], [0.0, 90.0]]), np.array([100, 100]), max_shift_px=3)
    >>> w = windows[0]
    >>> (w.first, w.second), w.first_box, w.second_box, w.prior_offset_px
    ((0, 1), (slice(0, 100, None), slice(85, 100, None)), (slice(0, 100, None), slice(0, 15, None)), (0.0, 90.0))
    """
    from scipy.spatial import cKDTree

    prior = _prior(prior_px)
    count = prior.shape[0]
    shapes = _tile_shapes(tile_shapes, count)
    max_shift_px = _check_positive(max_shift_px, "max_shift_px")
    min_overlap_px = _check_positive(min_overlap_px, "min_overlap_px", allow_zero=False)
    if count < 2:
        return []
    centres = prior + shapes / 2.0
    tree = cKDTree(centres)
    pairs = tree.query_pairs(float(shapes.max()), p=np.inf, output_type="ndarray")
    if pairs.size == 0:
        logger.debug("link_windows: %d tiles, no pairs", count)
        return []
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    first, second = pairs[:, 0], pairs[:, 1]
    low = np.maximum(prior[first], prior[second])
    high = np.minimum(prior[first] + shapes[first], prior[second] + shapes[second])
    keep = np.all(high - low >= min_overlap_px, axis=1)
    if not include_corners:
        keep &= np.any(high - low >= 0.5 * np.minimum(shapes[first], shapes[second]), axis=1)
    first, second, low, high = first[keep], second[keep], low[keep], high[keep]
    margin = search_radius(max_shift_px) + 1

    def box(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = np.floor(low - margin - prior[index] + 1e-9).astype(np.int64)
        stop = np.ceil(high + margin - prior[index] - 1e-9).astype(np.int64)
        return np.clip(start, 0, shapes[index]), np.clip(stop, 0, shapes[index])

    first_start, first_stop = box(first)
    second_start, second_stop = box(second)
    offsets = prior[second] - prior[first]
    windows = [
        LinkWindow(
            first=int(first[k]),
            second=int(second[k]),
            first_box=tuple(slice(int(a), int(b)) for a, b in zip(first_start[k], first_stop[k])),
            second_box=tuple(
                slice(int(a), int(b)) for a, b in zip(second_start[k], second_stop[k])
            ),
            prior_offset_px=(float(offsets[k, 0]), float(offsets[k, 1])),
        )
        for k in range(first.size)
    ]
    logger.debug("link_windows: %d tiles, %d overlapping pairs", count, len(windows))
    return windows


# --------------------------------------------------------------------------
# One link


@dataclass(frozen=True)
class Link:
    """The offset measured between two overlapping tiles.

    Attributes:
        first: index of the first tile.
        second: index of the second tile.
        offset_px: measured position of the second tile minus position of
            the first, (y, x) in pixels; the prior offset when nothing could
            be measured.
        prior_offset_px: the same from the prior positions.
        quality: normalised cross-correlation of the aligned, band-passed
            overlaps, in [-1, 1] (0 when nothing could be measured).
        weight: weight of the link in the global solve: its quality when
            accepted, 0 otherwise.
        accepted: whether the global solve uses the link.
        reason: empty when accepted, otherwise why not, e.g.
            ``"quality 0.05 below 0.2"``.
        uncertainty_px: expected error of ``offset_px`` in pixels (the
            standard error predicted by the sharpness of the match and the
            noise in the overlap; it underestimates the error on thin
            overlaps), inf or NaN when nothing could be measured.
    """

    first: int
    second: int
    offset_px: tuple[float, float]
    prior_offset_px: tuple[float, float]
    quality: float
    weight: float
    accepted: bool
    reason: str
    uncertainty_px: float = math.nan

    @property
    def correction_px(self) -> tuple[float, float]:
        """Measured minus prior offset, (y, x) in pixels."""
        return (
            self.offset_px[0] - self.prior_offset_px[0],
            self.offset_px[1] - self.prior_offset_px[1],
        )


def _patch(array: object, box: tuple[slice, slice], what: str) -> np.ndarray:
    patch = np.asarray(array)
    if patch.dtype.kind not in "uif":
        raise InvalidInputError(
            f"{what} must be a real-valued numeric array, got dtype {patch.dtype}."
        )
    expected = tuple(s.stop - s.start for s in box)
    if patch.shape != expected:
        hint = " (project 3D tiles over z first)" if patch.ndim == 3 else ""
        raise InvalidInputError(
            f"{what} has shape {patch.shape}, but its window is {expected[0]} x {expected[1]} "
            f"pixels{hint}: pass tile[window.first_box] and tile[window.second_box]."
        )
    if patch.dtype.kind == "f" and not np.isfinite(patch).all():
        raise InvalidInputError(f"{what} contains NaN or infinite values.")
    return patch.astype(np.float32)


def _gradients(patch: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Gaussian derivatives along y and x of a patch, float64, same shape.

    The patch is continued beyond its border by odd reflection (``2 f(0) -
    f(-k)``: a linear continuation), which keeps the derivatives near the
    border close to those the full image would give; a tile's border is
    exactly where its overlap with the neighbour lies.
    """
    from scipy import ndimage

    pad = int(math.ceil(4 * sigma)) + 1
    data = np.pad(patch.astype(np.float64), pad, mode="reflect", reflect_type="odd")
    inner = (slice(pad, pad + patch.shape[0]), slice(pad, pad + patch.shape[1]))
    return [ndimage.gaussian_filter(data, sigma, order=order)[inner] for order in ((1, 0), (0, 1))]


def _summed_area(values: np.ndarray) -> np.ndarray:
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.float64)
    np.cumsum(np.cumsum(values, axis=0), axis=1, out=table[1:, 1:])
    return table


def _rect_sums(table: np.ndarray, start: list[np.ndarray], stop: list[np.ndarray]) -> np.ndarray:
    """Sums over rectangles ``start[0][i]:stop[0][i]`` x ``start[1][j]:stop[1][j]`` (outer grid)."""
    y0, y1 = start[0][:, None], stop[0][:, None]
    x0, x1 = start[1][None, :], stop[1][None, :]
    return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]


@dataclass(frozen=True)
class _Match:
    """Whole-pixel result of the masked correlation."""

    displacement: tuple[int, int]  # d: second[v] ~ first[v + d], window pixels
    score: float  # masked NCC at d
    on_edge: bool


def _whole_pixel_match(
    first: Sequence[np.ndarray],
    second: Sequence[np.ndarray],
    centre: Sequence[int],
    radius: int,
    min_overlap_px: float,
) -> _Match | None:
    """Best normalised cross-correlation over the overlap, for displacements near ``centre``.

    ``first`` and ``second`` are the channels (e.g. the y and x derivatives)
    of each window, all of one shape per window. The displacement ``d``
    pairs ``second[v]`` with ``first[v + d]``. For each candidate the overlap
    is a rectangle of both windows; its sums and sums of squares
    (summed-area tables) and the cross terms (one FFT correlation per
    channel) give the normalised cross-correlation over exactly the
    overlapping pixels, the channels summed.
    """
    from scipy import fft as sp_fft

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
    fft_shape = corr.fast_shape((shape_1[0] + shape_2[0], shape_1[1] + shape_2[1]))
    rows, columns = np.ix_(displacements[0] % fft_shape[0], displacements[1] % fft_shape[1])
    numerator = np.zeros(valid.shape)
    variance_1 = np.zeros(valid.shape)
    variance_2 = np.zeros(valid.shape)
    for channel_1, channel_2 in zip(first, second):
        sum_1 = _rect_sums(_summed_area(channel_1), starts_1, stops_1)
        sum_2 = _rect_sums(_summed_area(channel_2), starts_2, stops_2)
        spectrum_1 = sp_fft.rfft2(channel_1, s=fft_shape)
        spectrum_2 = sp_fft.rfft2(channel_2, s=fft_shape)
        # surface[d] = sum_v first[v + d] second[v] (indices modulo the FFT size).
        surface = sp_fft.irfft2(spectrum_1 * np.conj(spectrum_2), s=fft_shape)
        numerator += surface[rows, columns] - sum_1 * sum_2 / count
        variance_1 += (
            _rect_sums(_summed_area(channel_1 * channel_1), starts_1, stops_1)
            - sum_1 * sum_1 / count
        )
        variance_2 += (
            _rect_sums(_summed_area(channel_2 * channel_2), starts_2, stops_2)
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
    return _Match(
        displacement=(int(displacements[0][iy]), int(displacements[1][ix])),
        score=float(score[iy, ix]),
        on_edge=not bool(neighbours.all()),
    )


def _common(
    shape_1: Sequence[int], shape_2: Sequence[int], d: Sequence[int]
) -> tuple[slice, slice] | None:
    """Pixels v of the second window with v + d in the first; None if too thin.

    The taper is 0 on the outer pixel and moves by at most half a pixel, so
    the whole common part can be used.
    """
    box = []
    for n1, n2, k in zip(shape_1, shape_2, d):
        start, stop = max(0, -k), min(n2, n1 - k)
        if stop - start < _MIN_SUBPIXEL_PX:
            return None
        box.append(slice(start, stop))
    return tuple(box)


def _moved(box: tuple[slice, slice], d: Sequence[int]) -> tuple[slice, slice]:
    return tuple(slice(s.start + k, s.stop + k) for s, k in zip(box, d))


@functools.lru_cache(maxsize=64)
def _basis(shape: tuple[int, int], order: int) -> np.ndarray:
    """(Y * X, terms) monomials in y and x up to ``order``, coordinates scaled to [-0.5, 0.5]. Cached."""
    height, width = shape
    y = (np.arange(height) - (height - 1) / 2) / max(height, 1)
    x = (np.arange(width) - (width - 1) / 2) / max(width, 1)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    terms = [np.ones(height * width)]
    for total in range(1, order + 1):
        for power_y in range(total + 1):
            terms.append((yy**power_y * xx ** (total - power_y)).ravel())
    basis = np.stack(terms, axis=1)
    basis.flags.writeable = False
    return basis


def _taper(shape: Sequence[int], offset: Sequence[float]) -> np.ndarray:
    """The separable Tukey window `windowed_spectrum` applies at ``offset``, (Y, X) float64."""
    wy = corr.taper_1d(shape[0], max(4.0, _TAPER_FRACTION * shape[0]), offset[0])
    wx = corr.taper_1d(shape[1], max(4.0, _TAPER_FRACTION * shape[1]), offset[1])
    return np.outer(wy, wx).astype(np.float64)


def _least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """argmin |design @ c - target| by the normal equations (a few columns), None if singular.

    Normal equations with einsum, not ``lstsq``: multithreaded LAPACK on these
    tall, thin systems is erratic on a busy machine (ms instead of us).
    """
    gram = np.einsum("ki,kj->ij", design, design)
    rhs = np.einsum("ki,k->i", design, target)
    scale = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    try:
        solution = np.linalg.solve(gram / np.outer(scale, scale), rhs / scale) / scale
    except np.linalg.LinAlgError:
        return None
    return solution if np.isfinite(solution).all() else None


def _detrended(crop: np.ndarray, offset: Sequence[float]) -> np.ndarray:
    """``crop`` less its least-squares quadratic trend, weighted by the taper at ``offset``."""
    basis = _basis(tuple(crop.shape), _DETREND_ORDER)
    weight = np.sqrt(_taper(crop.shape, offset).ravel())
    coefficients = _least_squares(basis * weight[:, None], crop.ravel() * weight)
    if coefficients is None:
        return crop
    return (crop - (basis @ coefficients).reshape(crop.shape)).astype(np.float32)


def _gain_matched(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``moving`` times the smooth gain that best maps it onto ``reference`` (same content).

    Vignetting multiplies the two tiles by different smooth profiles over
    their overlap; the texture then carries opposite intensity ramps in the
    two windows, which pulls the correlation peak. The gain, a plane in y
    and x (for a quadratic falloff the ratio of two shifted profiles is
    about linear), is the weighted least-squares fit of ``reference ~ gain
    * moving`` on smoothed copies; a gain outside [0.2, 5] is not applied.
    """
    from scipy import ndimage

    smooth_moving = ndimage.gaussian_filter(
        moving.astype(np.float64), _GAIN_SIGMA_PX, mode="reflect"
    )
    smooth_reference = ndimage.gaussian_filter(
        reference.astype(np.float64), _GAIN_SIGMA_PX, mode="reflect"
    )
    basis = _basis(tuple(moving.shape), _GAIN_ORDER)
    weight = np.sqrt(_taper(moving.shape, (0.0, 0.0)).ravel())
    design = basis * (smooth_moving.ravel() * weight)[:, None]
    coefficients = _least_squares(design, smooth_reference.ravel() * weight)
    if coefficients is None:
        return moving
    gain = (basis @ coefficients).reshape(moving.shape)
    inside = weight > 0
    if (
        not np.isfinite(gain).all()
        or not 0.2
        <= float(gain.reshape(-1)[inside].min())
        <= float(gain.reshape(-1)[inside].max())
        <= 5.0
    ):
        return moving
    return (moving * gain).astype(np.float32)


def _ml_weight(
    reference: np.ndarray, moving: np.ndarray, spectral_band: corr.Band, shift: Sequence[float]
) -> np.ndarray:
    """Frequency weights for a maximum-likelihood shift estimate (Knapp and Carter, 1976).

    At the current estimate ``shift``, the aligned cross power is the shared
    signal ``P(f)`` and half the power of the difference the noise ``N(f)``
    (camera noise, and whatever else the two windows do not share), each
    averaged over rings of equal spatial frequency. The weight
    ``P / (N (2 P + N))`` keeps the frequencies where the tiles agree and
    drops those where noise dominates, so the band adapts to each pair.
    """
    phase = np.outer(
        np.exp(2j * np.pi * spectral_band.fy * shift[0]),
        np.exp(2j * np.pi * spectral_band.fx * shift[1]),
    )
    signal = (moving * np.conj(reference) * phase).real
    power = 0.5 * (reference.real**2 + reference.imag**2 + moving.real**2 + moving.imag**2)
    radius = np.hypot(spectral_band.fy[:, None], spectral_band.fx[None, :])
    step = 1.0 / min(spectral_band.fft_shape)
    rings = np.minimum((radius / step).astype(np.int64), int(0.5 / step))
    count = np.maximum(np.bincount(rings.ravel()), 1)
    shared = np.maximum(np.bincount(rings.ravel(), signal.ravel()) / count, 0.0)
    total = np.bincount(rings.ravel(), power.ravel()) / count
    noise = np.maximum(total - shared, 1e-6 * max(float(total.max()), 1e-30))
    weight = shared / (noise * (2.0 * shared + noise))
    return weight[rings].astype(np.float32)


def _subpixel(
    first: np.ndarray,
    second: np.ndarray,
    start: Sequence[int],
    band_px: tuple[float, float],
) -> _Refined | None:
    """Sub-pixel displacement (second[v] ~ first[v + d]) near ``start``, and quality.

    The second window's common part is the reference (its taper fixed); the
    first window's part, cropped at the whole-pixel estimate, follows the
    sub-pixel rest with its taper, so both hold the same content. Rounds
    repeat until estimate and window agree.
    """
    estimate = np.array(start, dtype=np.float64)
    integer: tuple[int, int] | None = None
    state = None
    previous: tuple[np.ndarray, np.ndarray] | None = None  # (placement, gap)
    jacobian = -np.eye(2)
    for round_index in range(_FINE_ROUNDS):
        new_integer = tuple(int(v) for v in np.round(estimate))
        residual = estimate - np.array(new_integer)
        if new_integer != integer:
            integer = new_integer
            box = _common(first.shape, second.shape, integer)
            if box is None:
                return None
            spectral_band = corr.band(corr.fast_shape([s.stop - s.start for s in box]), band_px)
            reference_crop = second[box]
            reference = corr.windowed_spectrum(
                _detrended(reference_crop, (0.0, 0.0)), (0.0, 0.0), _TAPER_FRACTION, spectral_band
            )
            reference_energy = float(spectral_band.energy(reference))
            reference_conj = np.conj(reference) * spectral_band.weight
            # Gain and trend once per placement: the sub-pixel rest barely changes them.
            moving_crop = _gain_matched(first[_moved(box, integer)], reference_crop)
            moving_crop = _detrended(moving_crop, (0.0, 0.0))
            ml_weight = None
            ml_rounds = 0
        moving = corr.windowed_spectrum(moving_crop, residual, _TAPER_FRACTION, spectral_band)
        cross = moving * reference_conj
        local_start = residual
        if round_index == 0:
            local_start = np.array(corr.grid_peak(cross, spectral_band, residual, (1, 1)))
        # Weights from the first two estimates at this whole-pixel placement,
        # then fixed (re-estimated every round, they make the estimate wander
        # by their own noise).
        if ml_rounds < 2:
            ml_weight = _ml_weight(reference, moving, spectral_band, local_start)
            ml_rounds += 1
        weighted = cross * ml_weight
        local = np.array(corr.newton_peak(weighted, spectral_band, local_start))
        # first[u] = second[u - d] and moving = first[box + integer]: the
        # moving content sits d - integer further than the reference's.
        measured = np.array(integer) + local
        state = (
            measured,
            local,
            cross,
            weighted,
            spectral_band,
            reference_energy,
            float(spectral_band.energy(moving)),
        )
        logger.debug(
            "sub-pixel round %d: window at %s, estimate %s",
            round_index,
            np.round(estimate, 4),
            np.round(measured, 4),
        )
        # The taper pulls the estimate towards the window (strongly on a thin
        # overlap): find where window and estimate agree, g(w) = estimate(w)
        # - w = 0, by Broyden's method (plain iteration w <- estimate first).
        gap = measured - estimate
        if float(np.abs(gap).max()) < _WINDOW_TOLERANCE_PX:
            break
        if previous is not None:
            step_w, step_g = estimate - previous[0], gap - previous[1]
            norm = float(step_w @ step_w)
            if norm > 1e-12:
                jacobian = jacobian + np.outer(step_g - jacobian @ step_w, step_w) / norm
        previous = (estimate, gap)
        try:
            step = -np.linalg.solve(jacobian, gap)
        except np.linalg.LinAlgError:
            step = gap
        if not np.all(np.isfinite(step)) or float(np.abs(step).max()) > 2.0:
            jacobian, step = -np.eye(2), gap
        target = estimate + np.clip(step, -0.5, 0.5)
        # Noise makes the estimate a rough function of the window's place:
        # where the taper pulls hard, the secant steps can run away. Stay
        # near the first estimate.
        if round_index == 0:
            anchor = measured.copy()
        target = np.clip(target, anchor - _DRIFT_PX, anchor + _DRIFT_PX)
        if np.allclose(target, estimate, atol=1e-6):
            break
        estimate = target
    if state is None:
        return None
    measured, local, cross, weighted, spectral_band, energy_ref, energy_mov = state
    uncertainty = _expected_error(weighted, spectral_band, local)
    if energy_ref <= 0 or energy_mov <= 0:
        return _Refined(measured, 0.0, uncertainty)
    value = corr.correlation_grid(cross, spectral_band, local[:1], local[1:])[0, 0]
    quality = float(np.clip(value / math.sqrt(energy_ref * energy_mov), -1.0, 1.0))
    return _Refined(measured, quality, uncertainty)


@dataclass(frozen=True)
class _Refined:
    """Result of the sub-pixel step."""

    displacement: np.ndarray  # d: second[v] ~ first[v + d], window pixels
    quality: float
    uncertainty_px: float  # expected error of the displacement


def _expected_error(weighted: np.ndarray, spectral_band: corr.Band, shift: np.ndarray) -> float:
    """sqrt(trace(inverse Fisher information)) of the ML-weighted correlation at ``shift``, px."""
    omega_y = 2 * np.pi * spectral_band.fy
    omega_x = 2 * np.pi * spectral_band.fx
    phase = np.outer(
        np.exp(2j * np.pi * spectral_band.fy * shift[0]),
        np.exp(2j * np.pi * spectral_band.fx * shift[1]),
    )
    aligned = (weighted * phase).real
    hyy = float(np.einsum("yx,y->", aligned, omega_y**2))
    hxx = float(np.einsum("yx,x->", aligned, omega_x**2))
    hxy = float(np.einsum("yx,y,x->", aligned, omega_y, omega_x))
    determinant = hyy * hxx - hxy * hxy
    if not (hyy > 0 and hxx > 0 and determinant > 0 and math.isfinite(determinant)):
        return math.inf
    return math.sqrt((hyy + hxx) / determinant)


def _check_band(band_px: Sequence[float]) -> tuple[float, float]:
    try:
        band = tuple(float(v) for v in band_px)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"band_px must be two numbers (finest, coarsest), got {band_px!r}."
        ) from err
    if (
        len(band) != 2
        or not all(math.isfinite(v) and v >= 0 for v in band)
        or (0 < band[1] <= band[0])
        or 0 < band[0] < 2
    ):
        raise InvalidInputError(
            f"band_px must be (finest, coarsest) periods in pixels with 2 <= finest < coarsest "
            f"(0 disables one), got {band_px!r}."
        )
    return band


def measure_link(
    window: LinkWindow,
    first_patch: np.ndarray,
    second_patch: np.ndarray,
    *,
    max_shift_px: float,
    min_quality: float = 0.2,
    max_uncertainty_px: float = 0.3,
    min_overlap_px: float = 4.0,
    band_px: tuple[float, float] = (3.0, 40.0),
) -> Link:
    """Measure the offset of two overlapping tiles on their windows.

    See the module docstring for the method. Never raises for content: a
    window without contrast, a weak or ambiguous match, or one beyond
    ``max_shift_px`` gives a rejected `Link` whose ``reason`` says why.

    Args:
        window: the pair, from `link_windows`.
        first_patch: the first tile's window, ``first_tile[window.first_box]``,
            2D (Y, X), any real dtype (a 3D tile is projected over z first).
            Not modified.
        second_patch: ``second_tile[window.second_box]``. Not modified.
        max_shift_px: largest accepted difference between measured and prior
            offset, per axis, in pixels (the same as given to `link_windows`).
        min_quality: a link whose quality is below this is rejected.
        max_uncertainty_px: a link whose expected error is above this (in
            pixels) is rejected: the overlap holds too little shared detail.
        min_overlap_px: overlaps narrower than this (in y or x) are not
            considered, in pixels.
        band_px: (finest, coarsest) period in pixels that the sub-pixel step
            weighs: detail finer than ``finest`` is dropped, structures much
            larger than ``coarsest`` (vignetting, background) get little
            weight; within, each pair's own signal and noise set the
            weights. 0 disables either limit.

    Returns:
        A `Link`; when accepted its ``weight`` is its quality.

    Raises:
        InvalidInputError: (a ValueError) for a patch whose shape is not its
            window's, non-numeric or non-finite values, or an invalid option.

    >>> from fractal_roi_tasks.sample_data import load_source
    >>> image = load_source("retina")[300:500, 300:620]
    >>> tiles = [image[:, :180], image[3:, 140:]]  # truth: offset (3, 140)
    >>> (window,) = link_windows([[0.0, 0.0], [0.0, 138.0]], [[200, 180], [197, 180]], max_shift_px=5)
    >>> link = measure_link(window, tiles[0][window.first_box], tiles[1][window.second_box], max_shift_px=5)
    >>> [round(v, 2) for v in link.offset_px], link.accepted
    ([3.0, 140.0], True)
    """
    max_shift_px = _check_positive(max_shift_px, "max_shift_px")
    max_uncertainty_px = _check_positive(max_uncertainty_px, "max_uncertainty_px", allow_zero=False)
    min_overlap_px = _check_positive(min_overlap_px, "min_overlap_px", allow_zero=False)
    try:
        quality_ok = -1.0 <= float(min_quality) <= 1.0
    except (TypeError, ValueError):
        quality_ok = False
    if not quality_ok:
        raise InvalidInputError(f"min_quality must be a number in [-1, 1], got {min_quality!r}.")
    band = _check_band(band_px)
    first = _patch(first_patch, window.first_box, "first_patch")
    second = _patch(second_patch, window.second_box, "second_patch")
    prior = np.array(window.prior_offset_px, dtype=np.float64)
    # Offsets in window pixels: second[v] ~ first[v + d], d = offset + box starts.
    origin = np.array(
        [window.second_box[k].start - window.first_box[k].start for k in range(2)], dtype=np.float64
    )

    def result(
        offset: np.ndarray, quality: float, reason: str, uncertainty: float = math.inf
    ) -> Link:
        accepted = not reason
        logger.debug(
            "link %d-%d: offset %s (prior %s), quality %.3f, expected error %.3f px, %s",
            window.first,
            window.second,
            np.round(offset, 3),
            np.round(prior, 3),
            quality,
            uncertainty,
            reason or "accepted",
        )
        return Link(
            first=window.first,
            second=window.second,
            offset_px=(float(offset[0]), float(offset[1])),
            prior_offset_px=(float(prior[0]), float(prior[1])),
            quality=float(quality),
            weight=float(quality) if accepted else 0.0,
            accepted=accepted,
            reason=reason,
            uncertainty_px=float(uncertainty),
        )

    for patch, name in ((first, window.first), (second, window.second)):
        if min(patch.shape) < 3 or float(patch.max() - patch.min()) <= 1e-6 * max(
            abs(float(patch.flat[0])), 1.0
        ):
            return result(prior, 0.0, f"no contrast in the overlap of tile {name}")
    sigma = max(_MATCH_SIGMA_PX, band[0] * _GAUSS_PER_PERIOD)
    centre = np.round(prior + origin).astype(int)
    match = _whole_pixel_match(
        _gradients(first, sigma),
        _gradients(second, sigma),
        centre,
        search_radius(max_shift_px),
        min_overlap_px,
    )
    if match is None:
        return result(
            prior,
            0.0,
            f"the tiles overlap by less than {min_overlap_px:g} px in the searched range",
        )
    whole = np.array(match.displacement, dtype=np.float64) - origin
    if match.on_edge:
        return result(
            whole,
            max(match.score, 0.0),
            f"best match on the edge of the searched range ({_format_shift(whole - prior)} from the "
            f"prior): the true offset may lie beyond max_shift_px {max_shift_px:g}, or the overlap "
            f"there is thinner than min_overlap_px {min_overlap_px:g}",
        )
    refined = _subpixel(first, second, match.displacement, band)
    if refined is None:
        return result(
            whole, 0.0, f"the tiles overlap by less than {_MIN_SUBPIXEL_PX} px at the best match: too little to refine"
        )
    offset = refined.displacement - origin
    quality, uncertainty = refined.quality, refined.uncertainty_px
    if not math.isfinite(quality) or not np.isfinite(offset).all():
        return result(whole, 0.0, "the sub-pixel estimate failed")
    if float(np.abs(offset - whole).max()) > _MAX_REFINEMENT_PX:
        return result(
            whole, quality, "no stable sub-pixel peak near the best whole-pixel match", uncertainty
        )
    deviation = float(np.abs(offset - prior).max())
    if quality < min_quality:
        return result(offset, quality, f"quality {quality:.2f} below {min_quality:g}", uncertainty)
    if not uncertainty <= max_uncertainty_px:
        return result(
            offset,
            quality,
            f"too little shared detail: expected error {uncertainty:.2f} px above {max_uncertainty_px:g}",
            uncertainty,
        )
    if deviation > max_shift_px:
        return result(
            offset,
            quality,
            f"shift {deviation:.1f} px beyond max_shift_px {max_shift_px:g}",
            uncertainty,
        )
    return result(offset, quality, "", uncertainty)


def _format_shift(shift: np.ndarray) -> str:
    return f"({shift[0]:+.1f}, {shift[1]:+.1f}) px"


def measure_links(
    tiles: Sequence[np.ndarray],
    prior_px: np.ndarray,
    *,
    max_shift_px: float,
    min_quality: float = 0.2,
    max_uncertainty_px: float = 0.3,
    min_overlap_px: float = 4.0,
    include_corners: bool = False,
    band_px: tuple[float, float] = (3.0, 40.0),
) -> list[Link]:
    """`link_windows` and `measure_link` for every overlapping pair of in-memory tiles.

    Args:
        tiles: N 2D (Y, X) arrays (any real dtype, shapes may differ; project
            3D tiles over z first). Not modified.
        prior_px: (N, 2) float (y, x) prior position of each tile's top-left
            pixel in a common mosaic frame, in pixels.
        max_shift_px: largest expected error of a prior offset, per axis, px.
        min_quality: see `measure_link`.
        max_uncertainty_px: see `measure_link`.
        min_overlap_px: see `link_windows` and `measure_link`.
        include_corners: see `link_windows`.
        band_px: see `measure_link`.

    Returns:
        One `Link` per overlapping pair, sorted by ``(first, second)``.

    Raises:
        InvalidInputError: (a ValueError) when the number of tiles and of
            positions differ, a tile is not 2D, or for an invalid option.

    >>> from fractal_roi_tasks.sample_data import load_source
    >>> image = load_source("retina")[300:500, 300:620]
    >>> links = measure_links([image[:, :180], image[3:, 140:]], [[0.0, 0.0], [0.0, 138.0]], max_shift_px=5)
    >>> [round(v, 2) for v in links[0].offset_px]
    [3.0, 140.0]
    """
    prior = _prior(prior_px)
    arrays = _tiles(tiles, prior.shape[0])
    shapes = np.array([a.shape for a in arrays], dtype=np.int64).reshape(-1, 2)
    windows = link_windows(
        prior,
        shapes,
        max_shift_px=max_shift_px,
        min_overlap_px=min_overlap_px,
        include_corners=include_corners,
    )
    links = [
        measure_link(
            w,
            arrays[w.first][w.first_box],
            arrays[w.second][w.second_box],
            max_shift_px=max_shift_px,
            min_quality=min_quality,
            max_uncertainty_px=max_uncertainty_px,
            min_overlap_px=min_overlap_px,
            band_px=band_px,
        )
        for w in windows
    ]
    logger.debug(
        "measure_links: %d tiles, %d links, %d accepted",
        len(arrays),
        len(links),
        sum(k.accepted for k in links),
    )
    return links


def _tiles(tiles: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    arrays = [np.asarray(t) for t in tiles]
    if len(arrays) != count:
        raise InvalidInputError(
            f"got {len(arrays)} tiles but {count} prior positions: give one (y, x) per tile."
        )
    for index, array in enumerate(arrays):
        if array.ndim != 2:
            raise InvalidInputError(
                f"tile {index} has shape {array.shape}; tiles must be 2D (Y, X) "
                "(project a 3D tile over z, drop channel and time axes)."
            )
    return arrays
