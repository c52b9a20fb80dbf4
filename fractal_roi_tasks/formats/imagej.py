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

Here: the RoiSet zip, names and positions; `imagej_shapes` makes each
shape's ImageJ ROI and `imagej_properties` its properties text.
"""

from __future__ import annotations

import io
import logging
import math
import zipfile
from collections import Counter
from pathlib import Path

from roifile import ImagejRoi

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.batch import feature_columns, object_polygons
from fractal_roi_tasks.formats.context import channel_of, name_widths, scale_of, time_points_of
from fractal_roi_tasks.formats.imagej_properties import RoiProperties
from fractal_roi_tasks.formats.imagej_shapes import Outlines, ellipse_aspect_ratio, shape_rois
from fractal_roi_tasks.io.atomic import write_bytes_atomic
from fractal_roi_tasks.rois.shapes import RoiSet

__all__ = [
    "EXTENSION",
    "ellipse_aspect_ratio",
    "from_bytes",
    "imagej_rois",
    "read",
    "to_bytes",
    "write",
]

logger = logging.getLogger(__name__)

EXTENSION = ".roi.zip"
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
    properties = RoiProperties(feature_columns(roi_set), roi_set.rois, context.get("label_name"))
    label_width, branch_width = name_widths(roi_set.rois)
    plane_width = max(2, len(str(max(0, math.ceil(roi_set.image_shape[0] * scale[0]) - 1))))
    n_times = time_points_of(roi_set, context)
    time_width = 0 if n_times is None else max(2, len(str(n_times - 1)))
    polygons = [object_polygons(roi) for roi in roi_set.rois]
    outlines = Outlines([p for group in polygons for p in group], scale)
    named: list[tuple[str, object]] = []
    first = 0
    for n, (roi, group) in enumerate(zip(roi_set.rois, polygons)):
        base = f"label-{roi.label:0{label_width}d}"
        if roi.t is not None:
            base = f"t{roi.t:0{time_width}d}-{base}"
        if roi.branch is not None:
            base += f"-branch-{roi.branch:0{branch_width}d}"
        for plane, ij in shape_rois(roi, group, first, outlines, scale, ndim):
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

