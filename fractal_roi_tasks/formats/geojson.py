"""GeoJSON FeatureCollection (``.geojson``) as QuPath (0.4+) imports it.

One Feature per object and plane (QuPath ROIs are single-plane), written the
way QuPath's own GeoJSON export writes detections:

- ``geometry``: a GeoJSON geometry, plus QuPath's ``plane`` member
  ``{"c": c, "z": z, "t": 0}`` for a 3D image (z 0-based; c = -1, "all
  channels", unless ``context["channel"]`` gives a 0-based channel) and, for
  an axis-aligned ellipse, QuPath's ``"isEllipse": true`` member;
- ``properties``: ``objectType: "detection"``, ``name`` (``label-0007``,
  ``label-0007-branch-003``; the same for every plane of an object),
  ``classification`` (``{"name": label_name, "color": [r, g, b]}``),
  ``measurements`` (flat ``{name: number}``, the object's features row;
  non-finite values are left out, JSON has no NaN) and ``metadata``
  (strings: label, branch, label name, and text columns such as a branch's
  type).

=================  ===========================================================
our shape          geometry
=================  ===========================================================
Polygon            Polygon (one piece) or MultiPolygon (several), each an
                   exterior ring then its holes
Mask               the mask's exact outline (traced with `extract_rois`), as
                   Polygon
Ellipse            Polygon of 72 vertices, the first at the end of the major
                   axis; axis-aligned ellipses also carry ``isEllipse`` and
                   QuPath rebuilds an exact EllipseROI from the ring's
                   bounding box (QuPath has no rotated ellipse, so a rotated
                   one stays a polygon)
Point              Point
Polyline           LineString through the pixel centres; a closed branch
                   repeats its first vertex; 3D: one Feature per run of
                   constant z, and a single-vertex run is a Point (a
                   LineString needs two positions)
=================  ===========================================================

Coordinates: full-resolution pixels, x first, pixel (x, y) covering
[x, x + 1) x [y, y + 1) (`coordinates.to_corner_based` with
``context["scale"]``); pixel centres, where points and lines sit, are at
x + 0.5. QuPath's y axis points down. Rings are closed (the first position
repeated) and oriented by RFC 7946's right-hand rule computed on the numbers
as written: exteriors have positive shoelace area in (x, y), holes negative
(on screen, with y down, exteriors run clockwise). QuPath, like ImageJ,
fills pixels whose centres are inside, so an outline gives back exactly the
object's pixels.
"""

from __future__ import annotations

import colorsys
import json
import logging
import math
import zlib
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.coordinates import to_corner_based
from fractal_roi_tasks.io.atomic import write_bytes_atomic
from fractal_roi_tasks.rois.shapes import (
    Ellipse,
    Mask,
    ObjectRoi,
    Point,
    Polygon,
    Polyline,
    RoiSet,
)

logger = logging.getLogger(__name__)

EXTENSION = ".geojson"
ELLIPSE_VERTICES = 72  # a multiple of 4: the ends of both axes are vertices


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """The GeoJSON text of `roi_set` (UTF-8)."""
    collection = feature_collection(roi_set, context=context)
    return json.dumps(collection, separators=(",", ":"), allow_nan=False).encode()


def from_bytes(data: bytes) -> dict:
    """Parse GeoJSON text: the FeatureCollection as a dict."""
    try:
        document = json.loads(data)
    except ValueError as err:
        raise InvalidInputError(f"Not GeoJSON: the data is not valid JSON ({err}).") from err
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        kind = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise InvalidInputError(f"Expected a GeoJSON FeatureCollection, got type {kind!r}.")
    if not isinstance(document.get("features"), list):
        raise InvalidInputError("The GeoJSON FeatureCollection has no 'features' list.")
    return document


def write(path: str | Path, roi_set: RoiSet, *, context: dict | None = None) -> Path:
    """Write the GeoJSON file at `path`, replacing any previous one atomically."""
    return write_bytes_atomic(path, to_bytes(roi_set, context=context))


def read(path: str | Path) -> dict:
    """Read a GeoJSON file (see `from_bytes`)."""
    return from_bytes(Path(path).read_bytes())


def feature_rings(feature: dict) -> list[np.ndarray]:
    """The rings of a Polygon or MultiPolygon feature, as written.

    Returns:
        one (N, 2) float64 array of (x, y) positions per ring (closed: the last
        position repeats the first), every polygon's exterior then its holes,
        polygon after polygon. Filling them with the even-odd rule gives the
        feature's area.
    """
    geometry = feature.get("geometry") or {}
    kind = geometry.get("type")
    if kind == "Polygon":
        polygons = [geometry["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise InvalidInputError(f"Only Polygon and MultiPolygon features have rings, got {kind!r}.")
    return [np.asarray(ring, float).reshape(-1, 2) for polygon in polygons for ring in polygon]


def feature_collection(roi_set: RoiSet, *, context: dict | None = None) -> dict:
    """The FeatureCollection of `roi_set` as a dict (what `to_bytes` writes)."""
    context = context or {}
    ndim = len(roi_set.image_shape)
    scale = _scale(context, ndim)
    channel = _channel(context)
    label_name = context.get("label_name") or "objects"
    classification = {"name": str(label_name), "color": class_color(str(label_name))}
    records = roi_set.features.to_dict(orient="records")
    if len(records) != len(roi_set.rois):
        raise InvalidInputError(
            f"The ROI set has {len(roi_set.rois)} ROIs but {len(records)} feature rows; "
            "expected one row per ROI."
        )
    label_width, branch_width = _name_widths(roi_set.rois)
    features = []
    for roi, row in zip(roi_set.rois, records):
        name = f"label-{roi.label:0{label_width}d}"
        metadata = {"label": str(roi.label), "label_name": str(label_name)}
        if roi.branch is not None:
            name += f"-branch-{roi.branch:0{branch_width}d}"
            metadata["branch"] = str(roi.branch)
        measurements = {str(k): _number(v) for k, v in row.items() if _number(v) is not None}
        metadata.update({str(k): " ".join(v.split()) for k, v in row.items() if isinstance(v, str)})
        for plane, geometry in _geometries(roi, scale, ndim):
            if plane is not None or channel is not None:
                geometry["plane"] = {
                    "c": -1 if channel is None else channel,
                    "z": 0 if plane is None else plane,
                    "t": 0,
                }
            features.append(
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {
                        "objectType": "detection",
                        "name": name,
                        "classification": classification,
                        "measurements": measurements,
                        "metadata": metadata,
                    },
                }
            )
    logger.debug(
        "%d GeoJSON features from %d %s ROIs", len(features), len(roi_set.rois), roi_set.kind
    )
    return {"type": "FeatureCollection", "features": features}


def class_color(name: str) -> list[int]:
    """A stable, saturated RGB colour for a class name.

    >>> class_color("nuclei") == class_color("nuclei")
    True
    """
    hue = (zlib.crc32(name.encode()) % 360) / 360.0
    return [round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, 0.95)]


# --------------------------------------------------------------------------
# Shapes -> geometries


def _geometries(roi: ObjectRoi, scale: np.ndarray, ndim: int):
    """Yield (full-resolution plane or None, geometry) for one object's shapes."""
    polygons = [s for s in roi.shapes if isinstance(s, Polygon)]
    for shape in roi.shapes:
        if isinstance(shape, Mask):
            polygons.extend(_mask_polygons(shape))
    by_plane: dict = {}
    for polygon in polygons:
        by_plane.setdefault(polygon.z, []).append(polygon)
    for z, group in by_plane.items():
        rings = [
            [_ring(p.exterior, scale, exterior=True)]
            + [_ring(h, scale, exterior=False) for h in p.holes]
            for p in group
        ]
        if len(rings) == 1:
            geometry = {"type": "Polygon", "coordinates": rings[0]}
        else:
            geometry = {"type": "MultiPolygon", "coordinates": rings}
        yield _plane(z, scale), geometry
    for shape in roi.shapes:
        if isinstance(shape, Ellipse):
            yield _plane(shape.z, scale), _ellipse_geometry(shape, scale)
        elif isinstance(shape, Point):
            position = np.asarray(shape.position, float)
            xy = to_corner_based(position[None, -2:], scale[-2:])[0, ::-1]
            plane = _plane(position[0], scale) if ndim == 3 else None
            yield plane, {"type": "Point", "coordinates": xy.tolist()}
        elif isinstance(shape, Polyline):
            yield from _line_geometries(shape, scale)


def _mask_polygons(mask: Mask) -> list[Polygon]:
    """The exact outline of a mask, as polygons in the image's coordinates."""
    from fractal_roi_tasks.rois.extract import extract_rois

    traced = extract_rois(np.asarray(mask.mask).astype(np.uint8), shape="polygon")
    offset = np.asarray(mask.origin[-2:], float)
    z0 = mask.origin[0] if len(mask.origin) == 3 else 0
    return [
        Polygon(
            exterior=p.exterior + offset,
            holes=tuple(h + offset for h in p.holes),
            z=None if p.z is None else p.z + z0,
        )
        for roi in traced.rois
        for p in roi.shapes
    ]


def _ring(ring_yx: np.ndarray, scale: np.ndarray, *, exterior: bool) -> list:
    """A closed GeoJSON ring, oriented by the right-hand rule on (x, y)."""
    xy = to_corner_based(ring_yx, scale[-2:])[:, ::-1]
    x, y = xy[:, 0], xy[:, 1]
    area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    if (area > 0) != exterior:
        xy = xy[::-1]
    return np.concatenate([xy, xy[:1]]).tolist()


def _ellipse_geometry(ellipse: Ellipse, scale: np.ndarray) -> dict:
    center, a, b, angle = _scaled_ellipse(ellipse, scale)
    aligned = _axis_aligned(a, b, angle)
    if aligned:  # snap to the axes so the ring's bounding box is the ellipse's
        hx = math.hypot(a * math.cos(angle), b * math.sin(angle))
        hy = math.hypot(a * math.sin(angle), b * math.cos(angle))
        a, b, angle = hx, hy, 0.0
    xy = ellipse_vertices(center, a, b, angle)  # positive area in (x, y): an exterior
    geometry = {"type": "Polygon", "coordinates": [np.concatenate([xy, xy[:1]]).tolist()]}
    if aligned:
        geometry["isEllipse"] = True
    return geometry


def ellipse_vertices(center, a: float, b: float, angle: float, n: int = ELLIPSE_VERTICES):
    """(n, 2) x, y points of an ellipse, the first at the end of the major axis.

    `center` is (x, y), `a` and `b` the semi-axes along and across `angle`
    (from +x towards +y), all in the same frame.
    """
    t = 2.0 * np.pi * np.arange(n) / n
    cos_t, sin_t = np.cos(t), np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    x = center[0] + a * cos_t * ca - b * sin_t * sa
    y = center[1] + a * cos_t * sa + b * sin_t * ca
    return np.stack([x, y], axis=1)


def _line_geometries(line: Polyline, scale: np.ndarray):
    points = np.asarray(line.points, float)
    if len(points) == 0:
        return
    if line.closed:
        points = np.concatenate([points, points[:1]])
    if points.shape[1] == 3:
        runs = np.split(points, np.flatnonzero(np.diff(points[:, 0]) != 0) + 1)
    else:
        runs = [points]
    for run in runs:
        xy = to_corner_based(run[:, -2:], scale[-2:])[:, ::-1]
        plane = _plane(run[0, 0], scale) if run.shape[1] == 3 else None
        if len(xy) == 1:
            yield plane, {"type": "Point", "coordinates": xy[0].tolist()}
        else:
            yield plane, {"type": "LineString", "coordinates": xy.tolist()}


# --------------------------------------------------------------------------
# Helpers


def _plane(z, scale: np.ndarray) -> int | None:
    """The full-resolution plane holding level plane (or point) `z`; None in 2D."""
    if z is None:
        return None
    corner = float(to_corner_based(np.array([[float(z)]]), scale[:1])[0, 0])
    return max(0, math.ceil(corner) - 1)


def _scaled_ellipse(ellipse: Ellipse, scale: np.ndarray):
    """(center (x, y), a, b, angle) in full-resolution, corner-based pixels."""
    sy, sx = float(scale[-2]), float(scale[-1])
    cy, cx = to_corner_based(np.asarray([ellipse.center], float), scale[-2:])[0]
    a, b = (float(v) for v in ellipse.semi_axes)
    angle = float(ellipse.angle)
    if sy == sx:
        return (cx, cy), a * sx, b * sx, angle
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    cov = rot @ np.diag([a * a, b * b]) @ rot.T
    stretch = np.diag([sx, sy])
    values, vectors = np.linalg.eigh(stretch @ cov @ stretch)
    major = vectors[:, 1]
    return (
        (cx, cy),
        math.sqrt(values[1]),
        math.sqrt(max(values[0], 0.0)),
        math.atan2(major[1], major[0]),
    )


def _axis_aligned(a: float, b: float, angle: float) -> bool:
    return abs((a * a - b * b) * math.sin(angle) * math.cos(angle)) <= 1e-12 * max(a * a, 1e-300)


def _scale(context: dict, ndim: int) -> np.ndarray:
    scale = context.get("scale")
    if scale is None:
        return np.ones(ndim)
    values = np.asarray(scale, float)
    if values.shape != (ndim,) or not np.all(values > 0):
        raise InvalidInputError(
            f"context['scale'] must give one positive factor per image axis ({ndim} values, "
            f"level pixel size over full-resolution pixel size), got {scale!r}."
        )
    return values


def _channel(context: dict) -> int | None:
    channel = context.get("channel")
    if channel is None:
        return None
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or channel < 0:
        raise InvalidInputError(
            f"context['channel'] must be a 0-based channel index (int >= 0), got {channel!r}."
        )
    return int(channel)


def _name_widths(rois) -> tuple[int, int]:
    labels = [r.label for r in rois] or [0]
    branches = [r.branch for r in rois if r.branch is not None] or [0]
    return max(4, len(str(max(labels)))), max(3, len(str(max(branches))))


def _number(value) -> float | int | None:
    """A finite JSON number, or None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
