"""Label images and skeletons -> ROI shapes with measurements (numpy only)."""

from fractal_roi_tasks.rois.extract import extract_rois
from fractal_roi_tasks.rois.shapes import (
    SHAPE_KINDS,
    Ellipse,
    Mask,
    ObjectRoi,
    Point,
    Polygon,
    Polyline,
    RoiSet,
)
from fractal_roi_tasks.rois.skeleton import SkeletonRois, extract_branches  # noqa: F401

__all__ = [
    "SHAPE_KINDS",
    "Ellipse",
    "Mask",
    "ObjectRoi",
    "Point",
    "Polygon",
    "Polyline",
    "RoiSet",
    "extract_rois",
]
