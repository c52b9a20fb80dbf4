"""The automatic threshold of a channel too big for memory, from a histogram over blocks.

`compute_threshold` smooths the whole channel and hands it to scikit-image.
Here the channel comes block by block through a reader. Each block is read
with a halo of the gaussian's radius (`smoothing_halo_px`) and smoothed on its
own, then cropped: scipy's separable filter sees the same values around every
kept pixel (the image border, where the halo is cut, is extended "nearest" in
both cases), so the smoothed values equal the whole-image smoothing.

The statistic is a histogram of the smoothed values over the range [min, max]
of the whole smoothed channel (a first pass finds the range, a second one
counts), with the bins scikit-image uses:

- otsu and triangle: `NBINS` (256) bins, as `threshold_otsu` and
  `threshold_triangle` bin a float image: the same threshold as
  `compute_threshold`, bin for bin.
- li: scikit-image iterates on the pixel values themselves. From the histogram
  (`LI_NBINS` bins, holding the count and the sum of the values in each) the
  same iteration runs with each bin's pixels on the same side of the
  threshold; it can differ from the whole-image value by up to one bin width,
  (max - min) / `LI_NBINS` of the smoothed channel.

Memory: a few blocks (with halo, in float64) and the histograms.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)

NBINS = 256
"""Bins of scikit-image's otsu and triangle thresholds on a float image."""
LI_NBINS = 4096
"""Bins for li (its error is at most one bin width)."""
_TRUNCATE = 4.0  # skimage.filters.gaussian's kernel radius, in sigmas

WindowReader = Callable[[tuple[slice, ...]], np.ndarray]
"""read(slices) -> the window of the channel at `slices`, (Y, X) or (Z, Y, X)."""


@dataclass(frozen=True)
class ChannelHistogram:
    """What the threshold is computed from.

    Attributes:
        counts: pixels per bin.
        edges: the bin edges (len(counts) + 1), over the smoothed range.
        sums: the sum of the smoothed values in each bin (li only), else None.
        has_contrast: False if the raw channel is constant.
    """

    counts: np.ndarray
    edges: np.ndarray
    sums: np.ndarray | None
    has_contrast: bool

    @property
    def bin_width(self) -> float:
        return float(self.edges[1] - self.edges[0])


def smoothing_halo_px(smoothing_sigma: float) -> int:
    """Pixels of halo a block needs so its smoothing equals the whole image's."""
    return int(_TRUNCATE * float(smoothing_sigma) + 0.5) if smoothing_sigma > 0 else 0


def channel_histogram(
    read_window: WindowReader,
    image_shape: Sequence[int],
    *,
    method: str,
    smoothing_sigma: float = 1.0,
    block_shape: Sequence[int] = (1024, 1024),
) -> ChannelHistogram:
    """The histogram of the smoothed channel, accumulated block by block.

    Args:
        read_window: returns the channel's window at the given slices (one per
            axis of `image_shape`); windows are within the image.
        image_shape: (Y, X) or (Z, Y, X).
        method: "otsu", "triangle" (`NBINS` bins) or "li" (`LI_NBINS`, with sums).
        smoothing_sigma: as in `compute_threshold`.
        block_shape: (rows, cols) of a block; a 3D block holds every plane
            (blocks are cut in y and x), so memory grows with it times Z.

    Returns:
        The `ChannelHistogram`.
    """
    from fractal_roi_tasks.segmentation.threshold import smooth as smooth_channel
    from fractal_roi_tasks.segmentation.validation import validate_sigma

    if method not in ("otsu", "li", "triangle"):
        raise InvalidInputError(f"method must be otsu, li or triangle, got {method!r}.")
    validate_sigma(smoothing_sigma)
    image_shape = tuple(int(n) for n in image_shape)
    if len(image_shape) not in (2, 3) or min(image_shape) < 1:
        raise InvalidInputError(f"image_shape must be (Y, X) or (Z, Y, X), got {image_shape}.")
    halo = smoothing_halo_px(smoothing_sigma)

    def smoothed_blocks():
        for core in _blocks(image_shape, block_shape):
            outer = tuple(
                slice(max(0, s.start - halo), min(n, s.stop + halo)) for s, n in zip(core, image_shape)
            )
            raw = np.asarray(read_window(outer))
            if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.number):
                raise InvalidInputError(f"the channel must hold numbers, got dtype {raw.dtype}.")
            crop = tuple(slice(c.start - o.start, c.stop - o.start) for c, o in zip(core, outer))
            yield raw[crop], smooth_channel(raw, smoothing_sigma)[crop]

    raw_lo = raw_hi = lo = hi = None
    for raw, smooth in smoothed_blocks():  # pass 1: the ranges
        if not np.isfinite(smooth).all():
            raise InvalidInputError("the channel has NaN or infinite pixels; replace them first.")
        raw_lo = raw.min() if raw_lo is None else min(raw_lo, raw.min())
        raw_hi = raw.max() if raw_hi is None else max(raw_hi, raw.max())
        lo = smooth.min() if lo is None else min(lo, smooth.min())
        hi = smooth.max() if hi is None else max(hi, smooth.max())
    nbins = LI_NBINS if method == "li" else NBINS
    if lo == hi:  # as numpy does for an empty range
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, nbins + 1)
    counts = np.zeros(nbins, np.int64)
    sums = np.zeros(nbins) if method == "li" else None
    for _, smooth in smoothed_blocks():  # pass 2: the counts
        counts += np.histogram(smooth, bins=nbins, range=(lo, hi))[0]
        if sums is not None:
            sums += np.histogram(smooth, bins=nbins, range=(lo, hi), weights=smooth)[0]
    return ChannelHistogram(counts, edges, sums, has_contrast=bool(raw_lo != raw_hi))


def threshold_from_histogram(histogram: ChannelHistogram, *, method: str) -> float:
    """The threshold `method` gives on the histogram; NaN without contrast.

    Example:
        >>> values = np.r_[np.zeros(900), np.full(100, 10.0)]
        >>> counts, edges = np.histogram(values, bins=NBINS)
        >>> t = threshold_from_histogram(ChannelHistogram(counts, edges, None, True), method="otsu")
        >>> 0 <= t < 10
        True
    """
    if not histogram.has_contrast:
        return math.nan
    counts, edges = histogram.counts, histogram.edges
    centers = (edges[:-1] + edges[1:]) / 2.0
    if method == "otsu":
        from skimage.filters import threshold_otsu

        return float(threshold_otsu(hist=(counts, centers)))
    if method == "triangle":
        return float(_triangle(counts.astype(np.float64), centers))
    if method == "li":
        if histogram.sums is None:
            raise InvalidInputError("li needs the per-bin sums (channel_histogram(method='li')).")
        return _li(counts, histogram.sums, float(edges[0]), histogram.bin_width)
    raise InvalidInputError(f"method must be otsu, li or triangle, got {method!r}.")


def _blocks(image_shape, block_shape):
    by, bx = (max(1, int(b)) for b in block_shape)
    height, width = image_shape[-2:]
    lead = (slice(0, image_shape[0]),) if len(image_shape) == 3 else ()
    for a in range(0, height, by):
        for c in range(0, width, bx):
            yield (*lead, slice(a, min(a + by, height)), slice(c, min(c + bx, width)))


def _triangle(counts: np.ndarray, centers: np.ndarray) -> float:
    """Zack's triangle method on a histogram (as scikit-image applies it).

    The line from the histogram's peak to the end of its longer tail; the
    threshold is the bin farthest below that line.
    """
    nonzero = np.flatnonzero(counts)
    low, high = int(nonzero[0]), int(nonzero[-1])
    peak = int(np.argmax(counts))
    if low == high:
        return float(centers[low])
    n = len(counts)
    flip = peak - low < high - peak  # the longer tail is on the right
    if flip:
        counts = counts[::-1]
        low, peak = n - high - 1, n - peak - 1
    height, width = float(counts[peak]), float(peak - low)
    scale = math.sqrt(height**2 + width**2)
    steps = np.arange(peak - low)
    distance = (height / scale) * steps - (width / scale) * counts[steps + low]
    level = int(np.argmax(distance)) + low
    return float(centers[n - level - 1 if flip else level])


def _li(counts: np.ndarray, sums: np.ndarray, lo: float, bin_width: float) -> float:
    """Li's minimum cross-entropy iteration with each bin's pixels kept together.

    As scikit-image: values shifted to start at 0, start at the mean, then
    t <- (m_b - m_f) / (ln m_b - ln m_f) with m_b, m_f the mean of the values
    at or below and above t, until t moves by at most half the smallest gap between bin means. A bin is
    above t when its mean value is.
    """
    used = counts > 0
    n, total = counts[used].astype(np.float64), sums[used] - counts[used] * lo
    means = total / n
    cum_n, cum_s = np.cumsum(n), np.cumsum(total)
    # scikit-image stops at half the smallest gap between distinct values:
    # here between the values (means) of neighbouring non-empty bins.
    tolerance = float(np.diff(means).min()) / 2 if len(means) > 1 else bin_width / 2
    t_next, t_curr = cum_s[-1] / cum_n[-1], -2 * tolerance
    for _ in range(10_000):
        if abs(t_next - t_curr) <= tolerance:
            break
        t_curr = t_next
        k = int(np.searchsorted(means, t_curr, side="right"))  # bins [0, k) are background
        if k == 0 or k == len(means):
            break
        mean_back = cum_s[k - 1] / cum_n[k - 1]
        mean_fore = (cum_s[-1] - cum_s[k - 1]) / (cum_n[-1] - cum_n[k - 1])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (math.log(mean_back) - math.log(mean_fore))
    return float(t_next + lo)
