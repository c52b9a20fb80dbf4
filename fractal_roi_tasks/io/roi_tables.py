"""ROI tables as DataFrames, read and written back with their backend."""

from __future__ import annotations

import hashlib

import ngio
import pandas as pd

from fractal_roi_tasks.errors import NotFoundError


def read_roi_table(ome_zarr: ngio.OmeZarrContainer, name: str, zarr_url: str):
    """(the ngio table, its DataFrame indexed by ROI name), or a clear error."""
    tables = ome_zarr.list_tables()
    if name not in tables:
        raise NotFoundError(f"ROI table {name!r} not found in {zarr_url!r}; it has tables {tables}.")
    table = ome_zarr.get_roi_table(name)
    return table, table.dataframe.copy()


def write_roi_table(
    ome_zarr: ngio.OmeZarrContainer, name: str, frame: pd.DataFrame, *, like
) -> None:
    """Write `frame` (indexed by ROI name) as ROI table `name`, in `like`'s backend."""
    table = ngio.RoiTable()
    table.set_table_data(frame.rename_axis("FieldIndex"))
    ome_zarr.add_table(name, table, backend=like.backend_name, overwrite=True)


def fingerprint(frame: pd.DataFrame) -> str:
    """A digest of a table's content, to recognise an image built from it."""
    text = frame.sort_index(axis=1).to_csv(float_format="%.17g")
    return hashlib.sha256(text.encode()).hexdigest()
