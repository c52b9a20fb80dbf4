"""The OME-XML document as text: the OME root, one Image, the ROIs and their MapAnnotations.

Elements, attributes and their order are those ome-types writes for the same
model; the ROIs' point lists are left as arrays in a `Template` and formatted
in bulk at the end.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks import __version__
from fractal_roi_tasks.formats.batch import Template, feature_columns, float_texts
from fractal_roi_tasks.formats.context import (
    channel_of,
    scale_of,
    time_points_of,
    time_spacing_of,
)
from fractal_roi_tasks.formats.ome_xml.shapes import Planes, polygon_outlines, roi_shapes
from fractal_roi_tasks.formats.ome_xml.xml_text import (
    attribute_text,
    content_text,
    float_attribute,
    point_number,
)
from fractal_roi_tasks.rois.shapes import RoiSet

logger = logging.getLogger(__name__)

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
POINTS_STYLE = {"vertex": "{},{}", "sep": " ", "wrap": "{}"}
"""How a point list is written: "x1,y1 x2,y2 ..." (numbers by `point_number`)."""


def document(roi_set: RoiSet, context: dict) -> str:
    """The whole OME-XML text of `roi_set`; `context` as `to_bytes` takes it."""
    ndim = len(roi_set.image_shape)
    scale = tuple(scale_of(context, ndim).tolist())
    the_c = channel_of(context) or 0
    full_shape = tuple(max(1, round(n * s)) for n, s in zip(roi_set.image_shape, scale))
    size_z = full_shape[0] if ndim == 3 else 1
    planes = Planes(scale=scale, ndim=ndim, size_z=size_z, the_c=the_c)
    rois, kept = _roi_elements(roi_set, planes)
    measurements = _measurement_lines(roi_set)
    about = "".join(
        _m_line(_m_start(k), content_text(_text(v)))
        for k, v in {**context, "roi_kind": roi_set.kind}.items()
    )
    head = [
        f'{_OME_START} Creator="{attribute_text(f"fractal-roi-tasks {__version__}")}">\n',
        f'  <Image ID="Image:0" Name="{attribute_text(_image_name(context))}">\n',
        _pixels(roi_set, scale, full_shape, the_c, _time_attributes(roi_set, context)),
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
    body = rois.render(number=point_number, **POINTS_STYLE)
    return f"{_XML_DECLARATION}{''.join(head)}{body}</OME>\n"


def _roi_elements(roi_set: RoiSet, planes: Planes) -> tuple[Template, list[int]]:
    """The ROI elements (point lists still to format) and the indices of the ROIs kept."""
    outlines = iter(polygon_outlines([s for roi in roi_set.rois for s in roi.shapes], planes))
    rois = Template()
    kept, skipped, n_shapes = [], [], 0
    for n, roi in enumerate(roi_set.rois):
        name = attribute_text(roi.name)
        shapes = roi_shapes(roi, n, name, planes, outlines)
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


# NGFF (UDUNITS) time unit names -> OME's UnitsTime symbols, for TimeIncrementUnit.
_OME_TIME_UNITS = {
    "second": "s",
    "millisecond": "ms",
    "microsecond": "µs",
    "nanosecond": "ns",
    "minute": "min",
    "hour": "h",
    "day": "d",
}


def _time_attributes(roi_set: RoiSet, context: dict) -> dict:
    """SizeT (and the time increment when known) of a set spanning time; {} without time."""
    n_times = time_points_of(roi_set, context)
    if n_times is None:
        return {}
    attributes = {"SizeT": n_times}
    spacing = time_spacing_of(context)
    if spacing is not None:
        value, unit = spacing
        symbol = _OME_TIME_UNITS.get(unit or "second")
        if symbol is None:
            logger.warning("OME-XML: time unit %r has no OME symbol; TimeIncrement left out", unit)
        else:
            attributes["TimeIncrement"] = float_attribute(value)
            if symbol != "s":  # OME's default unit, which ome-types leaves out
                attributes["TimeIncrementUnit"] = symbol
    return attributes


def _pixels(roi_set: RoiSet, scale, full_shape, the_c, time: dict) -> str:
    """MetadataOnly Pixels of the full-resolution image, sizes in micrometers.

    `time` overrides SizeT and adds TimeIncrement(Unit) for a set spanning time.
    """
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
        "PhysicalSizeX": float_attribute(physical["x"]),
        "PhysicalSizeY": float_attribute(physical["y"]),
    }
    if ndim == 3:
        attributes["PhysicalSizeZ"] = float_attribute(physical["z"])
    attributes.update(time)
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
    return [_m_line(start, content_text(_text(v))) for v in values]


def _m_start(key) -> str:
    return f'        <M K="{attribute_text(str(key))}"'


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
