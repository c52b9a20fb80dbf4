"""Multiplexing registration on numpy arrays: shift estimation and the consensus region.

`estimate_shift` measures the sub-pixel translation of one acquisition's ROI
against the reference acquisition's; `consensus_boxes` turns the
translations of all acquisitions of a ROI into whole-pixel boxes of the part
every acquisition sees. Both follow fractal-tasks-core's sign convention
(a translation is the shift that registers an acquisition onto the
reference) and work in pixels, axis order ((z,) y, x).
"""

from fractal_roi_tasks.registration.consensus import RegisteredBox, consensus_boxes
from fractal_roi_tasks.registration.shift import ShiftEstimate, estimate_shift

__all__ = ["RegisteredBox", "ShiftEstimate", "consensus_boxes", "estimate_shift"]
