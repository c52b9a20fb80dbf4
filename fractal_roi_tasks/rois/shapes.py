"""The ROI objects every writer is fed with.

All coordinates are pixels of the label image they came from, axis order
(z,) y, x, with pixel centres on integers: pixel (y, x) covers the square from
(y - 0.5, x - 0.5) to (y + 0.5, x + 0.5). Each file format converts to its
consumer's convention at its own boundary (see `fractal_roi_tasks.formats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

ShapeKind = Literal["polygon", "mask", "ellipse", "point", "skeleton"]
# Shapes `extract_rois` makes from a label image; "skeleton" comes from
# `rois.skeleton` (one polyline per branch).
SHAPE_KINDS: tuple[str, ...] = ("polygon", "mask", "ellipse", "point")


@dataclass(frozen=True, eq=False)
class Polygon:
    """One connected piece of an object in one plane.

    Attributes:
        exterior: (N, 2) float64 (y, x) vertices on pixel corners; the ring
            closes from the last vertex back to the first.
        holes: rings of the holes inside this piece, same form.
        z: the plane, or None for a 2D image.
    """

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = ()
    z: int | None = None


@dataclass(frozen=True)
class Ellipse:
    """The ellipse with the same second moments as the object (in one plane).

    Attributes:
        center: (y, x) in pixels.
        semi_axes: (major, minor) semi-axis lengths in pixels.
        angle: direction of the major axis in radians, from the +x (column)
            axis towards +y (row); on screen, with rows pointing down, that is
            clockwise.
        z: the plane, or None for a 2D image.
    """

    center: tuple[float, float]
    semi_axes: tuple[float, float]
    angle: float
    z: int | None = None


@dataclass(frozen=True)
class Point:
    """The object's centroid: (y, x), or (z, y, x) in 3D, in pixels."""

    position: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Polyline:
    """An open path through pixel centres, e.g. one skeleton branch.

    Attributes:
        points: (N, 2) (y, x) or (N, 3) (z, y, x) float64 vertices in order,
            on pixel centres. A 3D path may change plane along the way; a
            single-plane consumer splits it into runs of constant z.
        closed: True for a cycle (the path returns to its first vertex,
            which is not repeated).
    """

    points: np.ndarray
    closed: bool = False


@dataclass(frozen=True, eq=False)
class Mask:
    """The object's binary mask cropped to its bounding box.

    Attributes:
        origin: index of the crop's first pixel, (y, x) or (z, y, x).
        mask: boolean array, same dimensionality as the image.
    """

    origin: tuple[int, ...]
    mask: np.ndarray


Shape = Polygon | Ellipse | Point | Mask | Polyline


@dataclass(frozen=True)
class ObjectRoi:
    """All shapes of one object (a label value), or of one skeleton branch.

    Attributes:
        label: the object's label value (for a branch: its skeleton's label).
        name: unique within its set, e.g. "7", or "7-3" for branch 3 of 7.
        shapes: the ROI's shapes, in pixel coordinates.
        branch: index of the branch within its skeleton; None for objects.
        t: the time point (index along the image's ``t`` axis) the ROI was
            found in; None for an image without a ``t`` axis. In a set that
            spans time points, ``name`` carries it too ("t3-7"), so names stay
            unique.
    """

    label: int
    name: str
    shapes: tuple[Shape, ...]
    branch: int | None = None
    t: int | None = None


@dataclass(frozen=True)
class RoiSet:
    """What `extract_rois` found in one label image.

    Attributes:
        kind: the shape kind of every ROI ("polygon", "mask", "ellipse",
            "point", or "skeleton" for one polyline ROI per branch).
        rois: one `ObjectRoi` per kept object (or branch), in increasing
            label order.
        features: one row per ROI, same order; columns named with their unit
            (``_px`` pixels, ``_um`` micrometers, ``_um2``, ``_um3``).
        image_shape: shape of the label image, (y, x) or (z, y, x).
        spacing: pixel size per axis in micrometers, same order.
        n_too_small: objects left out because they had fewer pixels than
            `min_area_px`.
    """

    kind: str
    rois: tuple[ObjectRoi, ...]
    features: pd.DataFrame
    image_shape: tuple[int, ...]
    spacing: tuple[float, ...]
    n_too_small: int = 0
