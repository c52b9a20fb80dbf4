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
