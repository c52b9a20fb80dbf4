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

The document is written as text in one pass, with the elements, attributes
and order that ome-types writes for the same model (shapes grouped by kind in
each ROI's Union), names and values escaped as XML requires; every outline's
point list is formatted in bulk. ome-types reads it (`from_bytes`) and checks
it against the OME schema. Writing still asks for the `ome-xml` extra, as
reading does, so that the format's one requirement holds either way.
"""

from __future__ import annotations

import base64
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from fractal_roi_tasks import __version__
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.batch import Template, feature_columns, float_texts, gather_rings
from fractal_roi_tasks.formats.context import channel_of, scale_of
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
_OME = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_OME_START = (
    f'<OME xmlns="{_OME}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    f'xsi:schemaLocation="{_OME} {_OME}/ome.xsd"'
)
# ome-types writes a Union's shapes grouped by kind, in this order.
_UNION_ORDER = ("Polygon", "Polyline", "Ellipse", "Point", "Mask")
# "x1,y1 x2,y2 ...", shortest exact decimals (`_positional`).
_POINTS_STYLE = {"vertex": "{},{}", "sep": " ", "wrap": "{}"}
# What XML 1.0 cannot hold (control characters), and the escapes lxml writes.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_CONTENT_ESCAPES = {"\r": "&#13;"}


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """The OME-XML document of `roi_set` as UTF-8 bytes.

    Args:
        roi_set: the ROIs, in pixels of the level they were found on.
        context: where they come from (see `fractal_roi_tasks.formats`);
            uses ``scale`` (level -> full-resolution pixels, per axis),
            ``channel`` (TheC, default 0), ``image``/``well`` (the Image's
            name) and records the rest on the Image.
    """
    _import_ome_types()
    return _document(roi_set, dict(context or {})).encode("utf-8")


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
    """The ``ome_types.OME`` document of `roi_set` (what `to_bytes` writes, parsed)."""
    return from_bytes(to_bytes(roi_set, context=context))


def _document(roi_set: RoiSet, context: dict) -> str:
    ndim = len(roi_set.image_shape)
    scale = tuple(scale_of(context, ndim).tolist())
    the_c = channel_of(context) or 0
    full_shape = tuple(max(1, round(n * s)) for n, s in zip(roi_set.image_shape, scale))
    size_z = full_shape[0] if ndim == 3 else 1
    planes = _Planes(scale=scale, ndim=ndim, size_z=size_z, the_c=the_c)
    rois, kept = _roi_elements(roi_set, planes)
    measurements = _measurement_lines(roi_set)
    about = "".join(
        _m_line(_m_start(k), _content(_text(v)))
        for k, v in {**context, "roi_kind": roi_set.kind}.items()
    )
    head = [
        f'{_OME_START} Creator="{_attribute(f"fractal-roi-tasks {__version__}")}">\n',
        f'  <Image ID="Image:0" Name="{_attribute(_image_name(context))}">\n',
        _pixels(roi_set, scale, full_shape, the_c),
        *(f'    <ROIRef ID="ROI:{n}"/>\n' for n in kept),
        '    <AnnotationRef ID="Annotation:context"/>\n  </Image>\n',
        "  <StructuredAnnotations>\n",
        *(
            _map_annotation(f"Annotation:{n}", MEASUREMENTS_NAMESPACE, measurements[n])
            for n in kept
        ),
        _map_annotation("Annotation:context", CONTEXT_NAMESPACE, about),
        "  </StructuredAnnotations>\n",
    ]
    body = rois.render(number=_positional, **_POINTS_STYLE)
    return f"{_XML_DECLARATION}{''.join(head)}{body}</OME>\n"


def _roi_elements(roi_set: RoiSet, planes: _Planes) -> tuple[Template, list[int]]:
    """The ROI elements (point lists still to format) and the indices of the ROIs kept."""
    outlines = iter(_outlines([s for roi in roi_set.rois for s in roi.shapes], planes))
    rois = Template()
    kept, skipped, n_shapes = [], [], 0
    for n, roi in enumerate(roi_set.rois):
        name = _attribute(roi.name)
        shapes = _roi_shapes(roi, n, name, planes, outlines)
        if not shapes:  # an OME ROI needs at least one shape
            skipped.append(roi.name)
            continue
        kept.append(n)
        n_shapes += len(shapes)
        rois.add(f'  <ROI ID="ROI:{n}" Name="{name}">\n    <Union>\n')
        for _, parts in sorted(shapes, key=lambda shape: _UNION_ORDER.index(shape[0])):
            rois.add(*parts)
        rois.add(f'    </Union>\n    <AnnotationRef ID="Annotation:{n}"/>\n  </ROI>\n')
    if skipped:
        logger.warning(
            "OME-XML: %d ROIs without any shape left out (%s)", len(skipped), skipped[:10]
        )
    logger.debug("OME-XML: %d ROIs, %d shapes", len(kept), n_shapes)
    return rois, kept


# --------------------------------------------------------------------------
# Shapes


class _Planes:
    """What every shape needs: the scale and the plane indices."""

    def __init__(self, *, scale, ndim, size_z, the_c):
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

    def common(self, shape_id: str, the_z: int, text: str) -> str:
        """The attributes every shape has; `text` already escaped."""
        return f'Text="{text}" ID="{shape_id}" TheZ="{the_z}" TheT="0" TheC="{self.the_c}"'


def _outlines(shapes: list, planes: _Planes) -> list:
    """Per Polygon of `shapes`, in order: its exterior (x, y), or its Mask when it has holes.

    All rings are converted to full-resolution (x, y) at once; a holed piece
    becomes (x0, y0, bits), the pixels it encloses (OME polygons have no holes).
    """
    polygons = [s for s in shapes if isinstance(s, Polygon)]
    rings = gather_rings(polygons)
    xy = _xy(rings.points, planes)
    views = [xy[lo:hi] for lo, hi in zip(rings.bounds[:-1].tolist(), rings.bounds[1:].tolist())]
    pieces = rings.per_polygon(views)
    holed = [n for n, piece in enumerate(pieces) if len(piece) > 1]
    outlines = [piece[0] for piece in pieces]
    for n, filled in zip(holed, _even_odd_fills([pieces[n] for n in holed])):
        # A traced piece always holds a pixel; were it empty, its exterior stands in.
        outlines[n] = outlines[n] if filled is None else filled
    return outlines


def _roi_shapes(roi: ObjectRoi, n: int, name: str, planes: _Planes, outlines: Iterator) -> list:
    """(kind, text parts) of each shape of ROI `n`, IDs in the order they are made.

    `name` is the ROI's escaped name, each shape's Text; `outlines` yields
    what `_outlines` made for each Polygon, in order.
    """
    made: list = []

    def common(the_z: int) -> str:
        return planes.common(f"Shape:{n}:{len(made)}", the_z, name)

    for shape in roi.shapes:
        if isinstance(shape, Polygon):
            outline = next(outlines)
            for the_z in planes.of_plane(shape.z):
                if isinstance(outline, tuple):
                    made.append(_mask(*outline, common(the_z)))
                else:
                    made.append(_point_list("Polygon", outline, common(the_z)))
        elif isinstance(shape, Ellipse):
            for the_z in planes.of_plane(shape.z):
                made.append(_ellipse(shape, planes, common(the_z)))
        elif isinstance(shape, Point):
            the_z = planes.of_position(shape.position[0]) if len(shape.position) == 3 else 0
            x, y = _xy(np.asarray([shape.position[-2:]], float), planes)[0]
            made.append(_point(x, y, common(the_z)))
        elif isinstance(shape, Mask):
            for the_z, x0, y0, bits in _mask_planes(shape, planes):
                made.append(_mask(x0, y0, bits, common(the_z)))
        elif isinstance(shape, Polyline):
            for the_z, xy in _polyline_runs(shape, planes):
                if len(xy) == 1:
                    made.append(_point(xy[0, 0], xy[0, 1], common(the_z)))
                else:
                    made.append(_point_list("Polyline", xy, common(the_z)))
        else:  # pragma: no cover - the dataclasses above are all there is
            raise InvalidInputError(f"Cannot write a {type(shape).__name__} shape to OME-XML.")
    return made


def _xy(points_yx: np.ndarray, planes: _Planes) -> np.ndarray:
    """(N, 2) core (y, x) -> (N, 2) corner-based full-resolution (x, y)."""
    return to_corner_based(points_yx, planes.scale_yx)[:, ::-1]


def _point_list(kind: str, xy: np.ndarray, common: str) -> tuple:
    """A Polygon or Polyline; its Points formatted with all others (`_POINTS_STYLE`)."""
    return kind, [f'      <{kind} {common} Points="', xy, '"/>\n']


def _point(x: float, y: float, common: str) -> tuple:
    return "Point", [f'      <Point {common} X="{_float(x)}" Y="{_float(y)}"/>\n']


def _ellipse(shape: Ellipse, planes: _Planes, common: str) -> tuple:
    sy, sx = planes.scale_yx
    ((cx, cy),) = _xy(np.asarray([shape.center], float), planes)
    # Radii in full-resolution pixels (exact for the usual isotropic scale);
    # the transform carries the rotation and any anisotropy of the scale.
    g = math.sqrt(sx * sy)
    cos, sin = math.cos(shape.angle), math.sin(shape.angle)
    linear = np.array([[sx * cos, -sx * sin], [sy * sin, sy * cos]]) / g
    major, minor = shape.semi_axes
    element = (
        f'      <Ellipse {common} X="{_float(cx)}" Y="{_float(cy)}" '
        f'RadiusX="{_float(major * g)}" RadiusY="{_float(minor * g)}"'
    )
    if np.allclose(linear, np.eye(2), rtol=0, atol=1e-12):
        return "Ellipse", [element + "/>\n"]
    offset = np.array([cx, cy]) - linear @ np.array([cx, cy])
    values = (linear[0, 0], linear[1, 0], linear[0, 1], linear[1, 1], offset[0], offset[1])
    names = ("A00", "A10", "A01", "A11", "A02", "A12")
    transform = " ".join(f'{k}="{_float(v)}"' for k, v in zip(names, values))
    return "Ellipse", [f"{element}>\n        <Transform {transform}/>\n      </Ellipse>\n"]


def _mask(x0: int, y0: int, bits: np.ndarray, common: str) -> tuple:
    packed = np.packbits(bits.astype(bool).ravel()).tobytes()
    height, width = bits.shape
    # The schema: Length is "the length of the base-64 encoded block".
    text = base64.b64encode(packed).decode("ascii")
    return "Mask", [
        f'      <Mask {common} X="{_float(x0)}" Y="{_float(y0)}" '
        f'Width="{_float(width)}" Height="{_float(height)}">\n'
        f'        <BinData BigEndian="true" Length="{4 * math.ceil(len(packed) / 3)}">'
        f"{text}</BinData>\n      </Mask>\n"
    ]


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


def _even_odd_fills(pieces: list[list[np.ndarray]]) -> list:
    """Pixels whose centres are inside each piece's rings, by the even-odd rule.

    Args:
        pieces: per piece, its (N, 2) corner-based (x, y) rings, each closing
            on itself.

    Returns:
        per piece, (x0, y0, bits) with `bits` the (H, W) boolean crop whose
        first pixel is column x0, row y0; None when no pixel centre is
        inside. A centre on a vertical edge counts for the region to its
        right, on a horizontal edge for the region below, so touching regions
        share no pixel. All pieces are filled at once, each in its own part
        of one buffer.
    """
    rings = [ring for piece in pieces for ring in piece]
    if not rings:
        return [None] * len(pieces)
    lengths = np.array([len(r) for r in rings])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    start = np.concatenate(rings)
    following = np.arange(1, len(start) + 1)
    following[bounds[1:] - 1] = bounds[:-1]
    stop = start[following]
    rings_per_piece = np.array([len(piece) for piece in pieces])
    of_vertex = np.repeat(np.repeat(np.arange(len(pieces)), rings_per_piece), lengths)
    firsts = bounds[np.cumsum(rings_per_piece) - rings_per_piece]
    x_lo, y_lo = np.ceil(np.minimum.reduceat(start, firsts) - 0.5).astype(np.int64).T
    x_hi, y_hi = np.ceil(np.maximum.reduceat(start, firsts) - 0.5).astype(np.int64).T
    width, height = x_hi - x_lo, y_hi - y_lo
    usable = (width > 0) & (height > 0)
    height = np.where(usable, height, 0)
    size = height * (width + 1)  # each row keeps one column past the end
    offset = np.cumsum(size) - size
    # Every (edge, pixel row) whose row centre the edge crosses.
    y_a, y_b = start[:, 1], stop[:, 1]
    first = np.ceil(np.minimum(y_a, y_b) - 0.5).astype(np.int64)
    count = np.ceil(np.maximum(y_a, y_b) - 0.5).astype(np.int64) - first
    count = np.where(usable[of_vertex], np.maximum(count, 0), 0)
    edge = np.repeat(np.arange(len(start)), count)
    row = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    t = (row + 0.5 - y_a[edge]) / (y_b[edge] - y_a[edge])
    x = start[edge, 0] + t * (stop[edge, 0] - start[edge, 0])
    p = of_vertex[edge]
    col = np.clip(np.ceil(x - 0.5).astype(np.int64) - x_lo[p], 0, width[p])
    cell = offset[p] + (row - y_lo[p]) * (width[p] + 1) + col
    running = np.cumsum(np.bincount(cell, minlength=int(size.sum())))
    # Crossings to the left of each pixel, counted from its row's start.
    row_piece = np.repeat(np.arange(len(pieces)), height)
    row_start = offset[row_piece] + (
        np.arange(len(row_piece)) - np.repeat(np.cumsum(height) - height, height)
    ) * (width[row_piece] + 1)
    before = np.where(row_start > 0, running[np.maximum(row_start - 1, 0)], 0)
    inside = (running - np.repeat(before, width[row_piece] + 1)) % 2 == 1
    return [
        _crop(x_lo[n], y_lo[n], inside[offset[n] : offset[n] + size[n]].reshape(height[n], -1))
        if usable[n]
        else None
        for n in range(len(pieces))
    ]


def _crop(x_lo: int, y_lo: int, toggled: np.ndarray):
    """(x0, y0, bits) of the pixels set in a fill buffer (its last column dropped), or None."""
    bits = toggled[:, :-1]
    if not bits.any():
        return None
    r = np.flatnonzero(bits.any(axis=1))
    c = np.flatnonzero(bits.any(axis=0))
    return int(x_lo + c[0]), int(y_lo + r[0]), bits[r[0] : r[-1] + 1, c[0] : c[-1] + 1]


def _positional(value: float) -> str:
    """A point-list number: shortest exact decimals, no exponent, no trailing ".0"."""
    return np.format_float_positional(value, trim="-")


def _float(value) -> str:
    """A float attribute as ome-types (xsdata) writes it."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value).upper().replace("E+", "E")


def _attribute(value) -> str:
    """Text for inside an attribute's double quotes."""
    return escape(_xml_text(value), _ATTRIBUTE_ESCAPES)


def _content(value) -> str:
    """Text for between tags."""
    return escape(_xml_text(value), _CONTENT_ESCAPES)


def _xml_text(value) -> str:
    text = str(value)
    if _NOT_XML.search(text):
        raise InvalidInputError(
            f"OME-XML cannot hold control characters, found in {text!r}; "
            "remove them from the names, columns or context values."
        )
    return text


# --------------------------------------------------------------------------
# Document parts


def _pixels(roi_set: RoiSet, scale, full_shape, the_c) -> str:
    """MetadataOnly Pixels of the full-resolution image, sizes in micrometers."""
    ndim = len(full_shape)
    size = dict(zip(("z", "y", "x")[-ndim:], full_shape))
    physical = {
        axis: spacing / s
        for axis, spacing, s in zip(("z", "y", "x")[-ndim:], roi_set.spacing, scale)
    }
    attributes = {
        "ID": "Pixels:0",
        "DimensionOrder": "XYZCT",
        # The intensity type is unknown here; the ROIs do not depend on it.
        "Type": "uint16",
        "SizeX": size["x"],
        "SizeY": size["y"],
        "SizeZ": size.get("z", 1),
        "SizeC": the_c + 1,
        "SizeT": 1,
        "PhysicalSizeX": _float(physical["x"]),
        "PhysicalSizeY": _float(physical["y"]),
    }
    if ndim == 3:
        attributes["PhysicalSizeZ"] = _float(physical["z"])
    text = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    return f"    <Pixels {text}>\n      <MetadataOnly/>\n    </Pixels>\n"


def _map_annotation(annotation_id: str, namespace: str, lines: str) -> str:
    return (
        f'    <MapAnnotation ID="{annotation_id}" Namespace="{namespace}">\n'
        f"      <Value>\n{lines}      </Value>\n    </MapAnnotation>\n"
    )


def _measurement_lines(roi_set: RoiSet) -> list[str]:
    """The ``<M>`` lines of each ROI: its label (and branch), then its measurements.

    As a dict {"label": ..., "branch": ..., **row} would order them: a column
    named label or branch gives the value, the ROI the position.
    """
    columns = feature_columns(roi_set)
    rois = roi_set.rois
    lines = {k: _m_lines(k, values) for k, values in columns.items()}
    for key, values in (("label", [r.label for r in rois]), ("branch", [r.branch for r in rois])):
        if key not in lines:
            lines[key] = _m_lines(key, values)
    rows = {}
    for head in (("label",), ("label", "branch")):
        order = [*head, *(k for k in columns if k not in head)]
        rows[head] = list(map("".join, zip(*(lines[k] for k in order))))
    return [
        rows[("label",) if roi.branch is None else ("label", "branch")][n]
        for n, roi in enumerate(rois)
    ]


def _m_lines(key, values: list) -> list[str]:
    """One ``<M K="key">`` line per value."""
    start = _m_start(key)
    kinds = set(map(type, values))
    if kinds == {float}:  # numbers: no escaping, never empty
        return [f"{start}>{text}</M>\n" for text in float_texts(values)]
    if kinds == {int}:
        return [f"{start}>{text}</M>\n" for text in map(int.__repr__, values)]
    return [_m_line(start, _content(_text(v))) for v in values]


def _m_start(key) -> str:
    return f'        <M K="{_attribute(str(key))}"'


def _m_line(start: str, text: str) -> str:
    return f"{start}>{text}</M>\n" if text else f"{start}/>\n"


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
