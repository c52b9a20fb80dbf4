"""Rewrite a table in place without ever losing it.

ngio replaces a table by deleting and writing it, so a task killed in
between would leave the image without the table the user had. The guard
keeps a copy next to it (a hidden folder, not listed as a table) for the
length of the rewrite: on success the copy goes; if the process dies, the
next run puts the copy back before doing anything else.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import zarr

logger = logging.getLogger(__name__)


def _paths(zarr_url: str, table_name: str) -> tuple[Path, Path]:
    tables = Path(zarr_url) / "tables"
    return tables / table_name, tables / f".{table_name}.backup"


def restore_interrupted(zarr_url: str, table_name: str) -> bool:
    """Put back a table whose rewrite was interrupted; True if it did."""
    table, backup = _paths(zarr_url, table_name)
    if not backup.exists():
        return False
    if table.exists():
        shutil.rmtree(table)
    backup.rename(table)
    _list_table(zarr_url, table_name)
    logger.warning("restored table %r of %s from an interrupted rewrite", table_name, zarr_url)
    return True


def _list_table(zarr_url: str, table_name: str) -> None:
    """Make sure the tables group lists `table_name` (ngio unlists it on delete)."""
    group = zarr.open_group(f"{zarr_url}/tables", mode="r+")
    names = list(group.attrs.get("tables", []))
    if table_name not in names:
        group.attrs["tables"] = [*names, table_name]


@contextmanager
def guarded_rewrite(zarr_url: str, table_name: str) -> Iterator[None]:
    """Keep a copy of `table_name` while the body rewrites it."""
    restore_interrupted(zarr_url, table_name)
    table, backup = _paths(zarr_url, table_name)
    partial = backup.with_name(backup.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(table, partial)
    partial.rename(backup)  # the backup appears only once it is complete
    try:
        yield
    except BaseException:
        restore_interrupted(zarr_url, table_name)
        raise
    shutil.rmtree(backup)
