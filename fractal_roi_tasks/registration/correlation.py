"""Building blocks of `estimate_shift`: intensity clipping, binning, windows, correlation peaks.

Everything works on float32 numpy arrays in pixel units, axis order
``(Z, Y, X)`` or ``(Y, X)``; nothing here reads files. Displacements in this
module are those of the *moving content*: a moving image whose content sits
``d`` pixels further along an axis than in the reference has displacement
``+d`` (`estimate_shift` returns ``-d``, the shift that registers it).

The correlation used for sub-pixel work is a plain (not phase-normalised)
cross-correlation of band-passed, tapered images, evaluated as a continuous
function of the displacement from the discrete Fourier transform:

``c(s) = Re sum_f W(f) B(f) conj(A(f)) exp(2 pi i f.s)``

where ``A``, ``B`` are the spectra of the tapered reference and moving windows
and ``W`` a gaussian high-pass. Its maximum is found by Newton's method on the
exact derivatives of that sum, which costs a few matrix-vector products per
step instead of an upsampled FFT.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------
# Windows and spectra


def taper_1d(length: int, taper_px: float, offset: float = 0.0) -> np.ndarray:
    """A Tukey (cosine-tapered) window over ``length`` samples, shifted by ``offset``.

    The window is 0 at and outside ``[1, length - 2]``, rises as a half cosine
    over ``taper_px`` pixels, and is 1 in between. It is evaluated at
    ``i - offset``: a window moved with sub-pixel precision, so that the same
    window can follow content displaced by a sub-pixel amount (which removes
    the bias a window fixed to the frame puts on a shift estimate).

    Args:
        length: number of samples.
        taper_px: width of each cosine flank in pixels.
        offset: shift of the window in pixels; keep ``|offset| <= 1``.

    Returns:
        (length,) float32 array.

    >>> taper_1d(8, 2.0).round(2).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0]
    """
    position = np.arange(length, dtype=np.float64) - offset
    low, high = 1.0, length - 2.0
    taper_px = max(min(taper_px, (high - low) / 2.0), 1e-6)
    # The flanks do not overlap (taper_px <= half the width): at most one of
    # the rise and the fall is below 1 anywhere, so the window is the cosine
    # of the smaller one (the product of both, with a factor exactly 1).
    ramp = np.minimum(position - low, high - position)
    ramp *= np.pi / taper_px
    np.clip(ramp, 0.0, np.pi, out=ramp)
    return (0.5 - 0.5 * np.cos(ramp)).astype(np.float32)


def windowed_spectrum(
    crop: np.ndarray,
    offset: Sequence[float],
    taper_fraction: float,
    spectral_band: Band,
) -> np.ndarray:
    """Band of the spectrum of ``crop`` times a Tukey window, weighted mean removed.

    The separable window (see `taper_1d`) follows a sub-pixel ``offset``.
    The crop is zero-padded to ``spectral_band.fft_shape``; its
    window-weighted mean is removed in the Fourier domain (the mean times the
    window's own spectrum), which is exact and cheaper than a pass over the
    pixels. The 1D windows and their spectra are cached by length and
    offset, so the reference side (offset 0) computes them once.

    Args:
        crop: (..., Y, X) float32 array; the window applies to the last two
            axes and to every leading index (plane) alike. Not modified.
        offset: (dy, dx) sub-pixel shift of the window in pixels.
        taper_fraction: flank width as a fraction of each side (>= 4 px).
        spectral_band: the `Band` (FFT size >= the crop's, kept frequencies).

    Returns:
        complex64 array ``crop.shape[:-2] + spectral_band.weight.shape``.

    >>> b = band((8, 8), (0.0, 0.0))
    >>> spec = windowed_spectrum(np.ones((6, 6), np.float32), (0.0, 0.0), 0.1, b)
    >>> spec.shape, bool(np.abs(spec).max() < 1e-5)
    ((8, 5), True)
    """
    height, width = crop.shape[-2:]
    fft_shape = spectral_band.fft_shape
    window_y, spectrum_y = _taper_spectrum(height, taper_fraction, float(offset[0]), fft_shape[0], False)
    window_x, spectrum_x = _taper_spectrum(width, taper_fraction, float(offset[1]), fft_shape[1], True)
    if (height, width) == tuple(fft_shape):
        padded = body = np.multiply(crop, window_y[:, None], dtype=np.float32)
    else:
        padded = np.zeros(crop.shape[:-2] + tuple(fft_shape), np.float32)
        body = padded[..., :height, :width]
        np.multiply(crop, window_y[:, None], out=body)
    body *= window_x
    out = spectral_band.crop(sp_fft.rfft2(padded, axes=(-2, -1)))
    window_spectrum = np.outer(spectrum_y[spectral_band.rows], spectrum_x[: spectral_band.columns])
    window_spectrum = window_spectrum.astype(np.complex64)
    mean = out[..., 0, 0].real / np.float32(window_spectrum[0, 0].real)
    out -= mean[..., None, None] * window_spectrum
    return out


@functools.lru_cache(maxsize=256)
def _taper_spectrum(
    length: int, taper_fraction: float, offset: float, fft_length: int, real: bool
) -> tuple[np.ndarray, np.ndarray]:
    """`taper_1d` of a side of `windowed_spectrum` and its (r)fft; cached (read-only)."""
    window = taper_1d(length, max(4.0, taper_fraction * length), offset)
    spectrum = (sp_fft.rfft if real else sp_fft.fft)(window, n=fft_length)
    for array in (window, spectrum):
        array.flags.writeable = False
    return window, spectrum


@dataclass(frozen=True)
class Band:
    """The part of an rfft2 grid the sub-pixel step uses, with its weights.

    Attributes:
        fft_shape: (Hf, Wf) FFT size of the images.
        rows: indices of the kept rows of the (Hf, Wf // 2 + 1) half spectrum.
        columns: number of kept columns (the first ones).
        fy: (len(rows),) row frequencies in cycles per pixel.
        fx: (columns,) column frequencies in cycles per pixel.
        weight: (len(rows), columns) float32 band-pass weight, times 2 for
            the columns that stand for two columns of the full spectrum, so
            that sums over it equal sums over the full spectrum.
    """

    fft_shape: tuple[int, int]
    rows: np.ndarray
    columns: int
    fy: np.ndarray
    fx: np.ndarray
    weight: np.ndarray

    def crop(self, spectrum: np.ndarray) -> np.ndarray:
        """The kept part of a (..., Hf, Wf // 2 + 1) spectrum (a copy)."""
        return np.take(spectrum[..., : self.columns], self.rows, axis=-2)

    def energy(self, cropped: np.ndarray) -> np.ndarray:
        """Weighted energy of cropped spectra, one value per leading index."""
        power = cropped.real**2 + cropped.imag**2
        return np.einsum("...yx,yx->...", power, self.weight)

    @functools.cached_property
    def phase_rates(self) -> tuple[np.ndarray, np.ndarray]:
        """``2 pi i fy`` and ``2 pi i fx`` (complex128): ``exp(rate * s)`` shifts by ``s`` px."""
        return 2j * np.pi * self.fy, 2j * np.pi * self.fx

    @functools.cached_property
    def derivative_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """``(2 pi i f)^k`` for k = 0, 1, 2: (3, rows) and (3, columns) complex64."""
        return tuple(
            np.stack([np.ones_like(rate), rate, rate * rate]).astype(np.complex64)
            for rate in self.phase_rates
        )


@functools.lru_cache(maxsize=64)
def band(fft_shape: tuple[int, int], band_px: tuple[float, float]) -> Band:
    """The frequency band of periods between ``band_px[0]`` and ``band_px[1]`` pixels.

    Frequencies above ``1 / band_px[0]`` cycles/px in y or x are dropped (a
    square crop of the spectrum: mostly noise for microscopy at full
    resolution, and dropping them makes every later sum 9x cheaper at
    6 px); below, a gaussian high-pass ``1 - exp(-(f * band_px[1])^2)``
    takes the weight off structures much larger than ``band_px[1]``
    (illumination, blobs, the flat inside of a saturated artefact). Cached.

    >>> b = band((64, 64), (4.0, 20.0))
    >>> len(b.rows), b.columns, float(b.weight[0, 0])
    (33, 17, 0.0)
    """
    fine, coarse = band_px
    fy_all = sp_fft.fftfreq(fft_shape[0])
    fx_all = sp_fft.rfftfreq(fft_shape[1])
    cutoff = 1.0 / fine if fine > 0 else np.inf
    rows = np.flatnonzero(np.abs(fy_all) <= cutoff + 1e-12)
    columns = int(np.count_nonzero(fx_all <= cutoff + 1e-12))
    fy, fx = fy_all[rows], fx_all[:columns]
    if coarse > 0:
        weight = 1.0 - np.exp(-((fy * coarse) ** 2))[:, None] * np.exp(-((fx * coarse) ** 2))[None, :]
    else:
        weight = np.ones((fy.size, fx.size))
    doubled = np.full(fx.shape, 2.0)
    doubled[0] = 1.0
    if fft_shape[1] % 2 == 0 and columns == fx_all.size:
        doubled[-1] = 1.0
    weight = (weight * doubled[None, :]).astype(np.float32)
    for array in (rows, fy, fx, weight):
        array.flags.writeable = False
    return Band(fft_shape, rows, columns, fy, fx, weight)


def fast_shape(shape: Sequence[int]) -> tuple[int, int]:
    """The FFT size of each of the last two axes: >= the size, with only small prime factors."""
    return tuple(sp_fft.next_fast_len(int(n), real=True) for n in shape[-2:])


# --------------------------------------------------------------------------
# Correlation peaks
#
# ``cross`` below is always a band-cropped, weighted cross-power spectrum
# ``band.crop(B) * conj(band.crop(A)) * band.weight``, so that
# ``c(s) = Re sum cross * exp(2 pi i (fy sy + fx sx))``. Sums use einsum, not
# matmul: multithreaded BLAS on these small products is erratic (0.01 to 8
# ms for the same product on a busy 2-core machine).


def _phases(frequencies: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """exp(2 pi i f s): (len(positions), len(frequencies)) complex64."""
    return np.exp(2j * np.pi * np.outer(positions, frequencies)).astype(np.complex64)


def correlation_grid(
    cross: np.ndarray, spectral_band: Band, ys: np.ndarray, xs: np.ndarray
) -> np.ndarray:
    """``c(s)`` on the grid ``ys`` x ``xs`` (pixels): (len(ys), len(xs)) float array."""
    partial = np.einsum("yx,bx->yb", cross, _phases(spectral_band.fx, xs))
    return np.einsum("ay,yb->ab", _phases(spectral_band.fy, ys), partial).real


def grid_peak(
    cross: np.ndarray, spectral_band: Band, centre: Sequence[float], radius: Sequence[int]
) -> tuple[float, float]:
    """The point of ``centre + (i, j)``, ``|i|, |j| <= radius``, that maximises ``c(s)``."""
    ys = centre[0] + np.arange(-radius[0], radius[0] + 1, dtype=np.float64)
    xs = centre[1] + np.arange(-radius[1], radius[1] + 1, dtype=np.float64)
    values = correlation_grid(cross, spectral_band, ys, xs)
    iy, ix = np.unravel_index(int(np.argmax(values)), values.shape)
    return float(ys[iy]), float(xs[ix])


def newton_peak(
    cross: np.ndarray,
    spectral_band: Band,
    start: Sequence[float],
    *,
    max_steps: int = 8,
    tolerance: float = 1e-4,
) -> tuple[float, float]:
    """The sub-pixel maximum of ``c(s)`` nearest ``start``, by Newton's method.

    ``c`` and its exact first and second derivatives are sums over the band
    (one pass over ``cross`` per step, for all six of them); steps are
    limited to half a pixel so the search stays on the peak it started on,
    and where ``c`` is not concave the step goes uphill along the gradient
    instead. See `newton_maximum` for the value there too.

    Args:
        cross: band-cropped weighted cross-power spectrum (complex64).
        spectral_band: the `Band` it was cropped with.
        start: (dy, dx) starting displacement in pixels.
        max_steps: Newton steps at most.
        tolerance: stop when a step is smaller than this (pixels).

    Returns:
        (dy, dx) the displacement of the maximum, in pixels.

    >>> b = band((32, 32), (0.0, 0.0))
    >>> f = np.exp(-2j * np.pi * (b.fy[:, None] * 0.3 + b.fx[None, :] * -0.2))
    >>> cross = (f * np.exp(-(b.fy[:, None] ** 2 + b.fx[None, :] ** 2) * 20)).astype(np.complex64)
    >>> [round(v, 4) for v in newton_peak(cross * b.weight, b, (0.0, 0.0))]
    [0.3, -0.2]
    """
    y, x, _ = newton_maximum(cross, spectral_band, start, max_steps=max_steps, tolerance=tolerance)
    return y, x


def newton_maximum(
    cross: np.ndarray,
    spectral_band: Band,
    start: Sequence[float],
    *,
    max_steps: int = 8,
    tolerance: float = 1e-4,
) -> tuple[float, float, float]:
    """`newton_peak` and ``c`` at the peak: ``(dy, dx, value)``.

    The value comes from the last evaluation and its derivatives (second
    order over a last step of at most 0.02 px: within ~1e-4 of the exact
    value, relative), or from one more evaluation after a longer last step.
    """
    (omega_y, omega_x), (phase_y, phase_x) = spectral_band.derivative_weights, spectral_band.phase_rates

    def sums_at(y: float, x: float) -> np.ndarray:
        # sums[a, b] = Re sum cross (2 pi i fy)^a (2 pi i fx)^b exp(2 pi i f.s)
        ey = omega_y * np.exp(phase_y * y).astype(np.complex64)
        ex = omega_x * np.exp(phase_x * x).astype(np.complex64)
        return np.einsum("ay,yb->ab", ey, np.einsum("yx,bx->yb", cross, ex)).real

    y, x = float(start[0]), float(start[1])
    value, step_y, step_x = 0.0, 0.0, 0.0
    for _ in range(max_steps):
        sums = sums_at(y, x)
        value = float(sums[0, 0])
        gy, gx = float(sums[1, 0]), float(sums[0, 1])
        hyy, hxy, hxx = float(sums[2, 0]), float(sums[1, 1]), float(sums[0, 2])
        determinant = hyy * hxx - hxy * hxy
        if hyy < 0 and determinant > 0:
            step_y = -(hxx * gy - hxy * gx) / determinant
            step_x = -(hyy * gx - hxy * gy) / determinant
        else:
            # Not concave here: move uphill along the gradient instead.
            norm = math.hypot(gy, gx)
            step_y, step_x = (0.25 * gy / norm, 0.25 * gx / norm) if norm > 0 else (0.0, 0.0)
        if not (math.isfinite(step_y) and math.isfinite(step_x)):
            return y, x, value
        step_y, step_x = min(max(step_y, -0.5), 0.5), min(max(step_x, -0.5), 0.5)
        y, x = y + step_y, x + step_x
        if max(abs(step_y), abs(step_x)) < tolerance:
            break
    if max(abs(step_y), abs(step_x)) > 0.02:
        return y, x, float(sums_at(y, x)[0, 0])
    value += gy * step_y + gx * step_x + 0.5 * (hyy * step_y**2 + 2 * hxy * step_y * step_x + hxx * step_x**2)
    return y, x, value


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
    ``max_shift`` pixels gives whole pixels, robustly for large shifts. The
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
    normalised = cross / (np.abs(cross) + np.float32(1e-30))
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


# --------------------------------------------------------------------------
# z


def _keys_weights(position: float, planes: int) -> np.ndarray:
    """Cubic (Keys, a = -1/2) interpolation weights over ``planes`` at ``position``.

    Neighbours beyond the stack are clamped to its first/last plane.
    """
    base = math.floor(position)
    t = position - base
    kernel = (
        ((-0.5 * t + 1.0) * t - 0.5) * t,
        (1.5 * t - 2.5) * t * t + 1.0,
        ((-1.5 * t + 2.0) * t + 0.5) * t,
        (0.5 * t - 0.5) * t * t,
    )
    weights = np.zeros(planes)
    for offset, value in zip(range(-1, 3), kernel):
        weights[min(max(base + offset, 0), planes - 1)] += value
    return weights


def z_displacement(
    cross_gram: np.ndarray,
    reference_gram: np.ndarray,
    moving_gram: np.ndarray,
    max_shift: float,
    *,
    max_steps: int = 12,
) -> float:
    """Sub-plane z displacement of a moving stack from plane-by-plane inner products.

    ``cross_gram[j, k]`` is the inner product of reference plane ``j`` and
    moving plane ``k`` (after the y/x alignment), ``reference_gram`` and
    ``moving_gram`` the same within each stack. The whole-plane start is the
    offset with the best mean normalised correlation; then a Gauss-Newton
    (Lucas-Kanade) iteration along z: the moving stack is interpolated at
    ``k + dz`` (cubic) and compared with the central z-difference of the
    reference. Only inner products between *different* planes, or between
    the two stacks, enter the update, so independent noise in the planes
    does not bias it (interpolating a noisy stack and minimising squared
    differences does: it pulls towards half planes). With fewer than four
    planes only whole planes are resolved (and a stack of 3 planes that
    differ only by defocus, symmetric about the middle one, says little
    even about whole planes).

    Args:
        cross_gram: (Z, Z) reference x moving plane inner products.
        reference_gram: (Z, Z) reference x reference.
        moving_gram: (Z, Z) moving x moving.
        max_shift: largest |dz| considered, in planes.
        max_steps: Gauss-Newton steps at most.

    Returns:
        dz, the displacement of the moving content along z, in planes.
    """
    planes = cross_gram.shape[0]
    diag_a = np.sqrt(np.maximum(np.diag(reference_gram), 1e-30))
    diag_b = np.sqrt(np.maximum(np.diag(moving_gram), 1e-30))
    normalised = cross_gram / diag_a[:, None] / diag_b[None, :]
    # Keep at least two overlapping planes (one plane pair says little).
    limit = min(int(math.floor(max_shift)), max(planes - 2, 1) if planes > 1 else 0)
    best, start = -np.inf, 0
    for offset in range(-limit, limit + 1):
        values = [normalised[k - offset, k] for k in range(planes) if 0 <= k - offset < planes]
        score = float(np.mean(values))
        if score > best:
            best, start = score, offset
    dz = float(start)
    if planes < 4:
        # One interior plane: at the focal plane of a stack the z derivative
        # vanishes (planes above and below look alike), so no sub-plane step.
        return dz
    for _ in range(max_steps):
        numerator = denominator = 0.0
        for k in range(1, planes - 1):
            t = k + dz
            if not 0.0 <= t <= planes - 1:
                continue
            v = _keys_weights(t, planes)
            # <B(k + dz) - A_k, (A_{k+1} - A_{k-1}) / 2>
            numerator += 0.5 * (v @ cross_gram[k + 1] - v @ cross_gram[k - 1])
            numerator -= 0.5 * (reference_gram[k, k + 1] - reference_gram[k, k - 1])
            # <(B(k+1+dz) - B(k-1+dz)) / 2, (A_{k+1} - A_{k-1}) / 2>
            dv = 0.5 * (_keys_weights(t + 1, planes) - _keys_weights(t - 1, planes))
            denominator += 0.5 * (dv @ cross_gram[k + 1] - dv @ cross_gram[k - 1])
        if denominator <= 0:
            break
        step = float(np.clip(numerator / denominator, -0.5, 0.5))
        dz = float(np.clip(dz - step, -max_shift, max_shift))
        if abs(step) < 1e-4:
            break
    return dz


def plane_weights(dz: float, planes: int) -> list[tuple[int, np.ndarray]]:
    """For each reference plane k seen by the moving stack at ``k + dz``: (k, weights)."""
    return [
        (k, _keys_weights(k + dz, planes))
        for k in range(planes)
        if -1e-9 <= k + dz <= planes - 1 + 1e-9
    ]
