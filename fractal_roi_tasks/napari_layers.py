"""napari layers of one ROI set: what the napari reader returns for each file.

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
ellipse).

Time: in a set spanning time points (every ROI has a ``t``) every layer gets
a leading t axis: each shape's and point's first coordinate is its ROI's
time point (then z, y, x), the Labels layer is (T, (Z,) Y, X) with T =
``context["n_time_points"]`` (else one past the last t), and ``scale``,
``translate``, ``units`` and ``axis_labels`` have a t entry, so the layers
scroll with the image's t slider. A set without time has no t axis.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fractal_roi_tasks.formats.context import time_points_of
from fractal_roi_tasks.napari_placement import PathLike, placement_of
from fractal_roi_tasks.rois.shapes import Ellipse, Mask, Point, Polygon, Polyline, RoiSet

logger = logging.getLogger(__name__)

# RGBA. napari takes colours as names, lists or arrays (not tuples): pass `_rgba`.
EXTERIOR_COLOR = (1.0, 1.0, 0.0, 1.0)  # yellow
HOLE_COLOR = (1.0, 0.0, 1.0, 1.0)  # magenta

LayerData = tuple  # (data, kwargs, layer_type)


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
    n_times = time_points_of(roi_set, context)
    placement = placement_of(roi_set, context, source=source)
    common = {
        "scale": placement.scale,
        "translate": placement.translate,
        "units": placement.units,
        "axis_labels": placement.axes,
        "metadata": {
            "source": None if source is None else str(source),
            "context": context,
            "kind": roi_set.kind,
            "coordinates": f"pixels ({', '.join(placement.axes)}), pixel centres on integers",
            "placement": placement.origin,
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
        layers.append(
            builder(roi_set, items, ndim, n_times, {"name": f"{name} {noun}", **common})
        )
    logger.debug("%d layers from %d ROIs (%s)", len(layers), len(roi_set.rois), placement.origin)
    return layers


# --------------------------------------------------------------------------
# One layer per shape type


# Each builder takes the items [(ROI index, shape)] of one shape type, the
# spatial ndim, the number of time points (None without time) and the
# options every layer shares.


def _polygon_layer(roi_set, items, ndim, n_times, common) -> LayerData:
    data, rows, is_hole = [], [], []
    for i, shape in items:
        for ring, hole in [(shape.exterior, False), *((h, True) for h in shape.holes)]:
            data.append(_leading(ring, roi_set.rois[i].t, shape.z, ndim))
            rows.append(i)
            is_hole.append(hole)
    features = _features(roi_set, rows)
    features["is_hole"] = np.asarray(is_hole, bool)
    colors = np.array([HOLE_COLOR if h else EXTERIOR_COLOR for h in is_hole], float)
    kwargs = {
        **common,
        "shape_type": "polygon",
        "ndim": _layer_ndim(ndim, n_times),
        "features": features,
        # napari refuses an empty (0, 4) array; one colour names the layer's default.
        "edge_color": colors.reshape(-1, 4) if len(data) else _rgba(EXTERIOR_COLOR),
        "face_color": "transparent",
    }
    return data, kwargs, "shapes"


def _ellipse_layer(roi_set, items, ndim, n_times, common) -> LayerData:
    data = [_leading(ellipse_corners(s), roi_set.rois[i].t, s.z, ndim) for i, s in items]
    features = _features(roi_set, [i for i, _ in items])
    return data, _outline_kwargs(common, "ellipse", _layer_ndim(ndim, n_times), features), "shapes"


def _outline_kwargs(common: dict, shape_type: str, ndim: int, features) -> dict:
    """Layer options of outlines drawn in one colour, unfilled."""
    return {
        **common,
        "shape_type": shape_type,
        "ndim": ndim,
        "features": features,
        "edge_color": _rgba(EXTERIOR_COLOR),
        "face_color": "transparent",
    }


def _path_layer(roi_set, items, ndim, n_times, common) -> LayerData:
    data = []
    for i, shape in items:
        points = np.asarray(shape.points, float)
        if shape.closed and len(points) > 1:
            points = np.concatenate([points, points[:1]])
        data.append(_leading(points, roi_set.rois[i].t))  # a 3D path keeps its z per vertex
    features = _features(roi_set, [i for i, _ in items])
    return data, _outline_kwargs(common, "path", _layer_ndim(ndim, n_times), features), "shapes"


def _points_layer(roi_set, items, ndim, n_times, common) -> LayerData:
    layer_ndim = _layer_ndim(ndim, n_times)
    positions = [_leading([s.position], roi_set.rois[i].t) for i, s in items]
    data = np.concatenate(positions) if positions else np.zeros((0, layer_ndim))
    kwargs = {
        **common,
        "ndim": layer_ndim,
        "features": _features(roi_set, [i for i, _ in items]),
        "face_color": _rgba(EXTERIOR_COLOR),
    }
    return data, kwargs, "points"


def _labels_layer(roi_set, items, ndim, n_times, common) -> LayerData:
    labels = [roi_set.rois[i].label for i, _ in items]
    top = max(labels, default=0)
    dtype = np.uint32 if top <= np.iinfo(np.uint32).max else np.uint64
    timed = n_times is not None
    image = np.zeros(((n_times,) if timed else ()) + tuple(roi_set.image_shape), dtype)
    for (i, shape), label in zip(items, labels):
        window = tuple(slice(o, o + n) for o, n in zip(shape.origin, shape.mask.shape))
        if timed:
            window = (roi_set.rois[i].t, *window)
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


def _leading(points, t: int | None, z: int | None = None, ndim: int = 2) -> np.ndarray:
    """(N, d) points with the constant coordinates put first: t (if any), then z in 3D."""
    points = np.asarray(points, float)
    lead = ([] if t is None else [float(t)]) + ([float(z)] if ndim == 3 else [])
    if not lead:
        return points
    return np.column_stack([np.tile(lead, (len(points), 1)), points])


def _layer_ndim(ndim: int, n_times: int | None) -> int:
    return ndim + (n_times is not None)


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


def _rgba(color: tuple[float, ...]) -> list[float]:
    """A colour as napari takes it (a list; napari refuses tuples)."""
    return [float(c) for c in color]
