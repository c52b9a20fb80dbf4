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
``channel`` (default 0), TheT the ROI's time point (``ObjectRoi.t``, 0-based
as OME's TheT; 0 without time). In a set spanning time the Image's Pixels
have SizeT = ``context["n_time_points"]`` (else one past the last t) and,
when ``context["time_spacing"]`` is given, TimeIncrement (with
TimeIncrementUnit from ``context["time_unit"]``, an NGFF unit name).

The document is written as text in one pass, with the elements, attributes
and order that ome-types writes for the same model (shapes grouped by kind in
each ROI's Union), names and values escaped as XML requires; every outline's
point list is formatted in bulk. ome-types reads it (`from_bytes`) and checks
it against the OME schema. Writing still asks for the `ome-xml` extra, as
reading does, so that the format's one requirement holds either way.

The package's modules: ``document`` assembles the text (the OME root, Image,
ROIs and MapAnnotations), ``shapes`` turns each ROI's shapes into shape
elements in full-resolution pixels, ``fill`` finds the pixels a holed
outline encloses (for its Mask), ``xml_text`` escapes text and formats
numbers as ome-types does.
"""

from __future__ import annotations

from pathlib import Path

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.ome_xml.document import (
    CONTEXT_NAMESPACE,
    MEASUREMENTS_NAMESPACE,
    document,
)
from fractal_roi_tasks.io.atomic import write_bytes_atomic
from fractal_roi_tasks.rois.shapes import RoiSet

__all__ = [
    "CONTEXT_NAMESPACE",
    "EXTENSION",
    "MEASUREMENTS_NAMESPACE",
    "build_ome",
    "check_available",
    "from_bytes",
    "read",
    "to_bytes",
    "write",
]

EXTENSION = ".ome.xml"


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
    return document(roi_set, dict(context or {})).encode("utf-8")


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
