"""Where napari puts the layers of a ROI file: the OME-NGFF transformations of its level.

Every layer is put where napari-ome-zarr puts the pyramid level
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import InvalidNameError
from fractal_roi_tasks.formats.context import time_points_of, time_spacing_of
from fractal_roi_tasks.names import check_name
from fractal_roi_tasks.rois.shapes import RoiSet

logger = logging.getLogger(__name__)

FALLBACK_UNIT = "micrometer"  # the unit of the files' spacing_um
PathLike = str | os.PathLike


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

