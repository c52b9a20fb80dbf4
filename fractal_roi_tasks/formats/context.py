"""The `context` a writer is given, read and checked once for every format."""

from __future__ import annotations

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError


def scale_of(context: dict, ndim: int) -> np.ndarray:
    """Per axis, the ROI set's pixel size over full resolution (1 when not given)."""
    scale = context.get("scale")
    if scale is None:
        return np.ones(ndim)
    try:
        values = np.asarray(scale, float)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"context['scale'] must be one number per axis, got {scale!r}."
        ) from err
    if values.shape != (ndim,) or not np.all(np.isfinite(values) & (values > 0)):
        raise InvalidInputError(
            f"context['scale'] must give one positive factor per image axis ({ndim} values, "
            f"level pixel size over full-resolution pixel size), got {scale!r}."
        )
    return values


def channel_of(context: dict) -> int | None:
    """The 0-based channel the ROIs belong to, or None (every channel)."""
    channel = context.get("channel")
    if channel is None:
        return None
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or channel < 0:
        raise InvalidInputError(
            f"context['channel'] must be a 0-based channel index (int >= 0), got {channel!r}."
        )
    return int(channel)


def name_widths(rois) -> tuple[int, int]:
    """Zero-padding of labels and branches so that names sort like the objects."""
    labels = [r.label for r in rois] or [0]
    branches = [r.branch for r in rois if r.branch is not None] or [0]
    return max(4, len(str(max(labels)))), max(3, len(str(max(branches))))


def time_points_of(roi_set, context: dict) -> int | None:
    """The number of time points of a set spanning time, or None without a t axis.

    ``context["n_time_points"]`` (the image's t size) when given, else one past
    the last ROI's ``t``; None when no ROI has a ``t`` (whatever the context
    says). Every ROI has a ``t`` or none has.
    """
    times = [roi.t for roi in roi_set.rois]
    given = context.get("n_time_points")
    if given is not None and (
        isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 1
    ):
        raise InvalidInputError(
            f"context['n_time_points'] must be the image's number of time points (int >= 1), "
            f"got {given!r}."
        )
    if all(t is None for t in times):  # no t axis: every file as without time
        return None
    if any(t is None for t in times):
        missing = [roi.name for roi in roi_set.rois if roi.t is None][:5]
        raise InvalidInputError(
            f"Some ROIs have a time point and some do not (without: {missing}); "
            "a set spanning time points needs a t on every ROI."
        )
    if min(times) < 0:
        raise InvalidInputError(f"ROI time points must be >= 0, got {min(times)}.")
    if given is not None and max(times) >= given:
        raise InvalidInputError(
            f"A ROI is at time point {max(times)} but context['n_time_points'] is {given}."
        )
    return int(given) if given is not None else max(times) + 1


def time_spacing_of(context: dict) -> tuple[float, str | None] | None:
    """(time between time points, its NGFF unit name or None), or None when not given."""
    spacing = context.get("time_spacing")
    if spacing is None:
        return None
    if isinstance(spacing, bool) or not isinstance(spacing, (int, float, np.number)) or not (
        np.isfinite(spacing) and spacing > 0
    ):
        raise InvalidInputError(
            f"context['time_spacing'] must be the time between time points (a positive "
            f"number, in context['time_unit']), got {spacing!r}."
        )
    unit = context.get("time_unit")
    return float(spacing), None if unit is None else str(unit)
