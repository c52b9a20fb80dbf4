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
ellipse).

Time: in a set spanning time points (every ROI has a ``t``) every layer gets
a leading t axis: each shape's and point's first coordinate is its ROI's
time point (then z, y, x), the Labels layer is (T, (Z,) Y, X) with T =
``context["n_time_points"]`` (else one past the last t), and ``scale``,
``translate``, ``units`` and ``axis_labels`` have a t entry, so the layers
scroll with the image's t slider. A set without time has no t axis.

Placement: every layer is put where napari-ome-zarr puts the pyramid level
the ROIs were found on, by that level's own OME-NGFF coordinate
transformations: ``scale`` and ``translate`` are the level's ``scale`` and
``translation`` (composed with any multiscale-wide ones), ``units`` the NGFF
axis units (``"micrometer"``...), so that napari finds the same units on
every layer and keeps its physical scale bar, and ``axis_labels`` the axis
names. ROIs found on level k lie exactly on the level-k labels as napari
draws them. These are read from the label image's metadata
(``labels/{label_name}``, else the image's) of the OME-Zarr the file lives in
(``{zarr_url}/rois/{label}/``), else of the file's context ``zarr_url``, at
the file's context ``level``, when that level's array has the file's shape.
A file away from its image falls back to ``scale`` = the file's
``spacing_um``, no translation and micrometers, which is what ngio writes
(for t: ``context["time_spacing"]`` in ``context["time_unit"]``, else 1 and
no unit).

Known: ngio (1.1) builds a label pyramid by taking level-0 pixel ``2 j + 1``
as level-1 pixel ``j`` while writing no translation, so every NGFF viewer,
napari included, shows level 1 about one full-resolution pixel up and left
of level 0; ROIs of level 1 follow the level-1 labels.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError, InvalidNameError
from fractal_roi_tasks.formats import roi_json
from fractal_roi_tasks.formats.context import time_points_of, time_spacing_of
from fractal_roi_tasks.names import check_name
from fractal_roi_tasks.rois.shapes import Ellipse, Mask, Point, Polygon, Polyline, RoiSet

logger = logging.getLogger(__name__)

FILE_SUFFIX = "_rois.json"
# RGBA. napari takes colours as names, lists or arrays (not tuples): pass `_rgba`.
EXTERIOR_COLOR = (1.0, 1.0, 0.0, 1.0)  # yellow
HOLE_COLOR = (1.0, 0.0, 1.0, 1.0)  # magenta
FALLBACK_UNIT = "micrometer"  # the unit of the files' spacing_um
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


# --------------------------------------------------------------------------
# Placement: the level's own OME-NGFF coordinate transformations


@dataclass(frozen=True)
class Placement:
    """Where napari puts a layer: per axis of the file ((z,) y, x).

    Attributes:
        axes: axis names, e.g. ("y", "x"), or ("t", "y", "x") for a set
            spanning time.
        scale: world units per pixel.
        translate: world position of pixel 0's centre.
        units: unit names napari (pint) reads, e.g. "micrometer"; None for an
            axis without a unit (napari's "pixel").
        origin: where these came from, for the layer's metadata.
    """

    axes: tuple[str, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    units: tuple[str | None, ...]
    origin: str


def placement_of(
    roi_set: RoiSet, context: dict | None = None, *, source: PathLike | None = None
) -> Placement:
    """The placement of the ROIs of `roi_set` (see the module doc).

    `source` is the ROI file; `context` its context (``label_name``,
    ``level``, ``zarr_url``). Without an OME-Zarr to read it from:

    >>> from fractal_roi_tasks.rois import extract_rois
    >>> placement_of(extract_rois(np.ones((4, 4), np.uint8), spacing=(0.65, 0.65)))
    Placement(axes=('y', 'x'), scale=(0.65, 0.65), translate=(0.0, 0.0), units=('micrometer', 'micrometer'), origin='spacing_um of the file')
    """
    context = context or {}
    spatial = ("y", "x") if len(roi_set.image_shape) == 2 else ("z", "y", "x")
    timed = time_points_of(roi_set, context) is not None
    axes = ("t",) * timed + spatial
    for group in _metadata_groups(context, source):
        found = _ngff_placement(group, axes, roi_set.image_shape, context.get("level"))
        if found is not None:
            return found
    scale = tuple(float(s) for s in roi_set.spacing)
    units: tuple = (FALLBACK_UNIT,) * len(spatial)
    if timed:
        spacing, unit = time_spacing_of(context) or (1.0, None)
        scale, units = (spacing, *scale), (_unit(unit), *units)
    return Placement(
        axes=axes,
        scale=scale,
        translate=(0.0,) * len(axes),
        units=units,
        origin="spacing_um of the file",
    )


def _metadata_groups(context: dict, source: PathLike | None) -> list[Path]:
    """Groups whose NGFF metadata may place the file: its label image, then its image."""
    images = []
    if source is not None:
        folder = Path(os.fspath(source)).resolve().parent  # .../rois/{label}
        if folder.parent.name == "rois":
            images.append(folder.parent.parent)
    zarr_url = context.get("zarr_url")
    if isinstance(zarr_url, str) and "://" not in zarr_url:
        images.append(Path(zarr_url))
    label_name = context.get("label_name")
    try:
        label_name = check_name(label_name, what="label_name")
    except InvalidNameError:  # no name, or not one: read no labels group for it
        label_name = None
    groups = []
    for image in dict.fromkeys(images):
        if label_name is not None:
            groups.append(image / "labels" / label_name)
        groups.append(image)
    return groups


def _ngff_placement(group: Path, axes, image_shape, level) -> Placement | None:
    """The placement of `level` of the multiscale at `group`, if it fits the file.

    None when `group` has no readable multiscale, no dataset `level` (the
    first dataset when `level` is unknown), lacks one of `axes`, or when that
    level's array is not `image_shape` along the spatial `axes` (a file from
    another image or an overwritten label); t, if among `axes`, is not
    compared (a set need not reach the last time point).
    """
    attrs = _read_json(group / "zarr.json", group / ".zattrs")
    if attrs is None:
        return None
    attrs = attrs.get("attributes", attrs)
    attrs = attrs.get("ome", attrs)
    try:
        multiscale = attrs["multiscales"][0]
        names = [axis["name"] if isinstance(axis, dict) else axis for axis in multiscale["axes"]]
        units = [axis.get("unit") if isinstance(axis, dict) else None for axis in multiscale["axes"]]
        datasets = multiscale["datasets"]
        dataset = datasets[0] if level is None else next(
            d for d in datasets if str(d["path"]) == str(level)
        )
        index = [names.index(a) for a in axes]
        scale, translate = _compose(
            len(names),
            dataset.get("coordinateTransformations", []),
            multiscale.get("coordinateTransformations", []),
        )
    except (KeyError, IndexError, TypeError, ValueError, StopIteration):
        return None
    array = _read_json(group / str(dataset["path"]) / "zarr.json", group / str(dataset["path"]) / ".zarray")
    shape = None if array is None else array.get("shape")
    if not isinstance(shape, list) or len(shape) != len(names):
        return None
    spatial = [i for a, i in zip(axes, index) if a != "t"]
    if [shape[i] for i in spatial] != list(image_shape):
        logger.debug("%s level %s is %s, not the file's %s", group, level, shape, image_shape)
        return None
    return Placement(
        axes=tuple(axes),
        scale=tuple(float(scale[i]) for i in index),
        translate=tuple(float(translate[i]) for i in index),
        units=tuple(_unit(units[i]) for i in index),
        origin=f"OME-NGFF coordinate transformations of {group} level {dataset['path']}",
    )


def _compose(ndim: int, *transform_lists) -> tuple[np.ndarray, np.ndarray]:
    """Scale and translation of NGFF transformation lists applied in turn."""
    scale, translate = np.ones(ndim), np.zeros(ndim)
    for transforms in transform_lists:
        for transform in transforms:
            kind = transform["type"]
            if kind == "scale":
                factor = np.asarray(transform["scale"], float).reshape(ndim)
                scale, translate = scale * factor, translate * factor
            elif kind == "translation":
                translate = translate + np.asarray(transform["translation"], float).reshape(ndim)
            elif kind != "identity":
                raise ValueError(f"unsupported transformation {kind!r}")
    return scale, translate


def _unit(name) -> str | None:
    """An NGFF unit name if napari's unit library knows it, else None."""
    if not isinstance(name, str) or not name:
        return None
    try:
        import pint
    except ImportError:  # no napari here; keep the name as written
        return name
    try:
        pint.get_application_registry().parse_units(name)
    except (pint.errors.PintError, ValueError, AttributeError, TypeError):
        logger.warning("unit %r of the image is unknown to napari; the layer has none", name)
        return None
    return name


def _read_json(*candidates: Path) -> dict | None:
    """The first of `candidates` that is a JSON object file, else None."""
    for candidate in candidates:
        try:
            document = json.loads(candidate.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict):
            return document
    return None


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
