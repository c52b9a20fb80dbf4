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
Ellipse            axis-aligned: OVAL with a sub-pixel bounding rectangle;
                   rotated: ImageJ's EllipseRoi (FREEHAND, subtype ELLIPSE,
                   major-axis end points x1, y1, x2, y2 and the aspect ratio
                   minor/major as a float at header bytes 52-55), with its
                   72-vertex polygon stored too for other readers
Point              POINT with one sub-pixel point
Polyline           POLYLINE through the pixel centres (sub-pixel); a closed
                   branch repeats its first vertex; a 3D branch becomes one
                   ROI per run of constant z, and a run of a single vertex a
                   POINT (an ImageJ line needs two vertices)
=================  ===========================================================

Coordinates follow ImageJ: x before y, pixel (x, y) covers [x, x + 1) x
[y, y + 1), full-resolution pixels (`coordinates.to_corner_based` with
``context["scale"]``). ImageJ fills pixel (x, y) of a polygon or composite
when its centre (x + 0.5, y + 0.5) is inside (`ij.process.PolygonFiller`),
and our outlines run along pixel edges, so filling an outline gives back
exactly the object's pixels.

Positions (ImageJ's are 1-based, 0 meaning "every"): a 3D ROI gets the
hyperstack position z = plane + 1; c = ``context["channel"] + 1`` when a
(0-based) channel is given, else 0 (shown on every channel); t = 0 (every
frame, our ROIs carry no time). A 2D image's ROIs get z = 0, so without a
channel they have no position at all and ImageJ shows them on every plane.
Names: ``label-0007``, ``label-0007-branch-003``, plus ``-z05`` (0-based
plane, as in our tables) in 3D, zero-padded to the widest value of the set,
with ``-01``, ``-02``... where a branch crosses the same plane twice.

Measurements: each ROI carries its object's features row as ImageJ ROI
properties (ImageJ 1.52+, file version >= 224: ``key: value`` lines, read
back by ``Roi.getProperty(key)`` / the macro ``Roi.getProperty``), plus
``z`` (0-based full-resolution plane) in 3D and ``label_name`` when known.
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

EXTENSION = ".roi.zip"
ELLIPSE_VERTICES = 72  # as ImageJ's EllipseRoi; a multiple of 4 keeps the axis ends exact
# ImageJ stores integer coordinates as 16-bit values relative to the bounds
# and reads values below -5000 as unsigned; floats beyond that range.
_INT_RANGE = (-5000, 60535)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same ROIs give the same bytes


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """The RoiSet zip of `roi_set`: one ``<name>.roi`` entry per ImageJ ROI."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for roi in imagej_rois(roi_set, context=context):
            info = zipfile.ZipInfo(f"{roi.name}.roi", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, roi.tobytes())
    return buffer.getvalue()


def from_bytes(data: bytes) -> list:
    """Parse a RoiSet zip (or a single ``.roi``): a list of `roifile.ImagejRoi`."""
    from roifile import ImagejRoi

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
    scale = _scale(context, ndim)
    channel = _channel(context)
    records = roi_set.features.to_dict(orient="records")
    if len(records) != len(roi_set.rois):
        raise InvalidInputError(
            f"The ROI set has {len(roi_set.rois)} ROIs but {len(records)} feature rows; "
            "expected one row per ROI."
        )
    label_width, branch_width = _name_widths(roi_set.rois)
    plane_width = max(2, len(str(max(0, math.ceil(roi_set.image_shape[0] * scale[0]) - 1))))
    named: list[tuple[str, object]] = []
    for roi, measurements in zip(roi_set.rois, records):
        base = f"label-{roi.label:0{label_width}d}"
        if roi.branch is not None:
            base += f"-branch-{roi.branch:0{branch_width}d}"
        props = dict(measurements)
        if roi.branch is not None:
            props.setdefault("branch", roi.branch)
        if context.get("label_name"):
            props["label_name"] = context["label_name"]
        for plane, ij in _shape_rois(roi, scale, ndim):
            name = base if plane is None else f"{base}-z{plane:0{plane_width}d}"
            ij.c_position = 0 if channel is None else channel + 1
            ij.z_position = 0 if plane is None else plane + 1
            ij.t_position = 0
            ij.position = 0
            ij.properties = {
                _property_key(k): _java_value(v)
                for k, v in ({**props, "z": plane} if plane is not None else props).items()
            }
            named.append((name, ij))
    rois = []
    for name, ij in _unique(named):
        ij.name = name
        rois.append(ij)
    logger.debug("%d ImageJ ROIs from %d %s ROIs", len(rois), len(roi_set.rois), roi_set.kind)
    return rois


# --------------------------------------------------------------------------
# Shapes -> ImageJ ROIs


def _shape_rois(roi: ObjectRoi, scale: np.ndarray, ndim: int):
    """Yield (full-resolution plane or None, ImagejRoi) for the shapes of one object."""
    polygons = [s for s in roi.shapes if isinstance(s, Polygon)]
    for shape in roi.shapes:
        if isinstance(shape, Mask):
            polygons.extend(_mask_polygons(shape))
    by_plane: dict = {}
    for polygon in polygons:
        by_plane.setdefault(polygon.z, []).append(polygon)
    for z, group in by_plane.items():
        yield _plane(z, scale), _outline_roi(group, scale)
    for shape in roi.shapes:
        if isinstance(shape, Ellipse):
            yield _plane(shape.z, scale), _ellipse_roi(shape, scale)
        elif isinstance(shape, Point):
            position = np.asarray(shape.position, float)
            xy = to_corner_based(position[None, -2:], scale[-2:])[0, ::-1]
            plane = _plane(position[0], scale) if ndim == 3 else None
            yield plane, _point_roi(xy)
        elif isinstance(shape, Polyline):
            yield from _polyline_rois(shape, scale, ndim)


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


def _outline_roi(polygons: list[Polygon], scale: np.ndarray):
    from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

    rings = [_xy(r, scale) for p in polygons for r in (p.exterior, *p.holes)]
    if len(rings) == 1:
        ring = rings[0]
        lo, hi = _INT_RANGE
        if np.array_equal(ring, np.round(ring)) and ring.min() >= lo and ring.max() <= hi:
            ij = ImagejRoi.frompoints(np.round(ring).astype(np.int32))
            ij.roitype = ROI_TYPE.TRACED
            ij.options = ROI_OPTIONS.NONE
        else:
            ij = ImagejRoi.frompoints(ring)
            ij.roitype = ROI_TYPE.POLYGON
            ij.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
        return ij
    # ImageJ's composite (ShapeRoi): java.awt.geom path segments, even-odd filled.
    path = []
    for ring in rings:
        path.extend((0.0, ring[0, 0], ring[0, 1]))  # SEG_MOVETO
        for x, y in ring[1:].tolist():
            path.extend((1.0, x, y))  # SEG_LINETO
        path.append(4.0)  # SEG_CLOSE
    points = np.concatenate(rings)
    lo, hi = np.floor(points.min(axis=0)), np.ceil(points.max(axis=0))
    return ImagejRoi(
        roitype=ROI_TYPE.RECT,
        shape_roi_size=len(path),
        multi_coordinates=np.asarray(path, np.float32),
        left=int(lo[0]),
        top=int(lo[1]),
        right=int(hi[0]),
        bottom=int(hi[1]),
    )


def _ellipse_roi(ellipse: Ellipse, scale: np.ndarray):
    from roifile import ROI_OPTIONS, ROI_SUBTYPE, ROI_TYPE, ImagejRoi

    center, a, b, angle = _scaled_ellipse(ellipse, scale)
    cx, cy = center
    if _axis_aligned(a, b, angle):
        hx = math.hypot(a * math.cos(angle), b * math.sin(angle))
        hy = math.hypot(a * math.sin(angle), b * math.cos(angle))
        return ImagejRoi(
            roitype=ROI_TYPE.OVAL,
            options=ROI_OPTIONS.SUB_PIXEL_RESOLUTION,
            xd=cx - hx,
            yd=cy - hy,
            widthd=2 * hx,
            heightd=2 * hy,
            left=math.floor(cx - hx),
            top=math.floor(cy - hy),
            right=math.ceil(cx + hx),
            bottom=math.ceil(cy + hy),
        )
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


def ellipse_vertices(center, a: float, b: float, angle: float, n: int = ELLIPSE_VERTICES):
    """(n, 2) x, y points of an ellipse, the first at the end of the major axis.

    `center` is (x, y), `a` and `b` the semi-axes, `angle` the major axis'
    direction from +x towards +y, all in the same (consumer) frame.
    """
    t = 2.0 * np.pi * np.arange(n) / n
    cos_t, sin_t = np.cos(t), np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    x = center[0] + a * cos_t * ca - b * sin_t * sa
    y = center[1] + a * cos_t * sa + b * sin_t * ca
    return np.stack([x, y], axis=1)


def _point_roi(xy: np.ndarray):
    from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

    ij = ImagejRoi.frompoints(np.asarray(xy, np.float64).reshape(1, 2))
    ij.roitype = ROI_TYPE.POINT
    ij.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    return ij


def _polyline_rois(line: Polyline, scale: np.ndarray, ndim: int):
    from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi

    points = np.asarray(line.points, float)
    if len(points) == 0:
        return
    if line.closed:
        points = np.concatenate([points, points[:1]])
    if points.shape[1] == 3:
        cuts = np.flatnonzero(np.diff(points[:, 0]) != 0) + 1
        runs = np.split(points, cuts)
    else:
        runs = [points]
    for run in runs:
        xy = to_corner_based(run[:, -2:], scale[-2:])[:, ::-1]
        plane = _plane(run[0, 0], scale) if run.shape[1] == 3 else None
        if len(xy) == 1:
            yield plane, _point_roi(xy[0])
            continue
        ij = ImagejRoi.frompoints(xy)
        ij.roitype = ROI_TYPE.POLYLINE
        ij.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
        yield plane, ij


# --------------------------------------------------------------------------
# Coordinates, positions, names, properties


def _xy(ring_yx: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Core (y, x) ring -> ImageJ (x, y), corner-based, full resolution."""
    return to_corner_based(ring_yx, scale[-2:])[:, ::-1]


def _plane(z, scale: np.ndarray) -> int | None:
    """The full-resolution plane holding level plane (or point) `z`; None in 2D.

    The plane whose [k, k + 1) interval holds the corner-based z; on a
    boundary (a downsampled z) the lower one.
    """
    if z is None:
        return None
    corner = float(to_corner_based(np.array([[float(z)]]), scale[:1])[0, 0])
    return max(0, math.ceil(corner) - 1)


def _scaled_ellipse(ellipse: Ellipse, scale: np.ndarray):
    """(center (x, y), a, b, angle) of an ellipse in ImageJ's frame."""
    sy, sx = float(scale[-2]), float(scale[-1])
    cy, cx = to_corner_based(np.asarray([ellipse.center], float), scale[-2:])[0]
    a, b = (float(v) for v in ellipse.semi_axes)
    angle = float(ellipse.angle)
    if sy == sx:
        return (cx, cy), a * sx, b * sx, angle
    # Anisotropic scale: map the ellipse's covariance (x, y order) and re-fit.
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
    """True when the ellipse's axes are along x and y (or it is a circle)."""
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


def _property_key(key) -> str:
    """A key ImageJ's ``java.util.Properties`` reads back unchanged."""
    text = str(key)
    for char in " \t\r\n:=#!\\":
        text = text.replace(char, "_")
    return text


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
