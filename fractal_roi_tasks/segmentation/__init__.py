"""Classic segmentation of one channel into a label image."""

from fractal_roi_tasks.segmentation.threshold import (
    DEFAULT_MIN_AREA_PX,
    DEFAULT_SPLIT_MIN_DISTANCE_PX,
    THRESHOLD_METHODS,
    SegmentationResult,
    ThresholdMethod,
    compute_threshold,
    segment_channel,
)

__all__ = [
    "DEFAULT_MIN_AREA_PX",
    "DEFAULT_SPLIT_MIN_DISTANCE_PX",
    "THRESHOLD_METHODS",
    "SegmentationResult",
    "ThresholdMethod",
    "compute_threshold",
    "segment_channel",
]
