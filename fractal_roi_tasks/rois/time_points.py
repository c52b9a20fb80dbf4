"""One `RoiSet` over several time points of a time-lapse.

Objects are found in each time point on its own (one `RoiSet` per t, as for
an image without t); this module checks which time points to work on and joins
the per-t results into one set: each `ObjectRoi` gets its ``t`` and a name
prefixed ``"t{t}-"`` (so names stay unique when label ids repeat across t),
and the features gain the time index ``t`` and the time in the image's unit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.names import TIME_COLUMN, TIME_INDEX_COLUMN
from fractal_roi_tasks.rois.shapes import RoiSet

logger = logging.getLogger(__name__)

# Short unit symbols, as `_um` is for micrometers; other units keep their name.
TIME_UNIT_SYMBOLS = {
    "nanosecond": "ns",
    "microsecond": "us",
    "millisecond": "ms",
    "second": "s",
    "minute": "min",
    "hour": "h",
    "day": "d",
}


def time_column(unit: str | None) -> str:
    """The name of the column holding the time in `unit`.

    >>> time_column("second"), time_column("minute"), time_column("picosecond")
    ('time_s', 'time_min', 'time_picosecond')
    >>> time_column(None)
    'time'
    """
    if not unit:
        return "time"
    return TIME_COLUMN.format(unit=TIME_UNIT_SYMBOLS.get(unit, unit))


def select_time_points(
    n_time_points: int | None, time_points: Sequence[int] | None
) -> tuple[int, ...] | None:
    """The time points to work on, or None for an image that is not a time series.

    Args:
        n_time_points: size of the image's ``t`` axis; None without one.
        time_points: indices along ``t`` asked for; None for every one.

    Returns:
        The chosen indices, sorted and without repeats; None when there is
        no ``t`` axis or it has one time point (then the output is what an
        image without ``t`` gives).

    >>> select_time_points(5, None), select_time_points(5, [3, 1, 3])
    ((0, 1, 2, 3, 4), (1, 3))
    >>> select_time_points(None, None) is None, select_time_points(1, [0]) is None
    (True, True)
    """
    if n_time_points is None:
        if time_points is not None:
            raise InvalidInputError(
                f"time_points {list(time_points)} given, but the image has no t axis; "
                "leave time_points unset."
            )
        return None
    if time_points is None:
        chosen = tuple(range(n_time_points))
    else:
        if not time_points:
            raise InvalidInputError(
                "time_points is an empty list; give at least one index along t, "
                "or leave it unset for every time point."
            )
        wrong = sorted({int(t) for t in time_points if not 0 <= t < n_time_points})
        if wrong:
            raise InvalidInputError(
                f"time_points {wrong} out of range: the image has {n_time_points} time "
                f"point{'s' if n_time_points != 1 else ''} (indices 0-{n_time_points - 1})."
            )
        chosen = tuple(sorted({int(t) for t in time_points}))
    return None if n_time_points == 1 else chosen


def time_point_name(t: int, name: str) -> str:
    """The name of a ROI found at time point `t`: ``"t3-7"`` for ROI ``"7"`` at t = 3."""
    return f"t{t}-{name}"


def _with_time(frame: pd.DataFrame, t: int, time: float | None, column: str) -> pd.DataFrame:
    """`frame` with the time index (and the time) inserted after its ``label`` column."""
    frame = frame.copy()
    at = frame.columns.get_loc("label") + 1 if "label" in frame.columns else 0
    frame.insert(at, TIME_INDEX_COLUMN, pd.Series([t] * len(frame), index=frame.index, dtype="int64"))
    if time is not None:
        frame.insert(at + 1, column, pd.Series([time] * len(frame), index=frame.index, dtype="float64"))
    return frame


def combine_time_points(
    roi_sets: Sequence[tuple[int, RoiSet]], *, time_step: float | None = None, time_unit: str | None = None
) -> RoiSet:
    """One `RoiSet` holding the ROIs of every time point.

    Args:
        roi_sets: (t, the `RoiSet` found in time point t), in the order the
            output lists them; every set of the same kind and image shape.
        time_step: the image's time between time points (its NGFF ``t``
            scale), in `time_unit`; None adds no time column.
        time_unit: the unit of `time_step` (names the column, see `time_column`).

    Returns:
        A `RoiSet` whose ROIs carry their ``t`` and names ``"t{t}-{name}"``
        (a branch ``"7-2"`` becomes ``"t3-7-2"``), whose features gain
        ``t`` and ``time_{unit}`` (t x `time_step`) after ``label``, and
        whose ``n_too_small`` sums over the time points.

    >>> import numpy as np
    >>> from fractal_roi_tasks.rois import extract_rois
    >>> frame = np.zeros((6, 6), np.uint8); frame[1:3, 1:3] = 7
    >>> one = extract_rois(frame, shape="point")
    >>> both = combine_time_points([(0, one), (2, one)], time_step=60.0, time_unit="second")
    >>> [(roi.name, roi.t) for roi in both.rois]
    [('t0-7', 0), ('t2-7', 2)]
    >>> both.features[["label", "t", "time_s"]].values.tolist()
    [[7.0, 0.0, 0.0], [7.0, 2.0, 120.0]]
    """
    if not roi_sets:
        raise InvalidInputError("combine_time_points needs at least one time point.")
    first = roi_sets[0][1]
    mixed = {(s.kind, tuple(s.image_shape)) for _, s in roi_sets}
    if len(mixed) > 1:
        raise InvalidInputError(f"time points differ in shape kind or image shape: {sorted(mixed)}.")
    column = time_column(time_unit)
    rois, frames = [], []
    for t, roi_set in roi_sets:
        rois.extend(replace(roi, t=int(t), name=time_point_name(t, roi.name)) for roi in roi_set.rois)
        time = None if time_step is None else float(t) * float(time_step)
        frames.append(_with_time(roi_set.features, int(t), time, column))
    features = pd.concat(frames, ignore_index=True)
    logger.debug("%d ROIs over %d time points", len(rois), len(roi_sets))
    return replace(
        first,
        rois=tuple(rois),
        features=features,
        n_too_small=sum(s.n_too_small for _, s in roi_sets),
    )


def combine_skeletons(skeletons: Sequence[tuple[int, object]]):
    """One skeleton result (`rois.skeleton.SkeletonRois`) over every time point.

    The branches are joined by `combine_time_points` (no time column: the
    branch table is indexed by the branch names, which carry t); the
    per-skeleton summaries (``objects``) gain ``t``; the counts add up.
    """
    first = skeletons[0][1]
    branches = combine_time_points([(t, s.roi_set) for t, s in skeletons])
    objects = pd.concat(
        [_with_time(s.objects, int(t), None, "") for t, s in skeletons], ignore_index=True
    )
    return replace(
        first,
        roi_set=branches,
        objects=objects,
        n_isolated_pixels=sum(s.n_isolated_pixels for _, s in skeletons),
        n_labels_without_branches=sum(s.n_labels_without_branches for _, s in skeletons),
        empty=all(s.empty for _, s in skeletons),
    )
