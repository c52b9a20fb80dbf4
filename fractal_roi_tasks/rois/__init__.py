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
from fractal_roi_tasks.rois.skeleton import SkeletonRois, extract_branches

__all__ = [
    "SHAPE_KINDS",
    "Ellipse",
    "Mask",
    "ObjectRoi",
    "Point",
    "Polygon",
    "Polyline",
    "RoiSet",
    "SkeletonRois",
    "extract_branches",
    "extract_rois",
]
