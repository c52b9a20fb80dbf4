"""Kept so that ``fractal_roi_tasks.sample_tiles`` imports keep working.

The tiles now live in `fractal_roi_tasks.sample_data`: cutting them in
`fractal_roi_tasks.sample_data.tiles`, writing them as OME-Zarr in
`fractal_roi_tasks.sample_data.tile_writing`. Import from
``fractal_roi_tasks.sample_data`` in new code.
"""

from fractal_roi_tasks.sample_data.tile_writing import (
    TILE_CHANNELS,
    converter_array,
    make_tiled_plate,
    write_tiles,
)
from fractal_roi_tasks.sample_data.tiles import TileGrid, tile_grid

__all__ = [
    "TILE_CHANNELS",
    "TileGrid",
    "converter_array",
    "make_tiled_plate",
    "tile_grid",
    "write_tiles",
]
