"""Our own ROI file: every shape and measurement, versioned, lossless.

The schema is documented in docs/roi_json.md. Coordinates are written as the
core holds them: pixels of the label image's pyramid level, axis order
(z,) y, x, pixel centres on integers (pixel (y, x) covers y - 0.5 .. y + 0.5).
Masks are run-length encoded over the C-order flattened crop, starting with
a run of False.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
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


def to_bytes(roi_set: RoiSet, *, context: dict | None = None) -> bytes:
    """Serialize `roi_set` (with `context`: label name, well, image...)."""
    records = roi_set.features.to_dict(orient="records")
    rois = []
    for roi, measurements in zip(roi_set.rois, records):
        rois.append(
            {
                "label": roi.label,
                "name": roi.name,
                "branch": roi.branch,
                "measurements": {k: _plain(v) for k, v in measurements.items() if k != "label"},
                "shapes": [_shape_to_dict(s) for s in roi.shapes],
            }
        )
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
        "rois": rois,
    }
    return json.dumps(document, separators=(",", ":")).encode()


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
                label=item["label"], name=item["name"], shapes=shapes, branch=item.get("branch")
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


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _shape_to_dict(shape: Shape) -> dict:
    if isinstance(shape, Polygon):
        return {
            "type": "polygon",
            "z": shape.z,
            "exterior": shape.exterior.tolist(),
            "holes": [h.tolist() for h in shape.holes],
        }
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
    if isinstance(shape, Polyline):
        return {"type": "polyline", "points": shape.points.tolist(), "closed": shape.closed}
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
