"""Drift of a time-lapse: every frame's shift against a reference frame, on numpy arrays.

Chaining frame-to-frame shifts adds every frame's error to the next (after
T frames the drift is off by the random walk of T errors). Here every frame
is measured against the reference frame and against neighbours at several
time scales, and all frames are solved together by weighted least squares,
as tiles are placed in stitching. Modules:

- `pairs`: which frame pairs to measure (`frame_pairs`);
- `solve`: per-frame shifts from pairwise shifts, with outlier rejection
  (`solve_path`);
- `estimate`: `estimate_drift` (measure, flag blank frames, solve,
  interpolate) and its result `DriftEstimate`.

Shifts follow `fractal_roi_tasks.registration`'s sign: the shift to apply to
a frame to register it onto the reference. Nothing here reads files.
"""

from fractal_roi_tasks.drift.estimate import DriftEstimate, estimate_drift
from fractal_roi_tasks.drift.pairs import frame_pairs
from fractal_roi_tasks.drift.solve import PathSolution, solve_path

__all__ = ["DriftEstimate", "PathSolution", "estimate_drift", "frame_pairs", "solve_path"]
