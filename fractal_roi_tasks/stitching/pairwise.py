"""The offset measured between two overlapping tiles.

The middle of tile placement: `fractal_roi_tasks.stitching.overlaps` lists
the pairs of tiles whose prior (stage) positions overlap and the window of
each to read (`link_windows`, re-exported here); `measure_link` measures, on
those two windows, where the second tile sits relative to the first, with
sub-pixel precision, a quality score and an expected error, and says
whether the measurement can be trusted; `fractal_roi_tasks.stitching.solve`
places all tiles from the links. Every step of the measurement is one of
`fractal_roi_tasks.translation`.

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
   offset and refined by `fractal_roi_tasks.stitching.subpixel` (gain and
   trend matched, maximum-likelihood weights, the taper following the
   estimate). A common part narrower than 8 px is not refined.
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

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.overlaps import (
    LinkWindow,
    check_positive,
    check_prior,
    link_windows,
    search_radius,
)
from fractal_roi_tasks.stitching.subpixel import MIN_SUBPIXEL_PX, subpixel_offset
from fractal_roi_tasks.translation.intensity import gaussian_gradients
from fractal_roi_tasks.translation.spectra import check_band
from fractal_roi_tasks.translation.whole_pixel import masked_ncc_match

__all__ = [
    "DEFAULT_LINK_OPTIONS",
    "Link",
    "LinkOptions",
    "LinkWindow",
    "link_windows",
    "measure_link",
    "measure_links",
    "search_radius",
]

logger = logging.getLogger(__name__)

_MATCH_SIGMA_PX = 2.0
"""Gaussian derivatives of this sigma (px) feed the whole-pixel match."""

_MAX_REFINEMENT_PX = 1.5
"""A sub-pixel estimate further than this from the whole-pixel match is not trusted."""

_GAUSS_PER_PERIOD = 1.0 / (math.pi * math.sqrt(2.0))
"""sigma = period * this: the gaussian that keeps e^-1 of the amplitude at that period."""


@dataclass(frozen=True)
class LinkOptions:
    """Which overlapping pairs are linked and which measured offsets are trusted.

    The options `measure_links` and `fractal_roi_tasks.stitching.solve.place_tiles`
    share; ``max_shift_px`` is not one of them, since it depends on the
    stage of each data set and has no default.

    Attributes:
        min_quality: a link whose quality is below this is rejected, in [-1, 1].
        max_uncertainty_px: a link whose expected error is above this (px)
            is rejected: the overlap holds too little shared detail.
        min_overlap_px: pairs overlapping by less than this (in y or x, px)
            are not linked.
        include_corners: also link tiles that overlap only at a corner.
        band_px: (finest, coarsest) period weighed by the sub-pixel step, in
            pixels (see `measure_link`); 0 disables either limit.
    """

    min_quality: float = 0.2
    max_uncertainty_px: float = 0.3
    min_overlap_px: float = 4.0
    include_corners: bool = False
    band_px: tuple[float, float] = (3.0, 40.0)


DEFAULT_LINK_OPTIONS = LinkOptions()
"""The options `measure_links` and `place_tiles` use unless given others."""


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
    max_shift_px = check_positive(max_shift_px, "max_shift_px")
    max_uncertainty_px = check_positive(max_uncertainty_px, "max_uncertainty_px", allow_zero=False)
    min_overlap_px = check_positive(min_overlap_px, "min_overlap_px", allow_zero=False)
    try:
        quality_ok = -1.0 <= float(min_quality) <= 1.0
    except (TypeError, ValueError):
        quality_ok = False
    if not quality_ok:
        raise InvalidInputError(f"min_quality must be a number in [-1, 1], got {min_quality!r}.")
    band_limits = check_band(band_px)
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
    sigma = max(_MATCH_SIGMA_PX, band_limits[0] * _GAUSS_PER_PERIOD)
    centre = np.round(prior + origin).astype(int)
    match = masked_ncc_match(
        gaussian_gradients(first, sigma),
        gaussian_gradients(second, sigma),
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
    refined = subpixel_offset(first, second, match.displacement, band_limits)
    if refined is None:
        return result(
            whole, 0.0, f"the tiles overlap by less than {MIN_SUBPIXEL_PX} px at the best match: too little to refine"
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
    options: LinkOptions = DEFAULT_LINK_OPTIONS,
) -> list[Link]:
    """`link_windows` and `measure_link` for every overlapping pair of in-memory tiles.

    Args:
        tiles: N 2D (Y, X) arrays (any real dtype, shapes may differ; project
            3D tiles over z first). Not modified.
        prior_px: (N, 2) float (y, x) prior position of each tile's top-left
            pixel in a common mosaic frame, in pixels.
        max_shift_px: largest expected error of a prior offset, per axis, px.
        options: which pairs are linked and which offsets trusted (`LinkOptions`).

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
    prior = check_prior(prior_px)
    arrays = _tiles(tiles, prior.shape[0])
    shapes = np.array([a.shape for a in arrays], dtype=np.int64).reshape(-1, 2)
    windows = link_windows(
        prior,
        shapes,
        max_shift_px=max_shift_px,
        min_overlap_px=options.min_overlap_px,
        include_corners=options.include_corners,
    )
    links = [
        measure_link(
            w,
            arrays[w.first][w.first_box],
            arrays[w.second][w.second_box],
            max_shift_px=max_shift_px,
            min_quality=options.min_quality,
            max_uncertainty_px=options.max_uncertainty_px,
            min_overlap_px=options.min_overlap_px,
            band_px=options.band_px,
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
