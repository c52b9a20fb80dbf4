"""ImageJ/Fiji RoiSet (``.roi.zip``): what Fiji's ROI Manager opens.

One ImageJ ROI per object and plane (ImageJ ROIs are single-plane), written
with `roifile`, in label order, named so that names sort like the objects:

=================  ===========================================================
our shape          ImageJ ROI
=================  ===========================================================
Polygon, one ring  TRACED polygon (integer corners), or POLYGON with sub-pixel
                   float coordinates when a corner is not on an integer
Polygon, holes or  composite ROI (ImageJ's ShapeRoi: type RECT with a path of
several pieces     MOVETO/LINETO/CLOSE segments); ImageJ builds it as an
                   even-odd GeneralPath, so holes, and islands in holes, come
                   out right
Mask               the mask's exact outline, traced with `extract_rois`, then
                   as Polygon (ImageJ has no mask ROI)
Ellipse            ImageJ's EllipseRoi (FREEHAND, subtype ELLIPSE,
                   major-axis end points x1, y1, x2, y2 and the aspect ratio
                   minor/major as a float at header bytes 52-55), with its
                   72-vertex polygon stored too for other readers
Point              POINT with one sub-pixel point
Polyline           POLYLINE through the pixel centres, which for an ImageJ
                   line ROI are at integer coordinates: pixel (row y, col x)
                   is the vertex (x, y) (ImageJ's `Roi.getContainedPoints`
                   covers pixel (x, y) for a line through (x, y)); a closed
                   branch repeats its first vertex; a 3D branch becomes one
                   ROI per run of constant z, and a run of a single vertex a
                   POINT (an ImageJ line needs two vertices)
=================  ===========================================================

Coordinates follow ImageJ: x before y, pixel (x, y) covers [x, x + 1) x
[y, y + 1), full-resolution pixels (`coordinates.to_corner_based` with
``context["scale"]``). ImageJ fills pixel (x, y) of a polygon or composite
when its centre (x + 0.5, y + 0.5) is inside (`ij.process.PolygonFiller`),
and our outlines run along pixel edges, so filling an outline gives back
exactly the object's pixels. Line ROIs are the exception: ImageJ puts a
line's pixel centres at integer coordinates, so polyline vertices are the
corner-based coordinates minus 0.5 (integers at full resolution).

Positions (ImageJ's are 1-based, 0 meaning "every"): a 3D ROI gets the
hyperstack position z = plane + 1; c = ``context["channel"] + 1`` when a
(0-based) channel is given, else 0 (shown on every channel); t = the ROI's
time point + 1 in a set spanning time (``ObjectRoi.t``), else 0 (every
frame). ImageJ's RoiDecoder sets them with ``Roi.setPosition(c, z, t)``, so
``getTPosition()`` gives t + 1. A 2D image's ROIs get z = 0, so without a
channel or time they have no position at all and ImageJ shows them on every
plane. Names: ``label-0007``, ``label-0007-branch-003``, plus ``-z05``
(0-based plane, as in our tables) in 3D, and first ``t03-`` (0-based time
point) in a set spanning time, zero-padded to the widest value of the set,
with ``-01``, ``-02``... where a branch crosses the same plane twice.

Measurements: each ROI carries its object's features row as ImageJ ROI
properties (ImageJ 1.52+, file version >= 224: ``key: value`` lines, read
back by ``Roi.getProperty(key)`` / the macro ``Roi.getProperty``), plus
``z`` (0-based full-resolution plane) in 3D, ``t`` (0-based time point) in a
set spanning time and ``label_name`` when known.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from roifile import ROI_OPTIONS, ROI_SUBTYPE, ROI_TYPE, ImagejRoi

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.batch import (
    by_plane,
    feature_columns,
    float_texts,
    gather_rings,
    object_polygons,
)
from fractal_roi_tasks.formats.context import channel_of, name_widths, scale_of, time_points_of
from fractal_roi_tasks.formats.coordinates import (
    ellipse_vertices,
    full_resolution_plane,
    polyline_runs,
    scaled_ellipse,
    to_corner_based,
)
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

EXTENSION = ".roi.zip"
# ImageJ stores integer coordinates as 16-bit values relative to the bounds
# and reads values below -5000 as unsigned; floats beyond that range.
_INT_RANGE = (-5000, 60535)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same ROIs give the same bytes
# Entries are stored, not deflated: deflating thousands of 1-2 kB entries
# (zlib sets up a fresh stream for each) took longer than building the ROIs,
# for a file about 2.7 times smaller. Fiji reads both.
_ZIP_METHOD = zipfile.ZIP_STORED


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """The RoiSet zip of `roi_set`: one ``<name>.roi`` entry per ImageJ ROI."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", _ZIP_METHOD) as archive:
        for roi in imagej_rois(roi_set, context=context):
            info = zipfile.ZipInfo(f"{roi.name}.roi", date_time=_ZIP_DATE)
            info.compress_type = _ZIP_METHOD
            archive.writestr(info, roi.tobytes())
    return buffer.getvalue()


def from_bytes(data: bytes) -> list:
    """Parse a RoiSet zip (or a single ``.roi``): a list of `roifile.ImagejRoi`."""
    if data[:4] == b"Iout":
        return [ImagejRoi.frombytes(data)]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".roi")]
            return [ImagejRoi.frombytes(archive.read(n)) for n in names]
    except zipfile.BadZipFile as err:
        raise InvalidInputError(
            "Not an ImageJ RoiSet: expected a zip of .roi files or a single .roi "
            f"(starting with b'Iout'), got data starting with {data[:4]!r}."
        ) from err


def write(path: str | Path, roi_set: RoiSet, *, context: dict | None = None) -> Path:
    """Write the RoiSet zip at `path`, replacing any previous file atomically."""
    return write_bytes_atomic(path, to_bytes(roi_set, context=context))


def read(path: str | Path) -> list:
    """Read a RoiSet zip written by `write` (see `from_bytes`)."""
    return from_bytes(Path(path).read_bytes())


def imagej_rois(roi_set: RoiSet, *, context: dict | None = None) -> list:
    """The `roifile.ImagejRoi` objects of `roi_set`, named, positioned, with properties.

    Useful on its own to put the ROIs in an ImageJ TIFF overlay (tifffile's
    ``metadata={"Overlays": [roi.tobytes() for roi in ...]}``).
    """
    context = context or {}
    ndim = len(roi_set.image_shape)
    scale = scale_of(context, ndim)
    channel = channel_of(context)
    properties = _Properties(feature_columns(roi_set), roi_set.rois, context.get("label_name"))
    label_width, branch_width = name_widths(roi_set.rois)
    plane_width = max(2, len(str(max(0, math.ceil(roi_set.image_shape[0] * scale[0]) - 1))))
    n_times = time_points_of(roi_set, context)
    time_width = 0 if n_times is None else max(2, len(str(n_times - 1)))
    polygons = [object_polygons(roi) for roi in roi_set.rois]
    outlines = _Outlines([p for group in polygons for p in group], scale)
    named: list[tuple[str, object]] = []
    first = 0
    for n, (roi, group) in enumerate(zip(roi_set.rois, polygons)):
        base = f"label-{roi.label:0{label_width}d}"
        if roi.t is not None:
            base = f"t{roi.t:0{time_width}d}-{base}"
        if roi.branch is not None:
            base += f"-branch-{roi.branch:0{branch_width}d}"
        for plane, ij in _shape_rois(roi, group, first, outlines, scale, ndim):
            name = base if plane is None else f"{base}-z{plane:0{plane_width}d}"
            ij.c_position = 0 if channel is None else channel + 1
            ij.z_position = 0 if plane is None else plane + 1
            ij.t_position = 0 if roi.t is None else roi.t + 1
            ij.position = 0
            ij.props = properties.text(n, plane)
            named.append((name, ij))
        first += len(group)
    rois = []
    for name, ij in _unique(named):
        ij.name = name
        rois.append(ij)
    logger.debug("%d ImageJ ROIs from %d %s ROIs", len(rois), len(roi_set.rois), roi_set.kind)
    return rois


# --------------------------------------------------------------------------
# Shapes -> ImageJ ROIs


def _shape_rois(roi: ObjectRoi, polygons: list, first: int, outlines, scale, ndim: int):
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
            position = np.asarray(shape.position, float)
            xy = to_corner_based(position[None, -2:], scale[-2:])[0, ::-1]
            plane = full_resolution_plane(position[0], scale) if ndim == 3 else None
            yield plane, _point_roi(xy)
        elif isinstance(shape, Polyline):
            yield from _polyline_rois(shape, scale, ndim)


class _Outlines:
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


# --------------------------------------------------------------------------
# Coordinates, positions, names, properties


def _xy(ring_yx: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Core (y, x) ring -> ImageJ (x, y), corner-based, full resolution."""
    return to_corner_based(ring_yx, scale[-2:])[:, ::-1]


def _unique(named: list[tuple[str, object]]):
    """Append -01, -02... to names used more than once (in order)."""
    counts = Counter(name for name, _ in named)
    seen: Counter = Counter()
    for name, item in named:
        if counts[name] > 1:
            seen[name] += 1
            width = max(2, len(str(counts[name])))
            name = f"{name}-{seen[name]:0{width}d}"
        yield name, item


class _Properties:
    """The ImageJ properties text of each ROI: ``key: value`` lines, sorted by key.

    What roifile's ``properties`` setter writes for the dict {features row,
    branch, t, label_name, z}, with keys and values made readable by ImageJ;
    built per column, once per kind of ROI (with or without branch and z).
    """

    def __init__(self, columns: dict[str, list], rois, label_name):
        self._values = {k: _java_values(values) for k, values in columns.items()}
        self._rois = rois
        self._label_name = label_name
        self._texts: dict = {}

    def text(self, n: int, plane: int | None) -> str:
        """The properties of object `n` on full-resolution `plane` (None in 2D)."""
        kind = (self._rois[n].branch is not None, plane is not None)
        if kind not in self._texts:
            self._texts[kind] = self._build(*kind)
        before, z_key, after = self._texts[kind]
        if plane is None:
            return before[n]
        return f"{before[n]}{z_key}: {plane}\n{after[n]}"

    def _build(self, branch: bool, plane: bool):
        """(text before z, z's key, text after z) per object, for one kind of ROI."""
        n = len(self._rois)
        values = dict(self._values)
        if branch:
            values.setdefault("branch", _java_values([r.branch for r in self._rois]))
        if n and self._rois[0].t is not None:  # a set spanning time: every ROI has a t
            values.setdefault("t", _java_values([r.t for r in self._rois]))
        if self._label_name:
            values["label_name"] = [_java_value(self._label_name)] * n
        if plane:
            values["z"] = None  # the plane, filled in per ROI
        by_key = {_property_key(k): v for k, v in values.items()}
        keys = sorted(by_key)
        z_at = next((i for i, k in enumerate(keys) if by_key[k] is None), len(keys))
        lines = {k: [f"{k}: {v}\n" for v in by_key[k]] for k in keys if by_key[k] is not None}
        before = [lines[k] for k in keys[:z_at]]
        after = [lines[k] for k in keys[z_at + 1 :]]
        return (
            list(map("".join, zip(*before))) if before else [""] * n,
            keys[z_at] if z_at < len(keys) else None,
            list(map("".join, zip(*after))) if after else [""] * n,
        )


def _property_key(key) -> str:
    """A key ImageJ's ``java.util.Properties`` reads back unchanged."""
    text = str(key)
    for char in " \t\r\n:=#!\\":
        text = text.replace(char, "_")
    return text


def _java_values(values: list) -> list[str]:
    """`_java_value` of each value; a column of finite floats or of ints in one call."""
    kinds = set(map(type, values))
    if kinds == {float} and all(map(math.isfinite, values)):
        return float_texts(values)
    if kinds == {int}:
        return list(map(int.__repr__, values))
    return [_java_value(v) for v in values]


def _java_value(value) -> str:
    """Numbers as Java's Double.parseDouble / Integer.parseInt read them."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return " ".join(str(value).split())
