"""Open images, labels and tables with errors that say what exists instead."""

from __future__ import annotations

from pathlib import Path

import ngio

from fractal_roi_tasks.errors import NotFoundError


def open_image_container(zarr_url: str) -> ngio.OmeZarrContainer:
    """Open the OME-Zarr image at `zarr_url`, or say clearly why not."""
    if not Path(zarr_url).exists():
        raise NotFoundError(f"No OME-Zarr image at {zarr_url!r}: the path does not exist.")
    try:
        return ngio.open_ome_zarr_container(zarr_url)
    except ngio.NgioError as err:
        raise NotFoundError(f"{zarr_url!r} is not a readable OME-Zarr image: {err}") from err


def require_label(ome_zarr: ngio.OmeZarrContainer, label_name: str, zarr_url: str) -> None:
    """Raise `NotFoundError` naming the existing labels if `label_name` is missing."""
    labels = ome_zarr.list_labels()
    if label_name not in labels:
        raise NotFoundError(
            f"Label image {label_name!r} not found in {zarr_url!r}; it has labels "
            f"{labels}. Segment a channel first (the `segmentation` argument) or pick "
            "one of these."
        )


def require_table(ome_zarr: ngio.OmeZarrContainer, table_name: str, zarr_url: str) -> None:
    """Raise `NotFoundError` naming the existing tables if `table_name` is missing."""
    tables = ome_zarr.list_tables()
    if table_name not in tables:
        raise NotFoundError(
            f"Table {table_name!r} not found in {zarr_url!r}; it has tables {tables}."
        )
