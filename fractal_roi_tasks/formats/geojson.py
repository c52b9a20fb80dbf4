"""GeoJSON FeatureCollection (``.geojson``) as QuPath (0.4+) imports it.

One Feature per object and plane (QuPath ROIs are single-plane), written the
way QuPath's own GeoJSON export writes detections:

- ``geometry``: a GeoJSON geometry, plus QuPath's ``plane`` member
  ``{"c": c, "z": z, "t": t}`` (QuPath's ``ImagePlane``, all 0-based, read by
  its ``ROITypeAdapter``) for a 3D image, a given channel or a set spanning
  time (c = -1, "all channels", unless ``context["channel"]`` gives a 0-based
  channel; z = 0 in 2D; t = ``ObjectRoi.t``, 0 without time) and, for an
  axis-aligned ellipse, QuPath's ``"isEllipse": true`` member;
- ``properties``: ``objectType: "detection"``, ``name`` (``label-0007``,
  ``label-0007-branch-003``, first ``t03-`` in a set spanning time; the same
  for every plane of an object),
  ``classification`` (``{"name": label_name, "color": [r, g, b]}``),
  ``measurements`` (flat ``{name: number}``, the object's features row;
  non-finite values are left out, JSON has no NaN) and ``metadata``
  (strings: label, branch, time point t, label name, and text columns such
  as a branch's type).

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
from itertools import islice
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.batch import (
    Template,
    by_plane,
    feature_columns,
    gather_rings,
    json_key,
    json_texts,
    object_polygons,
    point_lists,
    signed_areas,
)
from fractal_roi_tasks.formats.context import channel_of, name_widths, scale_of, time_points_of
from fractal_roi_tasks.formats.coordinates import (
    ellipse_vertices,
    full_resolution_plane,
    is_axis_aligned,
    point_plane_xy,
    polyline_runs,
    scaled_ellipse,
    to_corner_based,
)
from fractal_roi_tasks.formats.simple_features import valid_polygons
from fractal_roi_tasks.io.atomic import write_bytes_atomic
from fractal_roi_tasks.rois.shapes import (
    Ellipse,
    ObjectRoi,
    Point,
    Polygon,
    Polyline,
    RoiSet,
)

logger = logging.getLogger(__name__)

EXTENSION = ".geojson"
_JSON = json.JSONEncoder(separators=(",", ":"))
_NON_FINITE = frozenset(json_texts([math.nan, math.inf, -math.inf]))


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """The GeoJSON text of `roi_set` (UTF-8)."""
    return _collection_text(roi_set, context or {}).encode()


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
    return json.loads(to_bytes(roi_set, context=context))


def _collection_text(roi_set: RoiSet, context: dict) -> str:
    """The FeatureCollection as compact JSON, written as text, outlines in bulk."""
    ndim = len(roi_set.image_shape)
    scale = scale_of(context, ndim)
    channel = channel_of(context)
    n_times = time_points_of(roi_set, context)
    properties = _properties(roi_set, str(context.get("label_name") or "objects"), n_times)
    polygons = [valid_polygons(object_polygons(roi)) for roi in roi_set.rois]
    outlines = iter(_outline_texts([p for group in polygons for p in group], scale))
    text = Template()
    text.add('{"type":"FeatureCollection","features":[')
    n_features = 0
    for roi, props, group in zip(roi_set.rois, properties, polygons):
        coordinates = list(islice(outlines, len(group)))
        for plane, geometry in _geometries(roi, group, coordinates, scale, ndim):
            text.add("," if n_features else "", '{"type":"Feature","geometry":{', *geometry)
            text.add(_plane_member(plane, channel, roi.t), '},"properties":', props, "}")
            n_features += 1
    text.add("]}")
    logger.debug("%d GeoJSON features from %d %s ROIs", n_features, len(roi_set.rois), roi_set.kind)
    return text.render(number=_coordinate)


def _properties(roi_set: RoiSet, label_name: str, n_times: int | None) -> list[str]:
    """The ``properties`` object of each ROI, the same for every plane of it."""
    columns = feature_columns(roi_set)
    classification = _JSON.encode({"name": label_name, "color": class_color(label_name)})
    measurements = _measurements(columns, len(roi_set.rois))
    texts = {k: v for k, v in columns.items() if any(issubclass(t, str) for t in set(map(type, v)))}
    label_width, branch_width = name_widths(roi_set.rois)
    time_width = 0 if n_times is None else max(2, len(str(n_times - 1)))
    properties = []
    for n, (roi, values) in enumerate(zip(roi_set.rois, measurements)):
        name = f"label-{roi.label:0{label_width}d}"
        metadata = {"label": str(roi.label), "label_name": label_name}
        if roi.branch is not None:
            name += f"-branch-{roi.branch:0{branch_width}d}"
            metadata["branch"] = str(roi.branch)
        if roi.t is not None:
            name = f"t{roi.t:0{time_width}d}-{name}"
            metadata["t"] = str(roi.t)
        for key, column in texts.items():
            if isinstance(column[n], str):
                metadata[str(key)] = " ".join(column[n].split())
        properties.append(
            f'{{"objectType":"detection","name":{_JSON.encode(name)},'
            f'"classification":{classification},"measurements":{{{values}}},'
            f'"metadata":{_JSON.encode(metadata)}}}'
        )
    return properties


def _measurements(columns: dict[str, list], n_rois: int) -> list[str]:
    """The members of each ROI's ``measurements``: ``"key":number``, finite numbers only."""
    members = [_number_members(key, values) for key, values in columns.items()]
    if not members:
        return [""] * n_rois
    return [",".join(filter(None, row)) for row in zip(*members)]


def _number_members(key, values: list) -> list[str | None]:
    """``"key":number`` for each value of a column; None where not a finite number."""
    prefix = json_key(str(key)) + ":"
    if set(map(type, values)) <= {int, float}:  # the usual table: no per-value type checks
        return [None if t in _NON_FINITE else prefix + t for t in json_texts(values)]
    return [None if (t := _number_text(v)) is None else prefix + t for v in values]


def class_color(name: str) -> list[int]:
    """A stable, saturated RGB colour for a class name.

    >>> class_color("nuclei") == class_color("nuclei")
    True
    """
    hue = (zlib.crc32(name.encode()) % 360) / 360.0
    return [round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, 0.95)]


# --------------------------------------------------------------------------
# Shapes -> geometries


def _geometries(roi: ObjectRoi, polygons: list, outlines: list[str], scale, ndim: int):
    """Yield (full-resolution plane or None, the geometry's members) for one object.

    `polygons` are the object's regions (`object_polygons`) and `outlines`
    the text of their rings; the members are text and arrays for `Template`.
    """
    for z, members in by_plane(polygons).items():
        if len(members) == 1:
            geometry = f'"type":"Polygon","coordinates":{outlines[members[0]]}'
        else:
            pieces = ",".join(outlines[m] for m in members)
            geometry = f'"type":"MultiPolygon","coordinates":[{pieces}]'
        yield full_resolution_plane(z, scale), [geometry]
    for shape in roi.shapes:
        if isinstance(shape, Ellipse):
            yield full_resolution_plane(shape.z, scale), _ellipse_geometry(shape, scale)
        elif isinstance(shape, Point):
            plane, xy = point_plane_xy(shape, scale)
            yield plane, [_point_geometry(xy)]
        elif isinstance(shape, Polyline):
            yield from _line_geometries(shape, scale)


def _outline_texts(polygons: list[Polygon], scale: np.ndarray) -> list[str]:
    """The coordinates of each polygon: closed rings, oriented by the right-hand rule.

    All rings are converted, oriented and formatted at once; exteriors get a
    positive shoelace area in (x, y), holes a negative one.
    """
    rings = gather_rings(polygons)
    xy = to_corner_based(rings.points, scale[-2:])[:, ::-1]
    reverse = (signed_areas(xy, rings.bounds) > 0) == rings.hole
    order, bounds = _closed(rings.bounds, reverse)
    texts = point_lists(xy[order], bounds, number=_coordinate)
    return ["[" + ",".join(group) + "]" for group in rings.per_polygon(texts)]


def _closed(bounds: np.ndarray, reverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertex order, new bounds) that reverse some rings and repeat each ring's first vertex."""
    lengths = np.diff(bounds)
    order = np.arange(bounds[-1])
    first = np.repeat(bounds[:-1], lengths)
    last = np.repeat(bounds[1:] - 1, lengths)
    order = np.where(np.repeat(reverse, lengths), first + last - order, order)
    filled = lengths > 0
    closed = np.insert(order, bounds[1:][filled], order[bounds[:-1][filled]])
    return closed, bounds + np.concatenate([[0], np.cumsum(filled)])


def _ellipse_geometry(ellipse: Ellipse, scale: np.ndarray) -> list:
    center, a, b, angle = scaled_ellipse(ellipse, scale)
    aligned = is_axis_aligned(a, b, angle)
    if aligned:  # snap to the axes so the ring's bounding box is the ellipse's
        hx = math.hypot(a * math.cos(angle), b * math.sin(angle))
        hy = math.hypot(a * math.sin(angle), b * math.cos(angle))
        a, b, angle = hx, hy, 0.0
    xy = ellipse_vertices(center, a, b, angle)  # positive area in (x, y): an exterior
    flag = ',"isEllipse":true' if aligned else ""
    return ['"type":"Polygon","coordinates":[', np.concatenate([xy, xy[:1]]), "]" + flag]


def _line_geometries(line: Polyline, scale: np.ndarray):
    for plane, xy in polyline_runs(line, scale):
        if len(xy) == 1:  # a LineString needs two positions
            yield plane, [_point_geometry(xy[0])]
        else:
            yield plane, ['"type":"LineString","coordinates":', xy]


def _point_geometry(xy: np.ndarray) -> str:
    x, y = (_coordinate(v) for v in xy.tolist())
    return f'"type":"Point","coordinates":[{x},{y}]'


def _plane_member(plane: int | None, channel: int | None, t: int | None) -> str:
    """QuPath's ``plane`` member of a geometry, for 3D images, a given channel or a time point."""
    if plane is None and channel is None and t is None:
        return ""  # QuPath's default plane, which QuPath itself leaves out
    c = -1 if channel is None else channel
    return f',"plane":{{"c":{c},"z":{0 if plane is None else plane},"t":{0 if t is None else t}}}'


# --------------------------------------------------------------------------
# Helpers


def _number_text(value) -> str | None:
    """A number as JSON writes it, or None if not a finite number."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else None
    return int.__repr__(value)


def _coordinate(value: float) -> str:
    """A coordinate as JSON writes it; JSON has no NaN or infinity."""
    if not math.isfinite(value):
        raise InvalidInputError(f"GeoJSON coordinates must be finite numbers, got {value!r}.")
    return float.__repr__(value)
