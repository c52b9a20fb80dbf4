"""Intensities before a shift is measured: clipping, binning, trends, gain, gradients.

Every function takes and returns numpy arrays in pixel units, axis order
``(Z, Y, X)`` or ``(Y, X)``, and never modifies its input. Registration uses
the quantile clipping and the block mean (a coarse pyramid level); stitching
uses the trend removal, the gain match (vignetting) and the gaussian
gradients (the input of its whole-pixel match).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.translation.spectra import taper_2d

_QUANTILE_SAMPLES = 1 << 12
"""At most this many pixels (a regular sub-grid) estimate the intensity quantiles."""


# --------------------------------------------------------------------------
# Intensities


def sorted_quantiles(values: np.ndarray, levels: Sequence[float]) -> list[float]:
    """``np.quantile(values, levels)`` (its default, linear method), by a full sort.

    Sorting is several times faster than the partition `np.quantile` uses
    when two levels near both ends are wanted (50 against 230 us on 16,384
    float32 values), and gives the same numbers.

    >>> sorted_quantiles(np.arange(11.0), (0.0, 0.25, 0.95))
    [0.0, 2.5, 9.5]
    """
    ordered = np.sort(values, axis=None)
    last = ordered.size - 1
    out = []
    for level in levels:
        position = last * float(level)
        below = min(int(math.floor(position)), last)
        weight = position - below
        low, high = float(ordered[below]), float(ordered[min(below + 1, last)])
        # numpy's lerp, exact at both ends.
        out.append(high - (high - low) * (1.0 - weight) if weight >= 0.5 else low + (high - low) * weight)
    return out


def clip_to_quantiles(
    image: np.ndarray, quantiles: tuple[float, float] | None
) -> tuple[np.ndarray, float]:
    """A float32 copy of ``image`` clipped to two of its intensity quantiles.

    The quantiles are estimated on a regular sub-grid of at most 4,096
    pixels (every other row and column of a 128 x 128 image), enough for
    the 1st and 99.9th percentile, and 5x faster than all pixels at that
    size. Clipping the top keeps a saturated artefact from dominating the
    correlation (fractal-tasks-core's ``rescale_intensity`` option does the
    same); rescaling is unnecessary since every later step is invariant to
    offset and scale.

    Args:
        image: (Y, X) or (Z, Y, X) array of any real dtype; not modified.
        quantiles: ``(low, high)`` in [0, 1], or None for no clipping.

    Returns:
        ``(clipped, contrast)``: a new float32 array of the same shape and the
        difference between the two clip levels (0 for a flat image).

    >>> clipped, contrast = clip_to_quantiles(np.arange(100.0).reshape(10, 10), (0.1, 0.9))
    >>> round(float(clipped.min()), 2), round(float(clipped.max()), 2), round(contrast, 1)
    (9.9, 89.1, 79.2)
    """
    out = np.array(image, dtype=np.float32, copy=True)
    if quantiles is None:
        low, high = float(out.min()), float(out.max())
    else:
        step = max(1, math.ceil(math.sqrt(out.size / _QUANTILE_SAMPLES)))
        low, high = sorted_quantiles(out[..., ::step, ::step], quantiles)
        np.clip(out, low, high, out=out)
    return out, high - low


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` x ``factor`` blocks of the last two axes.

    Trailing rows and columns that do not fill a block are dropped, as a
    pyramid level written by a converter would (fractal-tasks-core registers
    at such a level).

    Args:
        image: (..., Y, X) float array.
        factor: block side in pixels, >= 1.

    Returns:
        (..., Y // factor, X // factor) float32 array.

    >>> block_mean(np.arange(16, dtype=np.float32).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    if factor == 1:
        return np.asarray(image, dtype=np.float32)
    height = image.shape[-2] // factor * factor
    width = image.shape[-1] // factor * factor
    rows = image[..., :height, :width]
    summed = rows[..., 0::factor, :].astype(np.float32, copy=True)
    for k in range(1, factor):
        summed += rows[..., k::factor, :]
    out = summed[..., 0::factor].copy()
    for k in range(1, factor):
        out += summed[..., k::factor]
    out *= np.float32(1.0 / (factor * factor))
    return out


KEPT_BASES = 2
"""How many bases of the latest window shapes are kept. One measurement reuses
its window's shape at every step; stitching windows rarely share a shape
across links, so a cache of many (64: ~350 MiB at 1024 px tiles) made memory
grow with the number of tiles. Two keep memory at two windows' worth."""

_bases: OrderedDict[tuple[tuple[int, int], int], np.ndarray] = OrderedDict()


def polynomial_basis(shape: tuple[int, int], order: int) -> np.ndarray:
    """(Y * X, terms) monomials in y and x up to ``order``, coordinates scaled to [-0.5, 0.5].

    Read-only; the bases of the `KEPT_BASES` latest shapes are kept.

    >>> polynomial_basis((2, 3), 1).shape
    (6, 3)
    """
    key = (tuple(int(n) for n in shape), int(order))
    basis = _bases.get(key)
    if basis is not None:
        _bases.move_to_end(key)
        return basis
    basis = _monomials(*key)
    _bases[key] = basis
    while len(_bases) > KEPT_BASES:
        _bases.popitem(last=False)
    return basis


def _monomials(shape: tuple[int, int], order: int) -> np.ndarray:
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


def least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """argmin |design @ c - target| by the normal equations (a few columns), None if singular.

    Normal equations with einsum, not ``lstsq``: multithreaded LAPACK on these
    tall, thin systems is erratic on a busy machine (ms instead of us).

    >>> least_squares(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]), np.array([1.0, 3.0, 5.0])).round(6).tolist()
    [1.0, 2.0]
    """
    gram = np.einsum("ki,kj->ij", design, design)
    rhs = np.einsum("ki,k->i", design, target)
    scale = np.sqrt(np.maximum(np.diag(gram), 1e-300))
    try:
        solution = np.linalg.solve(gram / np.outer(scale, scale), rhs / scale) / scale
    except np.linalg.LinAlgError:
        return None
    return solution if np.isfinite(solution).all() else None


def detrended(
    crop: np.ndarray, offset: Sequence[float], *, taper_fraction: float, order: int = 2
) -> np.ndarray:
    """``crop`` less its least-squares polynomial trend, weighted by the taper at ``offset``.

    Args:
        crop: (Y, X) float32 array. Not modified.
        offset: (dy, dx) sub-pixel place of the taper (see `taper_2d`).
        taper_fraction: flank width of the taper as a fraction of each side.
        order: order of the polynomial in y and x.

    Returns:
        (Y, X) float32 array; ``crop`` itself when the fit is singular.

    >>> y, x = np.mgrid[:16, :16].astype(np.float32)
    >>> float(np.abs(detrended(3 + 2 * y - x + 0.5 * x * y, (0, 0), taper_fraction=0.1)).max()) < 1e-3
    True
    """
    basis = polynomial_basis(tuple(crop.shape), order)
    weight = np.sqrt(taper_2d(crop.shape, offset, taper_fraction).ravel())
    coefficients = least_squares(basis * weight[:, None], crop.ravel() * weight)
    if coefficients is None:
        return crop
    return (crop - (basis @ coefficients).reshape(crop.shape)).astype(np.float32)


def gain_matched(
    moving: np.ndarray,
    reference: np.ndarray,
    *,
    taper_fraction: float,
    order: int = 1,
    sigma_px: float = 6.0,
) -> np.ndarray:
    """``moving`` times the smooth gain that best maps it onto ``reference`` (same content).

    Vignetting multiplies two tiles by different smooth profiles over their
    overlap; the texture then carries opposite intensity ramps in the two
    windows, which pulls the correlation peak. The gain, a polynomial in y
    and x of ``order`` (for a quadratic falloff the ratio of two shifted
    profiles is about linear), is the weighted least-squares fit of
    ``reference ~ gain * moving`` on copies smoothed by ``sigma_px`` (so that
    texture does not drive it); a gain outside [0.2, 5] is not applied.

    Args:
        moving: (Y, X) float32 array. Not modified.
        reference: (Y, X) array of the same shape. Not modified.
        taper_fraction: flank width of the taper weighting the fit.
        order: order of the gain polynomial.
        sigma_px: gaussian smoothing of both copies, in pixels.

    Returns:
        (Y, X) float32 array; ``moving`` itself when no gain is applied.

    >>> ramp = np.linspace(1.0, 2.0, 32)[None, :] * np.ones((32, 1))
    >>> texture = np.random.default_rng(0).random((32, 32)) + 1
    >>> matched = gain_matched((texture / ramp).astype(np.float32), texture, taper_fraction=0.1)
    >>> round(float(np.abs(matched / texture - 1)[4:-4, 4:-4].max()), 2)  # 0.5 before
    0.03
    """
    from scipy import ndimage

    smooth_moving = ndimage.gaussian_filter(moving.astype(np.float64), sigma_px, mode="reflect")
    smooth_reference = ndimage.gaussian_filter(
        reference.astype(np.float64), sigma_px, mode="reflect"
    )
    basis = polynomial_basis(tuple(moving.shape), order)
    weight = np.sqrt(taper_2d(moving.shape, (0.0, 0.0), taper_fraction).ravel())
    design = basis * (smooth_moving.ravel() * weight)[:, None]
    coefficients = least_squares(design, smooth_reference.ravel() * weight)
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


def gaussian_gradients(patch: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Gaussian derivatives along y and x of a (Y, X) patch, float64, same shape.

    The patch is continued beyond its border by odd reflection (``2 f(0) -
    f(-k)``: a linear continuation), which keeps the derivatives near the
    border close to those the full image would give; a tile's border is
    exactly where its overlap with the neighbour lies.

    >>> dy, dx = gaussian_gradients(np.tile(np.arange(20.0), (20, 1)), 2.0)
    >>> float(np.abs(dy).max()) < 1e-9, bool(np.allclose(dx, 1.0, rtol=1e-3))
    (True, True)
    """
    from scipy import ndimage

    pad = int(math.ceil(4 * sigma)) + 1
    data = np.pad(patch.astype(np.float64), pad, mode="reflect", reflect_type="odd")
    inner = (slice(pad, pad + patch.shape[0]), slice(pad, pad + patch.shape[1]))
    return [ndimage.gaussian_filter(data, sigma, order=order)[inner] for order in ((1, 0), (0, 1))]
