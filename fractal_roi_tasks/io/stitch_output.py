"""Write a stitched image: fused channels, de-duplicated labels, new tables.

Everything is written block by block (one output chunk of one channel,
plane and time point at a time), so memory stays at a few chunks whatever the
mosaic size or the number of time points. A time series is fused with one
placement (the plan's) for every time point; its labels are de-duplicated
within each time point, so ids are unique per time point, not across t.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io.stitch_placement import StitchPlan
from fractal_roi_tasks.io.tiles import TilePixels, time_points

logger = logging.getLogger(__name__)

BLOCK_PX = 1024
"""Output chunk (and block) height and width in pixels."""


class _Progress:
    """INFO lines at most every 10 seconds on long work."""

    def __init__(self, what: str, total: int):
        self.what, self.total, self.done, self.last = what, total, 0, time.monotonic()

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last > 10 or self.done == self.total:
            logger.info("%s: %d of %d blocks", self.what, self.done, self.total)
            self.last = now


def _index(
    axes: tuple[str, ...], block: tuple[slice, slice], *, c: int | None, z: int | None, t: int = 0
):
    """Index of one block of time point ``t`` (all channels/planes unless one is given)."""
    where: dict = {"y": block[0], "x": block[1], "t": t}
    if c is not None:
        where["c"] = c
    if z is not None:
        where["z"] = z
    return tuple(where.get(axis, slice(None) if axis in ("c", "z") else 0) for axis in axes)


def fuse_image(ome_zarr, new, plan: StitchPlan, mosaic, boxes) -> None:
    """Fuse every channel, plane and time point of ``ome_zarr``'s image into ``new``'s (level 0),
    then its pyramid; every time point with the one placement of ``mosaic``."""
    from fractal_roi_tasks.stitching.fusion import block_grid, block_parts, block_reads, fuse_block

    source = ome_zarr.get_image()
    pixels = TilePixels(source, boxes)
    target = new.get_image()
    array, axes = target.zarr_array, tuple(target.axes)
    channels = range(source.dimensions.get("c", 1)) if "c" in axes else [None]
    planes = range(source.dimensions.get("z", 1)) if "z" in axes else [None]
    blocks = block_grid(mosaic.shape, (BLOCK_PX, BLOCK_PX))
    progress = _Progress("fusing", len(blocks))
    for block in blocks:
        parts = block_parts(mosaic, block)
        for t in range(pixels.n_times):
            for c in channels:
                for z in planes:
                    reads = [pixels.read(p.tile, p.read_box, c=c, z=z, t=t) for p in parts]
                    array[_index(axes, block, c=c, z=z, t=t)] = fuse_block(
                        block_reads(mosaic, block, parts, reads),
                        blending=plan.blending,
                        dtype=array.dtype,
                    )
        progress.step()
    target.consolidate(mode="dask")


def fuse_labels(ome_zarr, new, plan: StitchPlan, mosaic, boxes, label_name: str, path: str) -> list[int]:
    """Fuse one label image, merging the objects tiles share.

    A time series is de-duplicated time point by time point (one time point
    read at a time), so ids run 1..n within each time point.

    Returns:
        The number of objects of every time point (one entry without t).
    """
    from fractal_roi_tasks.io.label_metadata import write_label_properties
    from fractal_roi_tasks.stitching import labels as dedup
    from fractal_roi_tasks.stitching.fusion import block_grid, block_parts, block_reads

    # Same pixels as the image (check_label_pixels): same tile boxes, and the
    # image's mosaic, each label tile at its position rounded (whole_pixels).
    label = ome_zarr.get_label(label_name)
    pixels = TilePixels(label, boxes)
    planes = range(label.dimensions.get("z", 1)) if "z" in label.axes else [None]
    target = new.derive_label(label_name, ref_image=new.get_image(), dtype="uint32")
    array, axes = target.zarr_array, tuple(target.axes)
    blocks = block_grid(mosaic.shape, (BLOCK_PX, BLOCK_PX))
    progress = _Progress(f"fusing label {label_name!r}", len(blocks) * pixels.n_times)
    found, objects = [], []
    for t in range(pixels.n_times):
        merge = _merge_tiles(mosaic, pixels, planes, plan.min_overlap, t)
        boxes_out = dedup.BoxAccumulator()
        for block in blocks:
            parts = block_parts(mosaic, block, whole_pixels=True)
            for z in planes:
                reads = [pixels.read(p.tile, p.read_box, z=z, t=t) for p in parts]
                fused = dedup.fuse_label_block(block_reads(mosaic, block, parts, reads), merge)
                array[_index(axes, block, c=None, z=z, t=t)] = fused
                start = (block[0].start, block[1].start)
                if z is None:
                    boxes_out.add(fused, start)
                else:
                    boxes_out.add(fused[np.newaxis], (z, *start))
            progress.step()
        found.append(boxes_out.result())
        objects.append(merge.n_objects)
    target.consolidate(mode="dask")
    ids = _write_masking_table(new, label_name, found, target)
    # image-label: ngio wrote `source`; a colour per object too, as Segment to ROIs does
    write_label_properties(path, label_name, [{"label-value": int(value)} for value in ids])
    return objects


def _merge_tiles(mosaic, pixels: TilePixels, planes, min_overlap: float, t: int):
    """The `LabelMerge` of time point ``t``: which ids of which tiles are one object."""
    from fractal_roi_tasks.stitching import labels as dedup

    matches = {}
    for overlap in dedup.tile_overlaps(mosaic):
        first = pixels.read(overlap.first, overlap.first_box, t=t)
        second = pixels.read(overlap.second, overlap.second_box, t=t)
        matches[(overlap.first, overlap.second)] = dedup.pair_matches(
            mosaic, overlap, first, second, min_overlap=min_overlap
        )
    owned = []
    for tile, (h, w) in enumerate(mosaic.tile_shapes):  # plane by plane: a tile's stack can be large
        seen = [
            dedup.owned_ids(mosaic, tile, pixels.read(tile, (slice(0, h), slice(0, w)), z=z, t=t))
            for z in planes
        ]
        owned.append(np.unique(np.concatenate(seen)))
    return dedup.merge_labels(owned, matches)


def check_label_pixels(ome_zarr, label_name: str) -> None:
    """Labels are fused at the image's full-resolution positions: same pixel size needed,
    and, for a time series, the image's time points."""
    image, label = ome_zarr.get_image(), ome_zarr.get_label(label_name)
    image_px = (image.pixel_size.y, image.pixel_size.x)
    label_px = (label.pixel_size.y, label.pixel_size.x)
    if not np.allclose(image_px, label_px):
        raise InvalidInputError(
            f"Label image {label_name!r} has pixels of {label_px} um (y, x), the image "
            f"{image_px} um: stitching needs labels at the image's full resolution."
        )
    image_t, label_t = time_points(image), time_points(label)
    if image_t != label_t:
        raise InvalidInputError(
            f"Label image {label_name!r} has {label_t} time point(s), the image {image_t}: "
            "stitching fuses each time point's labels with its pixels; leave this label out "
            "of label_names or give it the image's time points."
        )


def _write_masking_table(new, label_name: str, found: list, label) -> np.ndarray:
    """One ROI per object (per object and time point for a time series); the ids written.

    Over time points, rows follow Segment to ROIs: named ``"t{t}-{id}"`` (ids
    repeat across t), a ``t`` slice of one time point, columns ``t`` and the
    time in the image's unit.
    """
    import ngio

    from fractal_roi_tasks.names import MASKING_ROI_TABLE, ROI_NAME_INDEX, TIME_INDEX_COLUMN
    from fractal_roi_tasks.rois.time_points import time_column, time_point_name

    timed = len(found) > 1
    step, unit = (float(label.pixel_size.t), label.time_unit) if timed else (1.0, None)
    rois = []
    for t, (ids, starts, stops) in enumerate(found):
        axes = ("z", "y", "x")[-starts.shape[1] :] if len(ids) else ()
        spacing = [float(getattr(label.pixel_size, a)) for a in axes]
        for value, start, stop in zip(ids, starts, stops):
            slices = {a: (s * d, (e - s) * d) for a, s, e, d in zip(axes, start, stop, spacing)}
            if not timed:
                rois.append(ngio.Roi.from_values(slices, name=str(int(value)), label=int(value)))
                continue
            slices["t"] = (t * step, step)
            extra = {TIME_INDEX_COLUMN: t, time_column(unit): t * step}
            name = time_point_name(t, str(int(value)))
            rois.append(ngio.Roi.from_values(slices, name=name, label=int(value), **extra))
    if timed:
        meta = ngio.MaskingRoiTable(reference_label=label_name).meta.model_copy(
            update={"index_key": ROI_NAME_INDEX, "index_type": "str", "instance_key": ROI_NAME_INDEX}
        )
        table = ngio.MaskingRoiTable(rois, meta=meta)
    else:
        table = ngio.MaskingRoiTable(rois, reference_label=label_name)
    new.add_table(MASKING_ROI_TABLE.format(label_name=label_name), table, overwrite=True)
    every = [ids for ids, _, _ in found]
    return np.unique(np.concatenate(every)) if every else np.zeros(0, np.uint64)


def write_tables(new, plan: StitchPlan, roi_table: str, tile_positions_px: np.ndarray) -> None:
    """The new FOV table (each tile's place, correction, quality), well table and link table."""
    import ngio

    from fractal_roi_tasks.names import (
        ROI_LENGTH_COLUMN,
        STAGE_COLUMN,
        STITCH_CORRECTION_COLUMNS,
        STITCH_FALLBACK_COLUMN,
        STITCH_LINKS_TABLE,
        STITCH_QUALITY_COLUMN,
        WELL_ROI_TABLE,
    )

    image = new.get_image()
    spacing = np.array([image.pixel_size.y, image.pixel_size.x])
    dims = image.dimensions
    depth = dims.get("z", 1) * float(image.pixel_size.z)
    whole = np.round(tile_positions_px)
    frame = plan.tiles.frame
    rois = []
    for index, name in enumerate(plan.tiles.names):
        height, width = (
            float(frame.iloc[index][ROI_LENGTH_COLUMN.format(axis=a)]) for a in "yx"
        )
        y_um, x_um = whole[index] * spacing
        extra = {
            column: float(frame.iloc[index][column])
            for column in (STAGE_COLUMN.format(axis=a) for a in "xy")
            if column in frame.columns
        }
        correction = plan.correction_px[index] * spacing
        extra.update(
            {
                STITCH_CORRECTION_COLUMNS[0]: float(correction[0]),
                STITCH_CORRECTION_COLUMNS[1]: float(correction[1]),
                STITCH_QUALITY_COLUMN: float(plan.tile_quality[index]),
                STITCH_FALLBACK_COLUMN: float(plan.fell_back[index]),
            }
        )
        rois.append(
            ngio.Roi.from_values(
                name=name,
                slices={"y": (float(y_um), height), "x": (float(x_um), width), "z": (0.0, depth)},
                **extra,
            )
        )
    new.add_table(roi_table, ngio.RoiTable(rois=rois), overwrite=True)
    mosaic_y, mosaic_x = dims.get("y") * spacing[0], dims.get("x") * spacing[1]
    well = ngio.Roi.from_values(
        name="well_1", slices={"y": (0.0, mosaic_y), "x": (0.0, mosaic_x), "z": (0.0, depth)}
    )
    new.add_table(WELL_ROI_TABLE, ngio.RoiTable(rois=[well]), overwrite=True)
    new.add_table(STITCH_LINKS_TABLE, ngio.GenericTable(plan.links), overwrite=True)


def build(zarr_url: str, ome_zarr, plan: StitchPlan, roi_table: str, path: Path) -> None:
    """Write the stitched image of ``zarr_url`` at ``path``."""
    from fractal_roi_tasks.io.swap import crash_point
    from fractal_roi_tasks.stitching.fusion import mosaic_geometry

    source = ome_zarr.get_image()
    boxes = plan.tiles.boxes(source)
    shapes = np.array([[b.stop - b.start for b in box] for box in boxes])
    mosaic = mosaic_geometry(plan.positions_px, shapes)
    shape = []
    for axis in source.axes:
        shape.append({"y": mosaic.shape[0], "x": mosaic.shape[1]}.get(axis, source.dimensions.get(axis, 1)))
    chunks = tuple(
        min(BLOCK_PX, n) if axis in ("y", "x") else 1 for axis, n in zip(source.axes, shape)
    )
    new = ome_zarr.derive_image(
        store=str(path), shape=shape, chunks=chunks, copy_labels=False, copy_tables=False
    )
    logger.info("%s: fusing %d tiles into %s pixels", zarr_url, len(shapes), "x".join(map(str, shape)))
    fuse_image(ome_zarr, new, plan, mosaic, boxes)
    crash_point("fusing")
    for label_name in plan.label_names:
        objects = fuse_labels(ome_zarr, new, plan, mosaic, boxes, label_name, str(path))
        if len(objects) == 1:
            logger.info("%s: label %r fused, %d objects", zarr_url, label_name, objects[0])
        else:
            logger.info(
                "%s: label %r fused over %d time points, %d to %d objects each",
                zarr_url, label_name, len(objects), min(objects), max(objects),
            )
    write_tables(new, plan, roi_table, mosaic.positions_px)
    _say_what_is_left_behind(zarr_url, ome_zarr, new, plan)


def _say_what_is_left_behind(zarr_url: str, ome_zarr, new, plan: StitchPlan) -> None:
    """WARNING about the labels and tables of the input that the stitched image lacks."""
    labels = [name for name in ome_zarr.list_labels() if name not in plan.label_names]
    tables = [name for name in ome_zarr.list_tables() if name not in new.list_tables()]
    if labels:
        logger.warning("%s: label images %s not stitched (not in label_names)", zarr_url, labels)
    if tables:
        logger.warning(
            "%s: tables %s describe the tiles, not the fused image: not carried over", zarr_url, tables
        )


def written_table(path: Path, roi_table: str):
    """The FOV table as written at ``path`` (to fingerprint the output)."""
    import ngio

    return ngio.open_ome_zarr_container(str(path)).get_roi_table(roi_table).dataframe
