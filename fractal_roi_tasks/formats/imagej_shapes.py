"""Our shapes as `roifile.ImagejRoi` objects, for `fractal_roi_tasks.formats.imagej`.

Coordinates and the choice of ImageJ ROI per shape are described in that
module's docstring; here only the conversion: outlines (traced polygon,
sub-pixel polygon or composite), EllipseRoi, points, polylines.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from roifile import ROI_OPTIONS, ROI_SUBTYPE, ROI_TYPE, ImagejRoi

from fractal_roi_tasks.formats.batch import by_plane, gather_rings
from fractal_roi_tasks.formats.coordinates import (
    ellipse_vertices,
    full_resolution_plane,
    point_plane_xy,
    polyline_runs,
    scaled_ellipse,
    to_corner_based,
)
from fractal_roi_tasks.rois.shapes import Ellipse, ObjectRoi, Point, Polygon, Polyline

# ImageJ stores integer coordinates as 16-bit values relative to the bounds
# and reads values below -5000 as unsigned; floats beyond that range.
_INT_RANGE = (-5000, 60535)


def shape_rois(roi: ObjectRoi, polygons: list, first: int, outlines, scale, ndim: int):
    """Yield (full-resolution plane or None, ImagejRoi) for the shapes of one object.

    `polygons` are the object's regions (`object_polygons`), numbered from
    `first` in `outlines`.
    """
    for z, members in by_plane(polygons).items():
        yield full_resolution_plane(z, scale), outlines.roi([first + m for m in members])
    for shape in roi.shapes:
        if isinstance(shape, Ellipse):
            yield full_resolution_plane(shape.z, scale), _ellipse_roi(shape, scale)
        elif isinstance(shape, Point):
            plane, xy = point_plane_xy(shape, scale)
            yield plane, _point_roi(xy)
        elif isinstance(shape, Polyline):
            yield from _polyline_rois(shape, scale, ndim)


class Outlines:
    """The ImageJ outline ROI of any group of polygons, all rings converted at once.

    One ring: a TRACED polygon when every corner is an integer in ImageJ's
    16-bit range, else a sub-pixel POLYGON (what ``ImagejRoi.frompoints``
    makes of int32 or float points); several rings (pieces, holes): a
    composite ROI.
    """

    def __init__(self, polygons: list[Polygon], scale: np.ndarray):
        rings = gather_rings(polygons)
        self.xy = _xy(rings.points, scale)
        self.bounds = rings.bounds.tolist()
        self.rings_of = rings.per_polygon(list(range(len(rings.hole))))
        if not len(self.xy):  # nothing to measure (and reduceat needs data)
            return
        starts = rings.bounds[:-1]
        rounded = np.round(self.xy)
        corners = rounded.astype(np.int32)
        lo, hi = _INT_RANGE
        self.traced = (
            np.logical_and.reduceat((self.xy == rounded).all(axis=1), starts)
            & (np.minimum.reduceat(self.xy, starts).min(axis=1) >= lo)
            & (np.maximum.reduceat(self.xy, starts).max(axis=1) <= hi)
        ).tolist()
        first = np.minimum.reduceat(corners, starts)
        self.box = np.hstack([first, np.maximum.reduceat(corners, starts) + 1]).tolist()
        self.relative = corners - np.repeat(first, np.diff(rings.bounds), axis=0)
        self.sub_pixel = self.xy.astype(np.float32)

    def roi(self, polygons: list[int]):
        """The ImagejRoi of polygons (indices into those given at construction)."""
        rings = [r for p in polygons for r in self.rings_of[p]]
        if len(rings) > 1:
            return _composite_roi([self.xy[self.bounds[r] : self.bounds[r + 1]] for r in rings])
        (r,) = rings
        lo, hi = self.bounds[r], self.bounds[r + 1]
        left, top, right, bottom = self.box[r]
        traced = self.traced[r]
        return ImagejRoi(
            roitype=ROI_TYPE.TRACED if traced else ROI_TYPE.POLYGON,
            options=ROI_OPTIONS.NONE if traced else ROI_OPTIONS.SUB_PIXEL_RESOLUTION,
            left=left,
            top=top,
            right=right,
            bottom=bottom,
            n_coordinates=hi - lo,
            integer_coordinates=self.relative[lo:hi],
            subpixel_coordinates=None if traced else self.sub_pixel[lo:hi],
        )


def _composite_roi(rings: list[np.ndarray]):
    """ImageJ's composite (ShapeRoi) of (x, y) rings: java.awt.geom path segments, even-odd filled."""
    path = []
    for ring in rings:
        segments = np.empty((len(ring), 3))
        segments[:, 0] = 1.0  # SEG_LINETO
        segments[0, 0] = 0.0  # SEG_MOVETO
        segments[:, 1:] = ring
        path.extend((segments.ravel(), [4.0]))  # SEG_CLOSE
    points = np.concatenate(rings)
    lo, hi = np.floor(points.min(axis=0)), np.ceil(points.max(axis=0))
    multi = np.concatenate(path).astype(np.float32)
    return ImagejRoi(
        roitype=ROI_TYPE.RECT,
        shape_roi_size=len(multi),
        multi_coordinates=multi,
        left=int(lo[0]),
        top=int(lo[1]),
        right=int(hi[0]),
        bottom=int(hi[1]),
    )


def _ellipse_roi(ellipse: Ellipse, scale: np.ndarray):
    center, a, b, angle = scaled_ellipse(ellipse, scale)
    cx, cy = center
    # Always ImageJ's EllipseRoi, even when axis-aligned: ImageJ fills an OVAL
    # from its whole-pixel bounds, up to half a pixel off the ellipse.
    ij = ImagejRoi.frompoints(ellipse_vertices(center, a, b, angle))
    ij.roitype = ROI_TYPE.FREEHAND
    ij.subtype = ROI_SUBTYPE.ELLIPSE
    ij.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    ux, uy = a * math.cos(angle), a * math.sin(angle)
    ij.x1, ij.y1, ij.x2, ij.y2 = cx - ux, cy - uy, cx + ux, cy + uy
    # ImageJ reads the aspect ratio as a float at bytes 52-55, which roifile
    # packs as arrow style (byte), arrow head size (byte), arc size (short).
    ratio = b / a if a > 0 else 1.0
    packed = struct.unpack(">BBh", struct.pack(">f", ratio))
    ij.arrow_style_or_aspect_ratio, ij.arrow_head_size, ij.rounded_rect_arc_size = packed
    return ij


def ellipse_aspect_ratio(roi) -> float:
    """The minor/major aspect ratio stored in an ImageJ EllipseRoi read by roifile."""
    packed = struct.pack(
        ">BBh", roi.arrow_style_or_aspect_ratio, roi.arrow_head_size, roi.rounded_rect_arc_size
    )
    return struct.unpack(">f", packed)[0]


def _point_roi(xy: np.ndarray):
    ij = ImagejRoi.frompoints(np.asarray(xy, np.float64).reshape(1, 2))
    ij.roitype = ROI_TYPE.POINT
    ij.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    return ij


def _polyline_rois(line: Polyline, scale: np.ndarray, ndim: int):
    for plane, xy in polyline_runs(line, scale):
        if len(xy) == 1:  # an ImageJ line needs two vertices
            yield plane, _point_roi(xy[0])
            continue
        # ImageJ line ROIs: pixel centre (x + 0.5 corner-based) is the point x
        ij = ImagejRoi.frompoints(np.asarray(xy, np.float64) - 0.5)
        ij.roitype = ROI_TYPE.POLYLINE
        ij.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
        yield plane, ij



def _xy(ring_yx: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Core (y, x) ring -> ImageJ (x, y), corner-based, full resolution."""
    return to_corner_based(ring_yx, scale[-2:])[:, ::-1]

