"""OME-XML ROIs, for OMERO and Bio-Formats tools (needs the `ome-xml` extra).

The document is an ``OME`` root holding one ``ROI`` per object (ID
``ROI:{n}``, Name the ROI's name), a ``MapAnnotation`` with its measurements
linked to each ROI, and one minimal ``Image`` (``MetadataOnly`` pixels sized
for the full-resolution image) whose ``ROIRef`` s list every ROI: OME-XML
ties ROIs to pixels only through an Image's ROIRef, and the tools that bring
OME-XML ROIs into OMERO (importing an OME-TIFF that carries this XML;
omero-cli-transfer, which walks ``Image.roi_refs``) attach each ROI to the
image whose ROIRef names it. (omero-cli-transfer recreates Polygons,
Polylines, Ellipses and Points but not Masks, and drops shape transforms.)

Shapes:

- polygon pieces without holes -> ``Polygon`` (OME has no holes); a piece
  with holes -> ``Mask`` of exactly that piece's pixels (OME's exact form of
  a holed region; OMERO imports, stores and draws it, and omero-rois turns it
  back into labels). Every piece is its own shape, so the shapes of one ROI
  never overlap;
- mask -> ``Mask`` per plane (cropped to the plane's pixels);
- ellipse -> ``Ellipse`` (X, Y, RadiusX = major, RadiusY = minor) rotated by
  an ``AffineTransform`` about its centre (OMERO.iviewer draws it rotated;
  tools that ignore transforms draw it axis-aligned);
- point -> ``Point``;
- skeleton branch -> ``Polyline`` through pixel centres, one per run of
  constant z (a closed branch repeats its first vertex; a run of a single
  vertex is a ``Point``).

Coordinates follow the OME model as OMERO, Bio-Formats and QuPath read it:
pixels of the full-resolution image, x then y, pixel (x, y) covering
[x, x + 1) x [y, y + 1) (a Mask's X, Y is the column and row of its first
pixel, its bits are rows of the crop packed most significant bit first with no
padding, as omero-rois writes them). Region shapes therefore enclose exactly
the object's pixel centres, and polylines and points sit on pixel centres
(+0.5). `coordinates.to_corner_based` does the mapping, including `scale`
for ROIs found on a lower-resolution pyramid level; a Mask from such a level
is resampled to full-resolution pixels (a pixel is in when its centre is).
TheZ is the full-resolution plane (0 for a 2D image), TheC the context's
``channel`` (default 0), TheT 0.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from fractal_roi_tasks import __version__
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

EXTENSION = ".ome.xml"
# Namespaces of our MapAnnotations (not OMERO's "client" namespace: OMERO
# shows these as read-only key-value pairs, which measurements are).
MEASUREMENTS_NAMESPACE = "fractal-roi-tasks/measurements"
CONTEXT_NAMESPACE = "fractal-roi-tasks/context"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """The OME-XML document of `roi_set` as UTF-8 bytes.

    Args:
        roi_set: the ROIs, in pixels of the level they were found on.
        context: where they come from (see `fractal_roi_tasks.formats`);
            uses ``scale`` (level -> full-resolution pixels, per axis),
            ``channel`` (TheC, default 0), ``image``/``well`` (the Image's
            name) and records the rest on the Image.
    """
    ome_types = _import_ome_types()
    document = build_ome(roi_set, context=context)
    return (_XML_DECLARATION + ome_types.to_xml(document)).encode("utf-8")


def from_bytes(data: bytes):
    """Parse OME-XML bytes into an ``ome_types.OME`` object."""
    ome_types = _import_ome_types()
    return ome_types.from_xml(data)


def write(path: str | Path, roi_set: RoiSet, *, context: dict | None = None) -> Path:
    """Write the file at `path`, replacing any previous one atomically."""
    return write_bytes_atomic(path, to_bytes(roi_set, context=context))


def read(path: str | Path):
    """Read an OME-XML file into an ``ome_types.OME`` object."""
    return from_bytes(Path(path).read_bytes())


def build_ome(roi_set: RoiSet, *, context: dict | None = None):
    """The ``ome_types.OME`` document of `roi_set` (see `to_bytes`)."""
    _import_ome_types()
    from ome_types import model

    context = dict(context or {})
    ndim = len(roi_set.image_shape)
    scale = _scale(context, ndim)
    the_c = _channel(context)
    full_shape = tuple(max(1, round(n * s)) for n, s in zip(roi_set.image_shape, scale))
    size_z = full_shape[0] if ndim == 3 else 1
    planes = _Planes(model=model, scale=scale, ndim=ndim, size_z=size_z, the_c=the_c)

    records = roi_set.features.to_dict(orient="records")
    if len(records) != len(roi_set.rois):
        raise InvalidInputError(
            f"The ROI set has {len(roi_set.rois)} ROIs but {len(records)} feature rows; "
            "expected one row per ROI."
        )
    rois, annotations, skipped = [], [], []
    for n, (roi, measurements) in enumerate(zip(roi_set.rois, records)):
        shapes = _roi_shapes(roi, n, planes)
        if not shapes:  # an OME ROI needs at least one shape
            skipped.append(roi.name)
            continue
        annotation = model.MapAnnotation(
            id=f"Annotation:{n}",
            namespace=MEASUREMENTS_NAMESPACE,
            value=model.Map(ms=[model.Map.M(k=k, value=v) for k, v in _pairs(roi, measurements)]),
        )
        annotations.append(annotation)
        rois.append(
            model.ROI(
                id=f"ROI:{n}",
                name=roi.name,
                union=shapes,
                annotation_refs=[model.AnnotationRef(id=annotation.id)],
            )
        )

    if skipped:
        logger.warning(
            "OME-XML: %d ROIs without any shape left out (%s)", len(skipped), skipped[:10]
        )
    about = model.MapAnnotation(
        id="Annotation:context",
        namespace=CONTEXT_NAMESPACE,
        value=model.Map(
            ms=[
                model.Map.M(k=str(k), value=_text(v))
                for k, v in {**context, "roi_kind": roi_set.kind}.items()
            ]
        ),
    )
    annotations.append(about)
    image = model.Image(
        id="Image:0",
        name=_image_name(context),
        pixels=_pixels(model, roi_set, scale, full_shape, the_c),
        roi_refs=[model.ROIRef(id=r.id) for r in rois],
        annotation_refs=[model.AnnotationRef(id=about.id)],
    )
    logger.debug("OME-XML: %d ROIs, %d shapes", len(rois), sum(len(r.union) for r in rois))
    return model.OME(
        images=[image],
        rois=rois,
        structured_annotations=model.StructuredAnnotations(map_annotations=annotations),
        creator=f"fractal-roi-tasks {__version__}",
    )


# --------------------------------------------------------------------------
# Shapes


class _Planes:
    """What every shape needs: the model, the scale and the plane indices."""

    def __init__(self, *, model, scale, ndim, size_z, the_c):
        self.model = model
        self.scale_yx = scale[-2:]
        self.scale_z = scale[0] if ndim == 3 else 1.0
        self.ndim = ndim
        self.size_z = size_z
        self.the_c = the_c

    def of_plane(self, z) -> list[int]:
        """Full-resolution planes of level plane `z` (None in 2D -> [0])."""
        if z is None or self.ndim == 2:
            return [0]
        planes = _covered(int(z), int(z) + 1, self.scale_z).tolist()
        return planes or [self.of_position(float(z))]

    def of_position(self, z: float) -> int:
        """Full-resolution plane holding the core z coordinate `z`."""
        plane = math.floor(to_corner_based(np.array([[z]]), (self.scale_z,))[0, 0])
        return min(max(plane, 0), self.size_z - 1)

    def common(self, shape_id: str, the_z: int, text: str) -> dict:
        return {"id": shape_id, "the_z": the_z, "the_c": self.the_c, "the_t": 0, "text": text}


def _roi_shapes(roi: ObjectRoi, n: int, planes: _Planes) -> list:
    made: list = []

    def next_id() -> str:
        return f"Shape:{n}:{len(made)}"

    for shape in roi.shapes:
        if isinstance(shape, Polygon):
            for the_z in planes.of_plane(shape.z):
                made.append(_polygon(shape, planes, planes.common(next_id(), the_z, roi.name)))
        elif isinstance(shape, Ellipse):
            for the_z in planes.of_plane(shape.z):
                made.append(_ellipse(shape, planes, planes.common(next_id(), the_z, roi.name)))
        elif isinstance(shape, Point):
            the_z = planes.of_position(shape.position[0]) if len(shape.position) == 3 else 0
            x, y = _xy(np.asarray([shape.position[-2:]], float), planes)[0]
            made.append(planes.model.Point(x=x, y=y, **planes.common(next_id(), the_z, roi.name)))
        elif isinstance(shape, Mask):
            for the_z, x0, y0, bits in _mask_planes(shape, planes):
                made.append(_mask(x0, y0, bits, planes, planes.common(next_id(), the_z, roi.name)))
        elif isinstance(shape, Polyline):
            for the_z, xy in _polyline_runs(shape, planes):
                common = planes.common(next_id(), the_z, roi.name)
                if len(xy) == 1:
                    made.append(planes.model.Point(x=xy[0, 0], y=xy[0, 1], **common))
                else:
                    made.append(planes.model.Polyline(points=_points_text(xy), **common))
        else:  # pragma: no cover - the dataclasses above are all there is
            raise InvalidInputError(f"Cannot write a {type(shape).__name__} shape to OME-XML.")
    return made


def _xy(points_yx: np.ndarray, planes: _Planes) -> np.ndarray:
    """(N, 2) core (y, x) -> (N, 2) corner-based full-resolution (x, y)."""
    return to_corner_based(points_yx, planes.scale_yx)[:, ::-1]


def _polygon(shape: Polygon, planes: _Planes, common: dict):
    exterior = _xy(shape.exterior, planes)
    if not shape.holes:
        return planes.model.Polygon(points=_points_text(exterior), **common)
    filled = _even_odd_fill([exterior, *(_xy(h, planes) for h in shape.holes)])
    if filled is None:  # pragma: no cover - a traced piece always holds a pixel
        return planes.model.Polygon(points=_points_text(exterior), **common)
    x0, y0, bits = filled
    return _mask(x0, y0, bits, planes, common)


def _ellipse(shape: Ellipse, planes: _Planes, common: dict):
    sy, sx = planes.scale_yx
    ((cx, cy),) = _xy(np.asarray([shape.center], float), planes)
    # Radii in full-resolution pixels (exact for the usual isotropic scale);
    # the transform carries the rotation and any anisotropy of the scale.
    g = math.sqrt(sx * sy)
    cos, sin = math.cos(shape.angle), math.sin(shape.angle)
    linear = np.array([[sx * cos, -sx * sin], [sy * sin, sy * cos]]) / g
    transform = None
    if not np.allclose(linear, np.eye(2), rtol=0, atol=1e-12):
        offset = np.array([cx, cy]) - linear @ np.array([cx, cy])
        transform = planes.model.AffineTransform(
            a00=linear[0, 0],
            a01=linear[0, 1],
            a02=offset[0],
            a10=linear[1, 0],
            a11=linear[1, 1],
            a12=offset[1],
        )
    major, minor = shape.semi_axes
    return planes.model.Ellipse(
        x=cx, y=cy, radius_x=major * g, radius_y=minor * g, transform=transform, **common
    )


def _mask(x0: int, y0: int, bits: np.ndarray, planes: _Planes, common: dict):
    packed = np.packbits(bits.astype(bool).ravel()).tobytes()
    height, width = bits.shape
    return planes.model.Mask(
        x=float(x0),
        y=float(y0),
        width=float(width),
        height=float(height),
        bin_data=planes.model.BinData(
            value=packed,
            big_endian=True,
            # The schema: "the length of the base-64 encoded block".
            length=4 * math.ceil(len(packed) / 3),
        ),
        **common,
    )


def _mask_planes(shape: Mask, planes: _Planes):
    """Yield (TheZ, x0, y0, bits) of a Mask shape, per full-resolution plane."""
    mask = np.asarray(shape.mask, bool)
    origin = tuple(int(o) for o in shape.origin)
    if mask.ndim == 2:
        mask, origin = mask[None], (None, *origin)
    sy, sx = planes.scale_yx
    rows = _covered(origin[1], origin[1] + mask.shape[1], sy)
    cols = _covered(origin[2], origin[2] + mask.shape[2], sx)
    level_rows = _level_index(rows, sy, origin[1], mask.shape[1])
    level_cols = _level_index(cols, sx, origin[2], mask.shape[2])
    for k, plane in enumerate(mask):
        full = plane[np.ix_(level_rows, level_cols)]
        if not full.any():
            continue
        r = np.flatnonzero(full.any(axis=1))
        c = np.flatnonzero(full.any(axis=0))
        bits = full[r[0] : r[-1] + 1, c[0] : c[-1] + 1]
        z_planes = [0] if origin[0] is None else planes.of_plane(origin[0] + k)
        for the_z in z_planes:
            yield the_z, int(cols[c[0]]), int(rows[r[0]]), bits


def _polyline_runs(shape: Polyline, planes: _Planes):
    """Yield (TheZ, (N, 2) x, y) for each run of the path in one plane."""
    points = np.asarray(shape.points, float)
    if shape.closed and len(points) > 1:
        points = np.concatenate([points, points[:1]])
    xy = _xy(points[:, -2:], planes)
    if points.shape[1] == 2:
        if len(xy):
            yield 0, xy
        return
    the_z = np.array([planes.of_position(z) for z in points[:, 0]], int)
    cuts = np.flatnonzero(np.diff(the_z)) + 1
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(the_z)]):
        yield int(the_z[lo]), xy[lo:hi]


def _covered(lo: int, hi: int, scale: float) -> np.ndarray:
    """Full-resolution pixels whose centres lie in level pixels lo .. hi - 1.

    Level pixel i covers [i, i + 1) * scale in full-resolution corner-based
    coordinates; full-resolution pixel j has its centre at j + 0.5.
    """
    start = math.ceil(lo * scale - 0.5)
    stop = math.ceil(hi * scale - 0.5)
    return np.arange(start, max(start, stop))


def _level_index(full: np.ndarray, scale: float, origin: int, size: int) -> np.ndarray:
    """Index into a level crop (starting at `origin`) of full-resolution pixels."""
    index = np.floor((full + 0.5) / scale).astype(np.int64) - origin
    return np.clip(index, 0, max(size - 1, 0))


def _even_odd_fill(rings: list[np.ndarray]):
    """Pixels whose centres are inside `rings` by the even-odd rule.

    Args:
        rings: (N, 2) corner-based (x, y) rings, each closing on itself.

    Returns:
        (x0, y0, bits) with `bits` the (H, W) boolean crop whose first pixel
        is column x0, row y0; None when no pixel centre is inside. A centre
        on a vertical edge counts for the region to its right, on a
        horizontal edge for the region below, so touching regions share no
        pixel.
    """
    start = np.concatenate(rings)
    stop = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
    x_lo, y_lo = np.ceil(start.min(axis=0) - 0.5).astype(np.int64)
    x_hi, y_hi = np.ceil(start.max(axis=0) - 0.5).astype(np.int64)
    width, height = int(x_hi - x_lo), int(y_hi - y_lo)
    if width <= 0 or height <= 0:
        return None
    # Every (edge, pixel row) whose row centre the edge crosses.
    y_a, y_b = start[:, 1], stop[:, 1]
    first = np.ceil(np.minimum(y_a, y_b) - 0.5).astype(np.int64)
    count = np.ceil(np.maximum(y_a, y_b) - 0.5).astype(np.int64) - first
    count = np.maximum(count, 0)
    edge = np.repeat(np.arange(len(start)), count)
    row = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    t = (row + 0.5 - y_a[edge]) / (y_b[edge] - y_a[edge])
    x = start[edge, 0] + t * (stop[edge, 0] - start[edge, 0])
    col = np.clip(np.ceil(x - 0.5).astype(np.int64) - x_lo, 0, width)
    toggles = np.zeros((height, width + 1), np.int64)
    np.add.at(toggles, (row - y_lo, col), 1)
    bits = np.cumsum(toggles[:, :-1], axis=1) % 2 == 1
    if not bits.any():
        return None
    r = np.flatnonzero(bits.any(axis=1))
    c = np.flatnonzero(bits.any(axis=0))
    return int(x_lo + c[0]), int(y_lo + r[0]), bits[r[0] : r[-1] + 1, c[0] : c[-1] + 1]


def _points_text(xy: np.ndarray) -> str:
    """OME's point list: "x1,y1 x2,y2 ..." with shortest exact decimals."""
    return " ".join(f"{_number(x)},{_number(y)}" for x, y in xy.tolist())


def _number(value: float) -> str:
    return np.format_float_positional(float(value), trim="-")


# --------------------------------------------------------------------------
# Document parts


def _pixels(model, roi_set: RoiSet, scale, full_shape, the_c):
    """MetadataOnly Pixels of the full-resolution image, sizes in micrometers."""
    ndim = len(full_shape)
    size = dict(zip(("z", "y", "x")[-ndim:], full_shape))
    physical = {
        axis: spacing / s
        for axis, spacing, s in zip(("z", "y", "x")[-ndim:], roi_set.spacing, scale)
    }
    extra = {"physical_size_z": physical["z"]} if ndim == 3 else {}
    return model.Pixels(
        id="Pixels:0",
        dimension_order="XYZCT",
        # The intensity type is unknown here; the ROIs do not depend on it.
        type="uint16",
        size_x=size["x"],
        size_y=size["y"],
        size_z=size.get("z", 1),
        size_c=the_c + 1,
        size_t=1,
        physical_size_x=physical["x"],
        physical_size_y=physical["y"],
        metadata_only=model.MetadataOnly(),
        **extra,
    )


def _pairs(roi: ObjectRoi, measurements: dict):
    """Key-value pairs of one ROI: its label (and branch) and measurements."""
    pairs = {"label": roi.label}
    if roi.branch is not None:
        pairs["branch"] = roi.branch
    pairs.update(measurements)
    return [(str(k), _text(v)) for k, v in pairs.items()]


def _text(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def _image_name(context: dict) -> str:
    image = context.get("image")
    if not image:
        return str(context.get("label_name") or "image")
    well = context.get("well")
    return f"{well}_{image}" if well else str(image)


def _scale(context: dict, ndim: int) -> tuple[float, ...]:
    scale = context.get("scale")
    if scale is None:
        return (1.0,) * ndim
    try:
        values = tuple(float(s) for s in scale)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"context['scale'] must be one number per axis, got {scale!r}."
        ) from err
    if len(values) != ndim or not all(math.isfinite(s) and s > 0 for s in values):
        raise InvalidInputError(
            f"context['scale'] must give one positive factor per image axis "
            f"({ndim} values, {'(z, y, x)' if ndim == 3 else '(y, x)'}), got {scale!r}."
        )
    return values


def _channel(context: dict) -> int:
    channel = context.get("channel")
    if channel is None:
        return 0
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or channel < 0:
        raise InvalidInputError(
            f"context['channel'] must be a channel index (an integer >= 0), got {channel!r}."
        )
    return int(channel)


def _import_ome_types():
    try:
        import ome_types
    except ImportError as err:
        raise InvalidInputError(
            "Writing or reading OME-XML ROIs needs the optional package ome-types; "
            'install it with: pip install "fractal-roi-tasks[ome-xml]"'
        ) from err
    return ome_types


def check_available() -> None:
    """Raise the install hint now if ome-types is missing, before a task writes."""
    _import_ome_types()
