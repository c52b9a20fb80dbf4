"""`ShiftEstimate`: what every registration estimator returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ShiftEstimate:
    """The translation that registers a moving image onto a reference image.

    Attributes:
        shift: ``(dz, dy, dx)`` for 3D inputs, ``(dy, dx)`` for 2D inputs, in
            pixels of the inputs: the shift to apply to the moving image to
            register it onto the reference (fractal-tasks-core's and
            scikit-image's sign; ``scipy.ndimage.shift(moving, shift)``
            approximates the reference). Content displaced by ``+d`` in the
            moving image gives ``-d``. Multiples of ``1 / upsample_factor``.
        quality: normalised cross-correlation of the overlapping parts after
            alignment (tapered and high-passed), in [-1, 1]; 0.0 when an
            image has no contrast.
        reliable: ``quality >= min_quality``, both images have contrast and
            the shift lies within ``max_shift_px``. When False, use a
            fallback (e.g. the well's other FOVs).
        reason: empty when reliable, otherwise why not, e.g.
            ``"no contrast in the moving image"``,
            ``"quality 0.05 below 0.3"`` or ``"shift (-4.33, 0.19) exceeds
            max_shift_px (3.0, 3.0)"`` (both, joined by ``"; "``, when both
            apply).
        coarse_shift: the whole-pixel shift of the coarse step, same axes and
            sign as ``shift`` (useful to see how far the refinement moved).
    """

    shift: tuple[float, ...]
    quality: float
    reliable: bool
    reason: str
    coarse_shift: tuple[float, ...] = ()
