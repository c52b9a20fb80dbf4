"""Tiles as one OME-Zarr image or plate, the way a Fractal converter writes a tiled scan.

The tiles of a `TileGrid` lie side by side, one chunk each; the stage
positions live only in the ``FOV_ROI_table`` (``*_micrometer_original``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fractal_roi_tasks.names import FOV_ROI_TABLE, WELL_ROI_TABLE
from fractal_roi_tasks.sample_data.tiles import TileGrid
from fractal_roi_tasks.sample_data.writing import write_converter_image

TILE_CHANNELS: tuple[tuple[str, str], ...] = (("DAPI", "A01_C01"), ("GFP", "A02_C02"))
"""(label, wavelength_id) of the channels `write_tiles` writes: the tiles, then their negative."""


def converter_array(tile_grid: TileGrid) -> tuple[np.ndarray, np.ndarray | None]:
    """The tiles side by side in one array, as a converter writes them.

    Tile ``(r, c)`` of the grid sits at ``(r * height, c * width)``; nothing
    overlaps and the stage position lives only in the ROI table.

    Returns:
        ``(image, labels)``: image (C, (Z,) Y, X) uint16 with the two channels
        of `TILE_CHANNELS` (the tiles scaled to 1,000..51,000 grey values, and
        their negative); labels ((Z,) Y, X) uint32 or None.
    """
    low, high = float(tile_grid.mosaic.min()), float(tile_grid.mosaic.max())
    scaled = (tile_grid.tiles - low) / ((high - low) or 1.0)
    signal = np.clip(1000 + 50000 * scaled, 0, 65535)
    channels = [signal, np.clip(52000 - signal, 0, 65535)]
    image = np.stack([_arrange(c, tile_grid.grid) for c in channels]).round().astype(np.uint16)
    labels = None if tile_grid.labels is None else _arrange(tile_grid.labels, tile_grid.grid)
    return image, labels


def _arrange(tiles: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(N, (Z,) H, W) row-major tiles -> ((Z,) rows * H, columns * W)."""
    rows, columns = grid
    rows_of_tiles = [np.concatenate(list(tiles[r * columns : (r + 1) * columns]), axis=-1) for r in range(rows)]
    return np.concatenate(rows_of_tiles, axis=-2)


def _tile_rois(tile_grid: TileGrid, pixel_size_um: float, z_spacing_um: float, stage_origin_um):
    import ngio

    rows, columns = tile_grid.grid
    spatial = tile_grid.tile_shape
    height, width = spatial[-2:]
    depth = spatial[0] * z_spacing_um if len(spatial) == 3 else 1.0
    rois = []
    for index in range(rows * columns):
        r, c = divmod(index, columns)
        stage_y, stage_x = tile_grid.stage_px[index] * pixel_size_um
        rois.append(
            ngio.Roi.from_values(
                name=f"FOV_{index + 1}",
                slices={
                    "y": (r * height * pixel_size_um, height * pixel_size_um),
                    "x": (c * width * pixel_size_um, width * pixel_size_um),
                    "z": (0.0, depth),
                },
                y_micrometer_original=stage_origin_um[0] + float(stage_y),
                x_micrometer_original=stage_origin_um[1] + float(stage_x),
            )
        )
    well = ngio.Roi.from_values(
        name="well_1",
        slices={
            "y": (0.0, rows * height * pixel_size_um),
            "x": (0.0, columns * width * pixel_size_um),
            "z": (0.0, depth),
        },
    )
    return ngio.RoiTable(rois=rois), ngio.RoiTable(rois=[well])


def write_tiles(
    zarr_url: str | os.PathLike[str],
    tile_grid: TileGrid,
    *,
    pixel_size_um: float = 0.325,
    z_spacing_um: float = 1.0,
    ngff_version: str = "0.4",
    levels: int = 2,
    label_name: str = "nuclei",
    unique_label_ids: bool = False,
    stage_origin_um: tuple[float, float] = (0.0, 0.0),
    overwrite: bool = False,
) -> str:
    """Write ``tile_grid`` as one OME-Zarr image in a Fractal converter's layout.

    The tiles lie side by side (`converter_array`), one chunk per tile and
    channel (and plane); ``FOV_ROI_table`` has one ROI per tile (``FOV_1``,
    ``FOV_2``, ... row-major) at its place in the array, with the stage
    position (``stage_px``, plus ``stage_origin_um``) in
    ``x_micrometer_original``/``y_micrometer_original``; ``well_ROI_table``
    covers the image. With labels, ``label_name`` holds them, numbered tile
    by tile (``unique_label_ids``: offset so that ids are unique in the image,
    as a per-FOV segmentation task writes them).

    Returns:
        The absolute path of the image.
    """
    image, labels = converter_array(tile_grid)
    if labels is not None and unique_label_ids:
        labels = _offset_per_tile(tile_grid)
    zarr_url = str(Path(zarr_url).expanduser().absolute())
    fov_table, well_table = _tile_rois(tile_grid, pixel_size_um, z_spacing_um, stage_origin_um)
    write_converter_image(
        zarr_url,
        image,
        channels=TILE_CHANNELS,
        pixel_size_um=pixel_size_um,
        z_spacing_um=z_spacing_um,
        chunk_yx=tile_grid.tile_shape[-2:],
        levels=levels,
        ngff_version=ngff_version,
        overwrite=overwrite,
        tables={FOV_ROI_TABLE: fov_table, WELL_ROI_TABLE: well_table},
        labels=None if labels is None else {label_name: labels},
    )
    return zarr_url


def _offset_per_tile(tile_grid: TileGrid) -> np.ndarray:
    offset, shifted = 0, []
    for tile in tile_grid.labels:
        shifted.append(np.where(tile > 0, tile + offset, 0).astype(np.uint32))
        offset += int(tile.max())
    return _arrange(np.stack(shifted), tile_grid.grid)


def make_tiled_plate(
    root: str | os.PathLike[str],
    tile_grid: TileGrid,
    *,
    plate_name: str = "tiles.zarr",
    well: tuple[str, str] = ("B", "03"),
    acquisition: int = 0,
    ngff_version: str = "0.4",
    overwrite: bool = False,
    **write_options,
) -> str:
    """Write ``tile_grid`` as image ``0`` of one well of a new HCS plate.

    Args:
        root: directory the plate goes into.
        tile_grid: the tiles (see `tile_grid`).
        plate_name: name of the plate directory.
        well: (row, column) of the well.
        acquisition: acquisition id of the image in the well.
        ngff_version: "0.4" or "0.5".
        overwrite: replace an existing plate.
        **write_options: passed to `write_tiles`.

    Returns:
        The image's zarr_url, ``{root}/{plate_name}/{row}/{column}/0``.
    """
    import ngio

    plate_url = str(Path(root).expanduser().absolute() / plate_name)
    row, column = well
    ngio.create_empty_plate(
        store=plate_url,
        name=plate_name.removesuffix(".zarr"),
        images=[ngio.ImageInWellPath(row=row, column=column, path="0", acquisition_id=acquisition)],
        ngff_version=ngff_version,
        overwrite=overwrite,
    )
    return write_tiles(
        f"{plate_url}/{row}/{column}/0", tile_grid, ngff_version=ngff_version, **write_options
    )
