"""Build the registered image of an acquisition: every ROI moved into the reference frame.

The regions and where they go come from the registered ROI table
(`registered_rois`); the pixels are copied block by block (`block_copy`); the
tables, labels and pyramid levels of the new image follow. The new image is
built beside the original; `io.swap` publishes it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io import block_copy
from fractal_roi_tasks.io.registered_rois import (
    AXES,
    RoiPair,
    check_pairs,
    in_reference_frame,
    masking_in_reference_frame,
    pixel_boxes,
    read_reference_table,
    roi_pairs,
    with_reference_rois,
)
from fractal_roi_tasks.io.roi_tables import fingerprint
from fractal_roi_tasks.names import REFERENCE_COLUMNS

logger = logging.getLogger(__name__)


def copy_pairs(source, target, pairs: list[RoiPair], *, block_bytes: int | None = None) -> None:
    """Copy every pair's region of `source` (ngio Image or Label) into `target`.

    See `block_copy.copy_boxes`: block by block of `target`, memory a few
    blocks whatever the image size.
    """
    size = source.pixel_size
    pixel_size = {a: float(getattr(size, a)) for a in AXES if a in source.axes}
    shape = {a: source.shape[source.axes.index(a)] for a in AXES if a in source.axes}
    boxes = [pixel_boxes(pair, pixel_size, shape) for pair in pairs]
    block_copy.copy_boxes(
        source.zarr_array, target.zarr_array, list(source.axes), boxes, block_bytes=block_bytes
    )


def open_checked(zarr_url: str, table_name: str, reference_acquisition: int):
    """(the image, its registered table indexed by ROI name, its acquisition id).

    Every check on the input runs here, before anything is written. A table
    without reference columns (fractal-tasks-core's) gets them here, from the
    reference image's table of the same name, read once.
    """
    from fractal_roi_tasks.io.open import open_image_container
    from fractal_roi_tasks.names import REGISTERED_TABLE

    ome_zarr = open_image_container(zarr_url)
    tables = ome_zarr.list_tables()
    if table_name not in tables:
        raise NotFoundError(
            f"Registered ROI table {table_name!r} not found in {zarr_url!r} (it has tables "
            f"{tables}): run Calculate Registration and Find Registration Consensus first."
        )
    frame = ome_zarr.get_roi_table(table_name).dataframe.copy()
    well, acquisition = _well_of(zarr_url, reference_acquisition)
    if any(column not in frame for column in REFERENCE_COLUMNS):
        frame = _add_reference_rois(zarr_url, frame, table_name, well, acquisition, reference_acquisition)
    pairs = roi_pairs(frame, table_name)
    source_name = table_name.removesuffix(REGISTERED_TABLE.format(roi_table=""))
    if source_name != table_name and source_name in tables:
        names = set(ome_zarr.get_roi_table(source_name).dataframe.index.astype(str))
        if names != {p.name for p in pairs}:
            raise InvalidInputError(
                f"The ROIs of {table_name!r} ({sorted(p.name for p in pairs)}) do not match "
                f"those of {source_name!r} ({sorted(names)}) in {zarr_url!r}: re-run Find "
                "Registration Consensus."
            )
    check_pairs(ome_zarr.get_image(), pairs)
    if acquisition == reference_acquisition:
        moved = [p.name for p in pairs if not np.allclose(p.start_um, p.reference_start_um)]
        if moved:
            raise InvalidInputError(
                f"{zarr_url!r} is reference acquisition {reference_acquisition}, but the "
                f"ROIs {moved} of {table_name!r} lie elsewhere in the reference: the consensus "
                "was computed against another reference. Check reference_acquisition."
            )
    return ome_zarr, frame, acquisition


def _well_of(zarr_url: str, reference_acquisition: int):
    """(the images of `zarr_url`'s well by acquisition, the acquisition of `zarr_url`)."""
    import warnings

    import ngio

    from fractal_roi_tasks.io.wells import WellImages, well_url_of

    well_url = well_url_of(zarr_url)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Path .* contains non-alphanumeric")
        try:
            well = ngio.open_ome_zarr_well(well_url, mode="r")
        except ngio.NgioError as err:
            raise InvalidInputError(
                f"{zarr_url!r} is not an image inside an HCS plate well: registration aligns "
                "the acquisitions of one well."
            ) from err
        acquisitions = {p: well.get_image_acquisition_id(p) for p in well.paths()}
    name = Path(zarr_url).name
    if name not in acquisitions:
        raise NotFoundError(f"{name!r} is not listed in well {well_url!r}; it lists {sorted(acquisitions)}.")
    if reference_acquisition not in set(acquisitions.values()):
        raise NotFoundError(
            f"Well {well_url!r} has no image of reference acquisition {reference_acquisition}; "
            f"its images have acquisitions {acquisitions}."
        )
    by_acquisition: dict = {}
    for path in sorted(acquisitions):
        by_acquisition.setdefault(acquisitions[path], []).append(str(Path(well_url) / path))
    return WellImages(well_url, by_acquisition), acquisitions[name]


def _add_reference_rois(
    zarr_url: str, frame: pd.DataFrame, table_name: str, well, acquisition, reference_acquisition: int
) -> pd.DataFrame:
    """`frame` with reference columns from the reference image's own `table_name`."""
    from fractal_roi_tasks.io.wells import reference_of

    if acquisition == reference_acquisition:  # the reference's table is in its own frame
        reference_url, reference_frame = zarr_url, frame
    else:
        reference_url = reference_of(zarr_url, well, reference_acquisition)
        reference_frame = read_reference_table(reference_url, table_name, for_url=zarr_url)
    logger.info(
        "%s has no reference columns (a fractal-tasks-core consensus table): where its ROIs "
        "lie in the reference is read from %s's %s", table_name, reference_url, table_name,
    )
    return with_reference_rois(
        frame, reference_frame, table_name=table_name, where=zarr_url, reference_where=reference_url
    )


def wanted_marker(table_name: str, frame: pd.DataFrame) -> dict:
    """What a registered image built from this table records about its input."""
    return {"registered_roi_table": table_name, "source": fingerprint(frame)}


def build(
    zarr_url: str, ome_zarr, frame: pd.DataFrame, table_name: str, path: Path, *, register_labels: bool
) -> str:
    """Write the registered image of `zarr_url` at `path`.

    Returns:
        The fingerprint of the registered table as written there.
    """
    import ngio

    pairs = roi_pairs(frame, table_name)
    new = ome_zarr.derive_image(store=str(path), copy_labels=False, copy_tables=True)
    # The tables are small but slow to write: one thread writes them meanwhile
    # (they live in their own group, so the two never touch the same file).
    with ThreadPoolExecutor(max_workers=1) as pool:
        tables = pool.submit(_write_tables, ome_zarr, new, table_name, frame, register_labels)
        _write_arrays(Path(zarr_url), ome_zarr, new, pairs, path, register_labels=register_labels)
        tables.result()  # re-raises what the table writer raised
    written = ngio.open_ome_zarr_container(str(path)).get_roi_table(table_name).dataframe
    return fingerprint(written)


def _write_arrays(source_url: Path, ome_zarr, new, pairs, path: Path, *, register_labels: bool) -> None:
    from fractal_roi_tasks.io.derived_labels import write_labels
    from fractal_roi_tasks.io.pyramid import build_pyramid
    from fractal_roi_tasks.io.swap import crash_point

    copy_pairs(ome_zarr.get_image(), new.get_image(), pairs)
    crash_point("registering")
    build_pyramid(new.get_image())
    write_labels(
        ome_zarr, new, source_url, path,
        (lambda label, new_label: copy_pairs(label, new_label, pairs)) if register_labels else None,
        unmoved="unregistered (register_labels is unset)",
    )


def _write_tables(ome_zarr, new, table_name: str, frame: pd.DataFrame, register_labels: bool) -> None:
    """ROI tables into the reference frame; other tables stay as copied, with a warning.

    `frame` is the registered table as `open_checked` returned it (with its
    reference columns, even where the stored table had none).
    """
    pairs = roi_pairs(frame, table_name)
    others = []
    for name in ome_zarr.list_tables():
        table = ome_zarr.get_table(name)
        kind = table.table_type()
        if kind not in ("roi_table", "masking_roi_table"):
            others.append(name)
            continue
        original = table.dataframe
        if name == table_name:
            data = in_reference_frame(frame, registered=True)
        elif kind == "masking_roi_table":
            data = masking_in_reference_frame(original, pairs) if register_labels else original
        else:
            data = in_reference_frame(original, registered=False)
        if data.equals(original):
            continue  # copied with the other tables already
        table.set_table_data(data)
        new.add_table(name, table, overwrite=True)
    if others:
        logger.warning("tables %s copied as they were: their content was not transformed", others)
