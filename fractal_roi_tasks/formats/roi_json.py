"""Our own ROI file: every shape and measurement, versioned, lossless.

The schema is documented in docs/roi_json.md. Coordinates are written as the
core holds them: pixels of the label image's pyramid level, axis order
(z,) y, x, pixel centres on integers (pixel (y, x) covers y - 0.5 .. y + 0.5).
Masks are run-length encoded over the C-order flattened crop, starting with
a run of False. In a set spanning time points each ROI has a ``t`` member
(0-based index along the image's t axis, after ``branch``); without time it
has none, so such files are exactly those of a set without a t axis.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.batch import (
    feature_columns,
    gather_rings,
    json_key,
    json_texts,
    point_lists,
)
from fractal_roi_tasks.io.atomic import write_bytes_atomic
from fractal_roi_tasks.rois.shapes import (
    Ellipse,
    Mask,
    ObjectRoi,
    Point,
    Polygon,
    Polyline,
    RoiSet,
    Shape,
)

EXTENSION = ".json"
SCHEMA = "fractal-roi-tasks/rois"
VERSION = 1
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """Serialize `roi_set` (with `context`: label name, well, image...)."""
    document = {
        "schema": SCHEMA,
        "version": VERSION,
        "context": context or {},
        "kind": roi_set.kind,
        "image_shape": list(roi_set.image_shape),
        "axes": ["y", "x"] if len(roi_set.image_shape) == 2 else ["z", "y", "x"],
        "spacing_um": list(roi_set.spacing),
        "coordinates": "pixels, pixel centres on integers",
        "n_too_small": roi_set.n_too_small,
        "columns": list(roi_set.features.columns),
    }
    # The ROIs are the document's last member; their text is built in bulk.
    head = json.dumps(document, separators=(",", ":"))[:-1]
    return f'{head},"rois":[{",".join(_roi_texts(roi_set))}]}}'.encode()


def from_bytes(data: bytes) -> tuple[RoiSet, dict]:
    """Parse a document written by `to_bytes`: (the ROIs, their context)."""
    document = json.loads(data)
    if document.get("schema") != SCHEMA:
        raise InvalidInputError(f"Not a {SCHEMA} document (schema={document.get('schema')!r}).")
    if document.get("version") != VERSION:
        raise InvalidInputError(
            f"ROI JSON version {document.get('version')!r} is not supported; "
            f"this version of fractal-roi-tasks reads version {VERSION}."
        )
    rois, rows = [], []
    for item in document["rois"]:
        shapes = tuple(_shape_from_dict(s) for s in item["shapes"])
        rois.append(
            ObjectRoi(
                label=item["label"],
                name=item["name"],
                shapes=shapes,
                branch=item.get("branch"),
                t=item.get("t"),
            )
        )
        rows.append({"label": item["label"], **item["measurements"]})
    features = pd.DataFrame(rows, columns=document["columns"])
    roi_set = RoiSet(
        kind=document["kind"],
        rois=tuple(rois),
        features=features,
        image_shape=tuple(document["image_shape"]),
        spacing=tuple(document["spacing_um"]),
        n_too_small=document.get("n_too_small", 0),
    )
    return roi_set, document["context"]


def write(path: str | Path, roi_set: RoiSet, *, context: dict | None = None) -> Path:
    """Write the file at `path`, replacing any previous one atomically."""
    return write_bytes_atomic(path, to_bytes(roi_set, context=context))


def read(path: str | Path) -> tuple[RoiSet, dict]:
    """Read a file written by `write`."""
    return from_bytes(Path(path).read_bytes())


def _roi_texts(roi_set: RoiSet) -> list[str]:
    """The JSON object of each ROI: label, name, branch, (t,) measurements, shapes."""
    members = []  # per measurement column, its "key":value text per ROI
    for key, values in feature_columns(roi_set).items():
        if key != "label":
            prefix = json_key(key) + ":"
            members.append([prefix + text for text in json_texts(values)])
    rois = roi_set.rois
    measurements = [",".join(row) for row in zip(*members)] if members else [""] * len(rois)
    labels = json_texts([r.label for r in rois])
    names = json_texts([r.name for r in rois])
    branches = json_texts([r.branch for r in rois])
    times = ["" if r.t is None else f',"t":{int(r.t)}' for r in rois]
    shapes = iter(_shape_texts([s for r in rois for s in r.shapes]))
    return [
        f'{{"label":{label},"name":{name},"branch":{branch}{t},"measurements":{{{values}}},'
        f'"shapes":[{",".join(islice(shapes, len(roi.shapes)))}]}}'
        for roi, label, name, branch, t, values in zip(
            rois, labels, names, branches, times, measurements
        )
    ]


def _shape_texts(shapes: list[Shape]) -> list[str]:
    """The JSON object of each shape; polygons' and polylines' vertices formatted in bulk."""
    polygons = [s for s in shapes if isinstance(s, Polygon)]
    rings = gather_rings(polygons)
    outlines = iter(rings.per_polygon(point_lists(rings.points, rings.bounds)))
    planes = iter(json_texts([p.z for p in polygons]))
    paths = iter(_path_texts([s.points for s in shapes if isinstance(s, Polyline)]))
    texts = []
    for shape in shapes:
        if isinstance(shape, Polygon):
            exterior, *holes = next(outlines)
            z = next(planes)
            texts.append(
                f'{{"type":"polygon","z":{z},"exterior":{exterior},"holes":[{",".join(holes)}]}}'
            )
        elif isinstance(shape, Polyline):
            (closed,) = json_texts([shape.closed])
            texts.append(f'{{"type":"polyline","points":{next(paths)},"closed":{closed}}}')
        else:
            texts.append(_ENCODER.encode(_shape_to_dict(shape)))
    return texts


def _path_texts(paths: list[np.ndarray]) -> list[str]:
    """[[y,x],...] (or [[z,y,x],...]) of each path, formatted in bulk per dimensionality."""
    texts: list = [None] * len(paths)
    by_width: dict[int, list[int]] = {}
    for n, points in enumerate(paths):
        by_width.setdefault(np.shape(points)[1], []).append(n)
    for width, members in by_width.items():
        arrays = [np.asarray(paths[n], np.float64) for n in members]
        bounds = np.cumsum([0] + [len(a) for a in arrays])
        vertex = "[" + ",".join(["{}"] * width) + "]"
        for n, text in zip(members, point_lists(np.concatenate(arrays), bounds, vertex=vertex)):
            texts[n] = text
    return texts


def _shape_to_dict(shape: Ellipse | Point | Mask) -> dict:
    if isinstance(shape, Ellipse):
        return {
            "type": "ellipse",
            "z": shape.z,
            "center": list(shape.center),
            "semi_axes": list(shape.semi_axes),
            "angle": shape.angle,
        }
    if isinstance(shape, Point):
        return {"type": "point", "position": list(shape.position)}
    flat = shape.mask.ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {
        "type": "mask",
        "origin": list(shape.origin),
        "shape": list(shape.mask.shape),
        "runs": runs,
    }


def _shape_from_dict(item: dict) -> Shape:
    kind = item["type"]
    if kind == "polygon":
        return Polygon(
            exterior=np.asarray(item["exterior"], float).reshape(-1, 2),
            holes=tuple(np.asarray(h, float).reshape(-1, 2) for h in item["holes"]),
            z=item["z"],
        )
    if kind == "ellipse":
        return Ellipse(
            center=tuple(item["center"]),
            semi_axes=tuple(item["semi_axes"]),
            angle=item["angle"],
            z=item["z"],
        )
    if kind == "point":
        return Point(position=tuple(item["position"]))
    if kind == "polyline":
        points = np.asarray(item["points"], float)
        return Polyline(points=points.reshape(len(points), -1), closed=item["closed"])
    if kind == "mask":
        runs = np.asarray(item["runs"], np.int64)
        values = np.arange(len(runs)) % 2 == 1
        mask = np.repeat(values, runs).reshape(item["shape"])
        return Mask(origin=tuple(item["origin"]), mask=mask)
    raise InvalidInputError(
        f"Unknown shape type {kind!r}; expected polygon, ellipse, point, polyline or mask."
    )
