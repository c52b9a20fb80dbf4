"""napari reader for the ROI files of Segment to ROIs (npe2 plugin).

napari finds it through ``napari.yaml`` (entry point ``napari.manifest``);
napari itself is not needed here: the reader returns plain LayerData tuples
``(data, kwargs, layer_type)``. It opens our ROI JSON (``*_rois.json``, read
with `fractal_roi_tasks.formats.roi_json.read`), an image's ``rois/`` folder
(every label's file) or one ``rois/{label}`` folder.

Layers, one per shape type of each file:

- polygons -> a Shapes layer of ``shape_type="polygon"``. napari Shapes have
  no holes, so every ring is its own polygon and the feature column
  ``is_hole`` says which rings are holes; all polygons are outlines
  (transparent faces) with exteriors in yellow and holes in magenta, so a hole
  reads as a hole instead of being painted over.
- ellipses -> Shapes ``"ellipse"``: napari's four corners of the (rotated)
  bounding box.
- skeleton branches -> Shapes ``"path"`` (a closed branch repeats its first
  vertex); a 3D path keeps its z per vertex.
- points -> a Points layer.
- masks -> a Labels layer painted with the label values: the exact pixels,
  which is what masks are for (as polygons they would only repeat the
  polygon export).

``features`` is the measurements table, one row per shape (an object's row
repeated for each of its shapes; ``label`` and ``roi_name`` columns); for
Labels one row per object with ``index`` = label value, the column napari
uses to show a label's features. Coordinates stay in the file's pixels:
napari puts pixel centres on integers, as our files do, so no shift is
needed; 3D shapes carry z as their first coordinate (constant per polygon or
ellipse). ``scale`` is the file's ``spacing_um``, so the layers overlay an
OME-Zarr image opened in micrometers; ROIs found on a lower-resolution level
(context ``scale`` > 1) get the half-pixel ``translate`` that lines their
pixel centres up with the full-resolution image's.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import roi_json
from fractal_roi_tasks.rois.shapes import Ellipse, Mask, Point, Polygon, Polyline, RoiSet

logger = logging.getLogger(__name__)

FILE_SUFFIX = "_rois.json"
EXTERIOR_COLOR = (1.0, 1.0, 0.0, 1.0)  # yellow
HOLE_COLOR = (1.0, 0.0, 1.0, 1.0)  # magenta
_SCHEMA_PROBE = re.compile(rb'"schema"\s*:\s*"' + re.escape(roi_json.SCHEMA.encode()) + rb'"')

LayerData = tuple  # (data, kwargs, layer_type)
PathLike = str | os.PathLike


def get_reader(path: PathLike | Sequence[PathLike]) -> Callable | None:
    """npe2 reader hook: `read_rois` if `path` holds our ROI files, else None.

    `path` is a ``*_rois.json`` file, a folder holding such files directly
    (``rois/{label}``) or one level down (``rois/``), or a list of these.
    Files are recognised by name and by the schema tag at their start.
    """
    return read_rois if _roi_files(path) else None


def read_rois(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """napari LayerData tuples for every ROI file at `path` (see module doc)."""
    files = _roi_files(path)
    if not files:
        raise InvalidInputError(
            f"No fractal-roi-tasks ROI files (*{FILE_SUFFIX}) at {path!s}; "
            "give a ROI file, an image's rois/ folder or a rois/{label} folder."
        )
    layers: list[LayerData] = []
    for file in files:
        roi_set, context = roi_json.read(file)
        name = context.get("label_name") or file.name.removesuffix(FILE_SUFFIX)
        layers.extend(layers_from_roi_set(roi_set, context, name=name, source=file))
    logger.debug("read %d layers from %d ROI files", len(layers), len(files))
    return layers


def layers_from_roi_set(
    roi_set: RoiSet,
    context: dict | None = None,
    *,
    name: str = "ROIs",
    source: PathLike | None = None,
) -> list[LayerData]:
    """LayerData tuples for one ROI set: one layer per shape type it holds."""
    context = dict(context or {})
    ndim = len(roi_set.image_shape)
    common = {
        "scale": tuple(float(s) for s in roi_set.spacing),
        "translate": _translate(roi_set, context),
        "metadata": {
            "source": None if source is None else str(source),
            "context": context,
            "kind": roi_set.kind,
            "coordinates": "pixels (z, y, x), pixel centres on integers; scale = spacing_um",
        },
    }
    by_type: dict[type, list[tuple[int, object]]] = {}
    for i, roi in enumerate(roi_set.rois):
        for shape in roi.shapes:
            by_type.setdefault(type(shape), []).append((i, shape))
    if not by_type:  # still show an (empty) layer of the set's kind
        by_type[_KIND_TYPE.get(roi_set.kind, Polygon)] = []
    layers = []
    for shape_type, items in by_type.items():
        builder, noun = _BUILDERS[shape_type]
        layers.append(builder(roi_set, items, ndim, {"name": f"{name} {noun}", **common}))
    return layers


# --------------------------------------------------------------------------
# One layer per shape type


def _polygon_layer(roi_set, items, ndim, common) -> LayerData:
    data, rows, is_hole = [], [], []
    for i, shape in items:
        for ring, hole in [(shape.exterior, False), *((h, True) for h in shape.holes)]:
            data.append(_with_z(ring, shape.z, ndim))
            rows.append(i)
            is_hole.append(hole)
    features = _features(roi_set, rows)
    features["is_hole"] = np.asarray(is_hole, bool)
    colors = np.array([HOLE_COLOR if h else EXTERIOR_COLOR for h in is_hole]).reshape(-1, 4)
    kwargs = {
        **common,
        "shape_type": "polygon",
        "ndim": ndim,
        "features": features,
        "edge_color": colors if len(data) else EXTERIOR_COLOR,
        "face_color": "transparent",
    }
    return data, kwargs, "shapes"


def _ellipse_layer(roi_set, items, ndim, common) -> LayerData:
    data = [_with_z(ellipse_corners(shape), shape.z, ndim) for _, shape in items]
    return data, _outline_kwargs(common, "ellipse", ndim, _features(roi_set, [i for i, _ in items])), "shapes"


def _outline_kwargs(common: dict, shape_type: str, ndim: int, features) -> dict:
    """Layer options of outlines drawn in one colour, unfilled."""
    return {
        **common,
        "shape_type": shape_type,
        "ndim": ndim,
        "features": features,
        "edge_color": EXTERIOR_COLOR,
        "face_color": "transparent",
    }


def _path_layer(roi_set, items, ndim, common) -> LayerData:
    data = []
    for _, shape in items:
        points = np.asarray(shape.points, float)
        if shape.closed and len(points) > 1:
            points = np.concatenate([points, points[:1]])
        data.append(points)
    return data, _outline_kwargs(common, "path", ndim, _features(roi_set, [i for i, _ in items])), "shapes"


def _points_layer(roi_set, items, ndim, common) -> LayerData:
    data = np.array([shape.position for _, shape in items], float).reshape(-1, ndim)
    kwargs = {
        **common,
        "ndim": ndim,
        "features": _features(roi_set, [i for i, _ in items]),
        "face_color": EXTERIOR_COLOR,
    }
    return data, kwargs, "points"


def _labels_layer(roi_set, items, ndim, common) -> LayerData:
    labels = [roi_set.rois[i].label for i, _ in items]
    top = max(labels, default=0)
    dtype = np.uint32 if top <= np.iinfo(np.uint32).max else np.uint64
    image = np.zeros(roi_set.image_shape, dtype)
    for (_, shape), label in zip(items, labels):
        window = tuple(slice(o, o + n) for o, n in zip(shape.origin, shape.mask.shape))
        image[window][np.asarray(shape.mask, bool)] = label
    rows = list(dict.fromkeys(i for i, _ in items))  # one row per object
    features = _features(roi_set, rows)
    features.insert(0, "index", [roi_set.rois[i].label for i in rows])
    return image, {**common, "features": features}, "labels"


_BUILDERS = {
    Polygon: (_polygon_layer, "polygons"),
    Ellipse: (_ellipse_layer, "ellipses"),
    Polyline: (_path_layer, "branches"),
    Point: (_points_layer, "centroids"),
    Mask: (_labels_layer, "masks"),
}
_KIND_TYPE = {
    "polygon": Polygon,
    "ellipse": Ellipse,
    "skeleton": Polyline,
    "point": Point,
    "mask": Mask,
}


def ellipse_corners(ellipse: Ellipse) -> np.ndarray:
    """napari's form of an ellipse: the (4, 2) (y, x) corners of its box.

    The box is rotated with the ellipse; corners run around it, starting
    with the one at minus both semi-axes (for angle 0: top-left, top-right,
    bottom-right, bottom-left, as napari orders them).

    >>> ellipse_corners(Ellipse(center=(5.0, 10.0), semi_axes=(4.0, 2.0), angle=0.0)).tolist()
    [[3.0, 6.0], [3.0, 14.0], [7.0, 14.0], [7.0, 6.0]]
    """
    center = np.asarray(ellipse.center, float)
    major, minor = ellipse.semi_axes
    cos, sin = np.cos(ellipse.angle), np.sin(ellipse.angle)
    along = np.array([sin, cos])  # major axis direction, (y, x)
    across = np.array([cos, -sin])  # minor axis direction
    signs = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    return np.array([center + a * major * along + b * minor * across for a, b in signs])


# --------------------------------------------------------------------------
# Helpers


def _with_z(points: np.ndarray, z: int | None, ndim: int) -> np.ndarray:
    points = np.asarray(points, float)
    if ndim == 2:
        return points
    return np.column_stack([np.full(len(points), float(z)), points])


def _features(roi_set: RoiSet, rows: list[int]) -> pd.DataFrame:
    """The measurements of ROI `rows`, one row per entry, with label and name."""
    table = roi_set.features.reset_index(drop=True)
    if "label" not in table.columns:
        table.insert(0, "label", [roi.label for roi in roi_set.rois])
    out = table.iloc[rows].reset_index(drop=True)
    out.insert(
        int(out.columns.get_loc("label")) + 1, "roi_name", [roi_set.rois[i].name for i in rows]
    )
    return out


def _translate(roi_set: RoiSet, context: dict) -> tuple[float, ...]:
    """Shift (micrometers) of a lower level's pixel centres over level 0's.

    A level-k pixel i spans [i, i + 1) * spacing; napari shows the full-
    resolution image with pixel centres at j * spacing_0, so the level's
    centre (i + 0.5) * spacing lands at i * spacing + 0.5 * (spacing -
    spacing_0), spacing_0 = spacing / scale.
    """
    ndim = len(roi_set.image_shape)
    scale = context.get("scale")
    if scale is None or len(scale) != ndim:
        return (0.0,) * ndim
    return tuple(float(0.5 * s * (1.0 - 1.0 / float(f))) for s, f in zip(roi_set.spacing, scale))


def _roi_files(path) -> list[Path]:
    """Our ROI files at `path` ([] when there are none, or for anything else)."""
    if isinstance(path, (list, tuple)):
        found = [_roi_files(p) for p in path]
        if not found or not all(found):
            return []
        return [f for files in found for f in files]
    try:
        path = Path(os.fspath(path))
    except TypeError:
        return []
    if path.is_dir():
        candidates = sorted(path.glob(f"*{FILE_SUFFIX}")) + sorted(path.glob(f"*/*{FILE_SUFFIX}"))
        return [c for c in candidates if _is_ours(c)]
    return [path] if path.name.endswith(FILE_SUFFIX) and _is_ours(path) else []


def _is_ours(file: Path) -> bool:
    """True for a file that starts like a fractal-roi-tasks ROI document."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return _SCHEMA_PROBE.search(head) is not None
