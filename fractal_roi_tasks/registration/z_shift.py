"""The z shift of two stacks aligned in y and x, and their quality over all planes.

`z_and_quality` correlates every reference plane with every moving plane
(on the tapered, band-passed windows of the y/x step, the moving planes
moved back by the sub-pixel y/x displacement) and `z_displacement` finds the
sub-plane z displacement from those inner products alone. Displacements are
those of the moving content, in planes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.translation.boxes import moved
from fractal_roi_tasks.translation.peak import normalised_correlation
from fractal_roi_tasks.translation.spectra import Band, phase_ramp, windowed_spectrum


def keys_weights(position: float, planes: int) -> np.ndarray:
    """Cubic (Keys, a = -1/2) interpolation weights over ``planes`` at ``position``.

    Neighbours beyond the stack are clamped to its first/last plane.

    >>> keys_weights(1.0, 4).tolist(), keys_weights(1.5, 4).tolist()
    ([0.0, 1.0, 0.0, 0.0], [-0.0625, 0.5625, 0.5625, -0.0625])
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
            v = keys_weights(t, planes)
            # <B(k + dz) - A_k, (A_{k+1} - A_{k-1}) / 2>
            numerator += 0.5 * (v @ cross_gram[k + 1] - v @ cross_gram[k - 1])
            numerator -= 0.5 * (reference_gram[k, k + 1] - reference_gram[k, k - 1])
            # <(B(k+1+dz) - B(k-1+dz)) / 2, (A_{k+1} - A_{k-1}) / 2>
            dv = 0.5 * (keys_weights(t + 1, planes) - keys_weights(t - 1, planes))
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
        (k, keys_weights(k + dz, planes))
        for k in range(planes)
        if -1e-9 <= k + dz <= planes - 1 + 1e-9
    ]


def z_and_quality(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    reference_window: tuple[slice, slice],
    integer: Sequence[int],
    residual: Sequence[float],
    local: Sequence[float],
    spectral_band: Band,
    taper_fraction: float,
    max_shift_z: float,
) -> tuple[float, float]:
    """z displacement and quality of two (Z, Y, X) stacks aligned in y/x.

    Args:
        reference: (Z, Y, X) float32 reference stack.
        moving: (Z, Y, X) float32 moving stack.
        reference_window: (y, x) box of the reference the y/x step used.
        integer: (y, x) whole pixels the moving window was cut further.
        residual: (y, x) sub-pixel place of the moving window's taper.
        local: (y, x) displacement of the moving content against that window.
        spectral_band: the y/x step's `Band`.
        taper_fraction: the y/x step's taper flank fraction.
        max_shift_z: largest |dz| considered, in planes.

    Returns:
        ``(dz, quality)``: dz in planes; the normalised band-passed
        correlation over the planes that overlap at dz.
    """
    ref_planes = windowed_spectrum(
        reference[(slice(None), *reference_window)], (0.0, 0.0), taper_fraction, spectral_band
    )
    mov_planes = windowed_spectrum(
        moving[(slice(None), *moved(reference_window, integer))],
        residual,
        taper_fraction,
        spectral_band,
    )
    # Undo the sub-pixel y/x displacement of the moving planes (a phase ramp).
    ramp = phase_ramp(spectral_band, local)
    aligned = mov_planes * (ramp * spectral_band.weight).astype(np.complex64)
    cross_gram = np.einsum("jyx,kyx->jk", ref_planes.conj(), aligned).real
    reference_gram = np.einsum(
        "jyx,kyx->jk", ref_planes.conj(), ref_planes * spectral_band.weight
    ).real
    moving_gram = np.einsum(
        "jyx,kyx->jk", mov_planes.conj(), mov_planes * spectral_band.weight
    ).real
    dz = z_displacement(cross_gram, reference_gram, moving_gram, max_shift_z)
    numerator = energy_ref = energy_mov = 0.0
    for k, v in plane_weights(dz, reference.shape[0]):
        numerator += float(v @ cross_gram[k])
        energy_ref += float(reference_gram[k, k])
        energy_mov += float(v @ moving_gram @ v)
    return dz, normalised_correlation(numerator, energy_ref, energy_mov)
