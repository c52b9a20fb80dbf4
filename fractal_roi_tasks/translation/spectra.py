"""Tapers, band-limited spectra and the frequency band the sub-pixel step weighs.

A window is tapered (Tukey, separable) before its spectrum is taken; the
taper can be placed with sub-pixel precision, so that the same window can
follow content displaced by a fraction of a pixel. `Band` is the part of an
rfft2 grid that the correlation sums run over, with its weights. Arrays are
float32 / complex64 in pixel units, axis order (Y, X) (leading axes, such as
planes, are carried along).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from fractal_roi_tasks.errors import InvalidInputError


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
    window_y, spectrum_y = taper_spectrum(height, taper_fraction, float(offset[0]), fft_shape[0], False)
    window_x, spectrum_x = taper_spectrum(width, taper_fraction, float(offset[1]), fft_shape[1], True)
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
def taper_spectrum(
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



def taper_2d(shape: Sequence[int], offset: Sequence[float], taper_fraction: float) -> np.ndarray:
    """The separable window `windowed_spectrum` applies at ``offset``: (Y, X) float64.

    >>> taper_2d((8, 6), (0.0, 0.0), 0.1).shape
    (8, 6)
    """
    wy = taper_1d(shape[0], max(4.0, taper_fraction * shape[0]), offset[0])
    wx = taper_1d(shape[1], max(4.0, taper_fraction * shape[1]), offset[1])
    return np.outer(wy, wx).astype(np.float64)


def phase_ramp(spectral_band: Band, shift: Sequence[float]) -> np.ndarray:
    """``exp(2 pi i (fy sy + fx sx))`` over the band: complex128 (rows, columns).

    A cropped spectrum times this ramp is the spectrum of the image moved
    back by ``shift`` pixels (``shift`` of the content, as in `windowed_spectrum`).
    """
    return np.outer(
        np.exp(2j * np.pi * spectral_band.fy * shift[0]),
        np.exp(2j * np.pi * spectral_band.fx * shift[1]),
    )


def check_band(band_px: object) -> tuple[float, float]:
    """``band_px`` as two floats, or an `InvalidInputError` saying what is wrong.

    >>> check_band([6, 30])
    (6.0, 30.0)
    """
    try:
        values = tuple(float(v) for v in band_px)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"band_px must be two numbers (finest, coarsest), got {band_px!r}."
        ) from err
    if (
        len(values) != 2
        or not all(math.isfinite(v) and v >= 0 for v in values)
        or (0 < values[1] <= values[0])
        or 0 < values[0] < 2
    ):
        raise InvalidInputError(
            f"band_px must be (finest, coarsest) periods in pixels with 2 <= finest < coarsest "
            f"(0 disables one), got {band_px!r}."
        )
    return values
