"""Maximum-likelihood frequency weights and the expected error of a shift estimate.

For two windows of the same content with independent noise, weighting the
cross-power spectrum by ``P / (N (2 P + N))`` (shared signal ``P``, noise
``N`` per frequency) makes the correlation peak a maximum-likelihood
estimate of the shift (Knapp and Carter, 1976); the curvature of that
weighted correlation at its peak is then the Fisher information, whose
inverse predicts the estimate's standard error. Spectra are band-cropped
(see `fractal_roi_tasks.translation.spectra.Band`), shifts (dy, dx) in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.translation.spectra import Band, phase_ramp


def ml_weight(
    reference: np.ndarray, moving: np.ndarray, spectral_band: Band, shift: Sequence[float]
) -> np.ndarray:
    """Frequency weights for a maximum-likelihood shift estimate, (rows, columns) float32.

    At the current estimate ``shift`` (of the moving content), the aligned
    cross power is the shared signal ``P(f)`` and half the power of the
    difference the noise ``N(f)`` (camera noise, and whatever else the two
    windows do not share), each averaged over rings of equal spatial
    frequency. The weight ``P / (N (2 P + N))`` keeps the frequencies where
    the windows agree and drops those where noise dominates, so the band
    adapts to each pair.

    Args:
        reference: band-cropped spectrum of the reference window (complex).
        moving: band-cropped spectrum of the moving window, same shape.
        spectral_band: the `Band` both were cropped with.
        shift: (dy, dx) current estimate, pixels.
    """
    signal = (moving * np.conj(reference) * phase_ramp(spectral_band, shift)).real
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


def expected_error(weighted: np.ndarray, spectral_band: Band, shift: Sequence[float]) -> float:
    """sqrt(trace(inverse Fisher information)) of an ML-weighted correlation at ``shift``, px.

    ``weighted`` is the cross-power spectrum times `ml_weight` (and the band
    weight); the Fisher information is minus the Hessian of its correlation
    at ``shift``. Returns inf where the peak is not a strict maximum.

    >>> from fractal_roi_tasks.translation.spectra import band
    >>> b = band((16, 16), (0.0, 0.0))
    >>> expected_error(np.zeros(b.weight.shape, np.complex64), b, (0.0, 0.0))
    inf
    """
    omega_y = 2 * np.pi * spectral_band.fy
    omega_x = 2 * np.pi * spectral_band.fx
    aligned = (weighted * phase_ramp(spectral_band, shift)).real
    hyy = float(np.einsum("yx,y->", aligned, omega_y**2))
    hxx = float(np.einsum("yx,x->", aligned, omega_x**2))
    hxy = float(np.einsum("yx,y,x->", aligned, omega_y, omega_x))
    determinant = hyy * hxx - hxy * hxy
    if not (hyy > 0 and hxx > 0 and determinant > 0 and math.isfinite(determinant)):
        return math.inf
    return math.sqrt((hyy + hxx) / determinant)
