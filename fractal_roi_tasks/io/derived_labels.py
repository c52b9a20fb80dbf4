"""The label images of a rebuilt image: each derived beside its source, moved or copied, with all levels.

Apply Registration and Apply Drift Correction both build a new image and give
it every label image of the old one; how a label's pixels move is theirs,
the rest (derive, pyramid, colours and properties) is here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def write_labels(ome_zarr, new, source: Path, target: Path, move: Callable | None, *, unmoved: str) -> None:
    """Give `new` every label image of `ome_zarr`, moved by `move(label, new_label)` or copied whole.

    Args:
        ome_zarr, new: the ngio containers of the source and of the image being built.
        source, target: their paths (for the label metadata ngio does not copy).
        move: writes level 0 of the new label from the old one; None copies it unchanged.
        unmoved: how the warning names labels copied unchanged (e.g. "unregistered").
    """
    from fractal_roi_tasks.io import block_copy
    from fractal_roi_tasks.io.pyramid import build_pyramid

    labels = ome_zarr.list_labels()
    for label_name in labels:
        label = ome_zarr.get_label(label_name)
        new_label = new.derive_label(label_name, ref_image=label, dtype=str(label.dtype))
        if move is None:
            block_copy.copy_whole(label.zarr_array, new_label.zarr_array)
        else:
            move(label, new_label)
        build_pyramid(new_label)
        copy_label_metadata(source, target, label_name)
    if labels and move is None:
        logger.warning("labels %s copied %s", labels, unmoved)


def copy_label_metadata(source: Path, target: Path, label_name: str) -> None:
    """Carry ``colors``/``properties`` of ``image-label`` over (ngio writes only ``source``)."""
    import zarr

    def holder(attrs):
        return attrs["ome"] if "ome" in attrs else attrs

    old = holder(zarr.open_group(str(source / "labels" / label_name), mode="r").attrs.asdict())
    extra = {k: v for k, v in old.get("image-label", {}).items() if k in ("colors", "properties")}
    if not extra:
        return
    group = zarr.open_group(str(target / "labels" / label_name), mode="r+")
    attrs = group.attrs.asdict()
    new = holder(attrs)
    new["image-label"] = {**new.get("image-label", {}), **extra}
    if "ome" in attrs:
        group.attrs["ome"] = new
    else:
        group.attrs["image-label"] = new["image-label"]
