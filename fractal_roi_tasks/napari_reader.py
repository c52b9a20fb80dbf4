"""napari reader for the ROI files of Segment to ROIs (npe2 plugin).

napari finds it through ``napari.yaml`` (entry point ``napari.manifest``);
napari itself is not needed here: the reader returns plain LayerData tuples
``(data, kwargs, layer_type)``. It opens our ROI JSON (``*_rois.json``, read
with `fractal_roi_tasks.formats.roi_json.read`), an image's ``rois/`` folder
(every label's file) or one ``rois/{label}`` folder.

Each file gives one layer per shape type (`fractal_roi_tasks.napari_layers`:
polygons, ellipses, branches, centroids, masks; a leading t axis for a set
spanning time), placed where napari-ome-zarr puts the image's pyramid level
the ROIs were found on (`fractal_roi_tasks.napari_placement`); their public
names can be imported from here too.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import roi_json
from fractal_roi_tasks.napari_layers import (
    EXTERIOR_COLOR,
    HOLE_COLOR,
    LayerData,
    ellipse_corners,
    layers_from_roi_set,
)
from fractal_roi_tasks.napari_placement import FALLBACK_UNIT, PathLike, Placement, placement_of

__all__ = [
    "EXTERIOR_COLOR",
    "FALLBACK_UNIT",
    "FILE_SUFFIX",
    "HOLE_COLOR",
    "LayerData",
    "Placement",
    "ellipse_corners",
    "get_reader",
    "layers_from_roi_set",
    "placement_of",
    "read_rois",
]

logger = logging.getLogger(__name__)

FILE_SUFFIX = "_rois.json"
_SCHEMA_PROBE = re.compile(rb'"schema"\s*:\s*"' + re.escape(roi_json.SCHEMA.encode()) + rb'"')


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
