"""The peak of a band-limited cross-correlation, as a continuous function of the shift.

``cross`` below is always a band-cropped, weighted cross-power spectrum
``band.crop(B) * conj(band.crop(A)) * band.weight`` of two windowed spectra
(see `fractal_roi_tasks.translation.spectra`), so that the correlation at a
displacement ``s`` (pixels, (dy, dx), of B's content against A's) is

``c(s) = Re sum cross * exp(2 pi i (fy sy + fx sx))``.

`grid_peak` finds its best whole-pixel (or any grid) point, `newton_maximum`
the sub-pixel maximum by Newton's method on the exact derivatives of that
sum, which costs a few matrix-vector products per step instead of an
upsampled FFT. Sums use einsum, not matmul: multithreaded BLAS on these
small products is erratic (0.01 to 8 ms for the same product on a busy
2-core machine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.translation.spectra import Band

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


def newton_maximum(
    cross: np.ndarray,
    spectral_band: Band,
    start: Sequence[float],
    *,
    max_steps: int = 8,
    tolerance: float = 1e-4,
) -> tuple[float, float, float]:
    """The sub-pixel maximum of ``c(s)`` nearest ``start`` and ``c`` there, by Newton's method.

    ``c`` and its exact first and second derivatives are sums over the band
    (one pass over ``cross`` per step, for all six of them); steps are
    limited to half a pixel so the search stays on the peak it started on,
    and where ``c`` is not concave the step goes uphill along the gradient
    instead. The value comes from the last evaluation and its derivatives
    (second order over a last step of at most 0.02 px: within ~1e-4 of the
    exact value, relative), or from one more evaluation after a longer last
    step.

    Args:
        cross: band-cropped weighted cross-power spectrum (complex64).
        spectral_band: the `Band` it was cropped with.
        start: (dy, dx) starting displacement in pixels.
        max_steps: Newton steps at most.
        tolerance: stop when a step is smaller than this (pixels).

    Returns:
        ``(dy, dx, value)``: the displacement of the maximum, in pixels, and
        ``c`` there.

    >>> from fractal_roi_tasks.translation.spectra import band
    >>> b = band((32, 32), (0.0, 0.0))
    >>> f = np.exp(-2j * np.pi * (b.fy[:, None] * 0.3 + b.fx[None, :] * -0.2))
    >>> cross = (f * np.exp(-(b.fy[:, None] ** 2 + b.fx[None, :] ** 2) * 20)).astype(np.complex64)
    >>> [round(v, 4) for v in newton_maximum(cross * b.weight, b, (0.0, 0.0))[:2]]
    [0.3, -0.2]
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



def normalised_correlation(value: float, energy_a: float, energy_b: float) -> float:
    """``value / sqrt(energy_a energy_b)`` clipped to [-1, 1]; 0 when an energy is not positive.

    With ``value`` the correlation at the peak and the energies those of the
    two windows (`Band.energy`), this is their normalised cross-correlation,
    the quality both registration and stitching report.

    >>> normalised_correlation(3.0, 4.0, 4.0), normalised_correlation(1.0, 0.0, 2.0)
    (0.75, 0.0)
    """
    if energy_a <= 0 or energy_b <= 0:
        return 0.0
    return float(np.clip(value / math.sqrt(energy_a * energy_b), -1.0, 1.0))
