"""Multiplexing registration on numpy arrays: shift estimation and the consensus region.

`estimate_shift` measures the sub-pixel translation of one acquisition's ROI
against the reference acquisition's from two full-resolution arrays;
`coarse_shift`, `refinement_windows` and `refine_shift` are its two steps
apart, for a caller that reads a coarse pyramid level and then only a window
at full resolution (as Calculate Registration does). `consensus_boxes` turns
the translations of all acquisitions of a ROI into whole-pixel boxes of the
part every acquisition sees. All follow fractal-tasks-core's sign convention
(a translation is the shift that registers an acquisition onto the
reference) and work in pixels, axis order ((z,) y, x).

Modules: `shift` (`estimate_shift` and the method), `coarse` (the coarse
step), `windows` (where to cut the full-resolution windows), `fine` (the
sub-pixel step, quality and reliability), `z_shift` (z in stacks),
`inputs` (validation and intensity clipping), `shift_estimate` (the
result), `consensus`. The measuring steps themselves are those of
`fractal_roi_tasks.translation`, shared with stitching.
"""

from fractal_roi_tasks.registration.consensus import RegisteredBox, consensus_boxes
from fractal_roi_tasks.registration.shift import (
    RefinementWindows,
    ShiftEstimate,
    coarse_shift,
    estimate_shift,
    refine_shift,
    refinement_windows,
)

__all__ = [
    "RefinementWindows",
    "RegisteredBox",
    "ShiftEstimate",
    "coarse_shift",
    "consensus_boxes",
    "estimate_shift",
    "refine_shift",
    "refinement_windows",
]
