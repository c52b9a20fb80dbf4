"""The tiled test data: tiles really are the mosaic at the positions it reports."""

import ngio
import numpy as np
import pytest
from scipy import ndimage

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data import (
    converter_array,
    load_cardiomyocyte_nuclei,
    load_source,
    make_tiled_plate,
    tile_grid,
)


def test_tiles_are_the_mosaic_at_their_true_positions():
    grid = tile_grid(load_source("retina"), grid=(2, 3), tile_shape=(64, 80), jitter_px=4.0, seed=3)
    assert grid.tiles.shape == (6, 64, 80)
    error = grid.positions_px - grid.stage_px
    assert np.all(np.abs(error) <= 12) and np.abs(error).max() > 0.5
    assert not np.allclose(error, np.round(error))  # genuinely sub-pixel
    for tile, position in zip(grid.tiles, grid.positions_px):
        # sample the mosaic independently, with map_coordinates
        yy, xx = np.mgrid[0:64, 0:80].astype(float)
        expected = ndimage.map_coordinates(
            grid.mosaic, [yy + position[0], xx + position[1]], order=3, mode="mirror"
        )
        assert np.abs(tile - expected)[4:-4, 4:-4].max() < 1e-3


def test_stage_grid_has_the_overlap_asked_for():
    grid = tile_grid(load_source("coins"), grid=(2, 2), tile_shape=(100, 100), overlap=0.2)
    steps = np.diff(grid.stage_px.reshape(2, 2, 2), axis=1)[..., 1]
    assert np.all(steps == 80)


def test_tile_labels_number_each_piece_in_each_tile():
    raw, nuclei = load_cardiomyocyte_nuclei()
    grid = tile_grid(raw / 65535.0, grid=(2, 2), tile_shape=(300, 300), object_labels=nuclei)
    for tile, position in zip(grid.labels, grid.label_positions_px):
        truth = grid.object_labels[position[0] : position[0] + 300, position[1] : position[1] + 300]
        assert np.array_equal(tile > 0, truth > 0)
        assert tile.max() == len(np.unique(tile)) - 1  # numbered 1..n in the tile
        for value in np.unique(tile)[1:]:  # every piece lies inside one true object
            assert len(np.unique(truth[tile == value])) == 1


def test_converter_layout_plate(tmp_path):
    grid = tile_grid(load_source("hubble_deep_field"), grid=(2, 2), tile_shape=(64, 64), z_planes=3)
    url = make_tiled_plate(tmp_path, grid, pixel_size_um=0.5)
    container = ngio.open_ome_zarr_container(url)
    image, _ = converter_array(grid)
    assert container.get_image().shape == image.shape == (2, 3, 128, 128)
    assert np.array_equal(container.get_image().get_array(), image)
    table = container.get_roi_table("FOV_ROI_table").dataframe
    assert list(table.index) == ["FOV_1", "FOV_2", "FOV_3", "FOV_4"]
    assert np.allclose(table["x_micrometer"], [0, 32, 0, 32])
    assert np.allclose(table["y_micrometer_original"], grid.stage_px[:, 0] * 0.5)
    well = ngio.open_ome_zarr_well(str(tmp_path / "tiles.zarr" / "B" / "03"))
    assert well.paths() == ["0"]


def test_bad_options_are_refused():
    with pytest.raises(InvalidInputError, match="overlap"):
        tile_grid(load_source("coins"), overlap=0.95)
    with pytest.raises(InvalidInputError, match="object_labels has shape"):
        tile_grid(load_source("coins"), object_labels=np.zeros((3, 3), int))
