"""Write a stitched image: fused channels, de-duplicated labels, new tables.

Everything is written block by block (one output chunk of one channel and
plane at a time), so memory stays at a few chunks whatever the mosaic size.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io.stitch_placement import StitchPlan
from fractal_roi_tasks.io.tiles import TilePixels

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


def _index(axes: tuple[str, ...], block: tuple[slice, slice], *, c: int | None, z: int | None):
    """Index of one block (all channels/planes unless one is given) in an array with ``axes``."""
    where: dict = {"y": block[0], "x": block[1]}
    if c is not None:
        where["c"] = c
    if z is not None:
        where["z"] = z
    return tuple(where.get(axis, slice(None) if axis in ("c", "z") else 0) for axis in axes)


def fuse_image(ome_zarr, new, plan: StitchPlan, mosaic, boxes) -> None:
    """Fuse every channel and plane of ``ome_zarr``'s image into ``new``'s (level 0), then its pyramid."""
    from fractal_roi_tasks.stitching.fusion import block_grid, block_parts, fuse_block

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
        for c in channels:
            for z in planes:
                reads = [pixels.read(p.tile, p.read_box, c=c, z=z) for p in parts]
                array[_index(axes, block, c=c, z=z)] = fuse_block(
                    mosaic, block, parts, reads, blending=plan.blending, dtype=array.dtype
                )
        progress.step()
    target.consolidate(mode="dask")


def fuse_labels(ome_zarr, new, plan: StitchPlan, mosaic, boxes, label_name: str, path: str) -> int:
    """Fuse one label image, merging the objects tiles share; returns the number of objects."""
    from fractal_roi_tasks.io.label_metadata import write_label_properties
    from fractal_roi_tasks.stitching import labels as dedup
    from fractal_roi_tasks.stitching.fusion import block_grid, block_parts

    # Same pixels as the image (check_label_pixels): same tile boxes, and the
    # image's mosaic, each label tile at its position rounded (whole_pixels).
    label = ome_zarr.get_label(label_name)
    shapes = mosaic.tile_shapes
    pixels = TilePixels(label, boxes)
    planes = range(label.dimensions.get("z", 1)) if "z" in label.axes else [None]

    matches = {}
    for overlap in dedup.tile_overlaps(mosaic):
        first = pixels.read(overlap.first, overlap.first_box)
        second = pixels.read(overlap.second, overlap.second_box)
        matches[(overlap.first, overlap.second)] = dedup.pair_matches(
            mosaic, overlap, first, second, min_overlap=plan.min_overlap
        )
    owned = []
    for tile, (h, w) in enumerate(shapes):  # plane by plane: a tile's whole stack can be large
        seen = [
            dedup.owned_ids(mosaic, tile, pixels.read(tile, (slice(0, h), slice(0, w)), z=z))
            for z in planes
        ]
        owned.append(np.unique(np.concatenate(seen)))
    merge = dedup.merge_labels(owned, matches)

    target = new.derive_label(label_name, ref_image=new.get_image(), dtype="uint32")
    array, axes = target.zarr_array, tuple(target.axes)
    boxes_out = dedup.BoxAccumulator()
    blocks = block_grid(mosaic.shape, (BLOCK_PX, BLOCK_PX))
    progress = _Progress(f"fusing label {label_name!r}", len(blocks))
    for block in blocks:
        parts = block_parts(mosaic, block, whole_pixels=True)
        for z in planes:
            reads = [pixels.read(p.tile, p.read_box, z=z) for p in parts]
            fused = dedup.fuse_label_block(mosaic, block, parts, reads, merge)
            array[_index(axes, block, c=None, z=z)] = fused
            start = (block[0].start, block[1].start)
            if z is None:
                boxes_out.add(fused, start)
            else:
                boxes_out.add(fused[np.newaxis], (z, *start))
        progress.step()
    target.consolidate(mode="dask")
    ids = _write_masking_table(new, label_name, boxes_out, target)
    # image-label: ngio wrote `source`; a colour per object too, as Segment to ROIs does
    write_label_properties(path, label_name, [{"label-value": int(value)} for value in ids])
    return merge.n_objects


def check_label_pixels(ome_zarr, label_name: str) -> None:
    """Labels are fused at the image's full-resolution positions: same pixel size needed."""
    image, label = ome_zarr.get_image(), ome_zarr.get_label(label_name)
    image_px = (image.pixel_size.y, image.pixel_size.x)
    label_px = (label.pixel_size.y, label.pixel_size.x)
    if not np.allclose(image_px, label_px):
        raise InvalidInputError(
            f"Label image {label_name!r} has pixels of {label_px} um (y, x), the image "
            f"{image_px} um: stitching needs labels at the image's full resolution."
        )


def _write_masking_table(new, label_name: str, boxes, label) -> np.ndarray:
    import ngio

    from fractal_roi_tasks.names import MASKING_ROI_TABLE

    ids, starts, stops = boxes.result()
    axes = ("z", "y", "x")[-starts.shape[1] :] if len(ids) else ()
    spacing = [float(getattr(label.pixel_size, a)) for a in axes]
    rois = []
    for value, start, stop in zip(ids, starts, stops):
        slices = {a: (s * d, (e - s) * d) for a, s, e, d in zip(axes, start, stop, spacing)}
        rois.append(ngio.Roi.from_values(slices, name=str(int(value)), label=int(value)))
    table = ngio.MaskingRoiTable(rois, reference_label=label_name)
    new.add_table(MASKING_ROI_TABLE.format(label_name=label_name), table, overwrite=True)
    return ids


def write_tables(new, plan: StitchPlan, roi_table: str, tile_positions_px: np.ndarray) -> None:
    """The new FOV table (each tile's place, correction, quality), well table and link table."""
    import ngio

    from fractal_roi_tasks.names import (
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
            float(frame.iloc[index]["len_y_micrometer"]),
            float(frame.iloc[index]["len_x_micrometer"]),
        )
        y_um, x_um = whole[index] * spacing
        extra = {
            column: float(frame.iloc[index][column])
            for column in ("x_micrometer_original", "y_micrometer_original")
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
        logger.info("%s: label %r fused, %d objects", zarr_url, label_name, objects)
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
