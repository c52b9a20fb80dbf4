"""Stitch and Deduplicate on a time-lapse of tiles whose first time point is blank.

The tiles are the real nuclei cut at known sub-pixel positions; time point 0
holds only zeros (image and labels), time point 1 the tiles. Placing on time
point 1 must recover the true positions; placing on the blank one has nothing
to measure, and every time point is fused with whichever placement was made.
"""

import logging
import shutil

import ngio
import numpy as np
import pytest

from fractal_roi_tasks.names import STITCH_CORRECTION_COLUMNS, STITCH_FALLBACK_COLUMN
from fractal_roi_tasks.sample_data import make_tiled_plate
from fractal_roi_tasks.tasks.stitch_and_dedup import stitch_and_dedup
from tests.test_stitch_task import neighbour_errors, nuclei_grid, open_output, placed_px
from tests.test_time_axis import add_time_axis

pytestmark = [
    pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric"),
    # ngio notes the extra t / time_s / stitch_* columns of ROI tables; they are ours.
    pytest.mark.filterwarnings("ignore:Column .* is not part of the ROI table specification"),
]
DAPI = {"label": "DAPI"}


def blank_time_point(zarr_url, t):
    """Set time point ``t`` of the image and of every label image to zeros (all levels)."""
    container = ngio.open_ome_zarr_container(zarr_url)
    for array in [container.get_image()] + [container.get_label(n) for n in container.list_labels()]:
        array.set_array(np.zeros((1, *array.shape[1:]), array.dtype), t=slice(t, t + 1))
        array.consolidate(mode="auto")  # the coarser levels are blank there too


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """The same 2 x 2 grid of tiles: without t, and as t = 2 with time point 0 blank."""
    grid = nuclei_grid(grid=(2, 2), tile_shape=(160, 160))
    root = tmp_path_factory.mktemp("tiles")
    plain = make_tiled_plate(root / "plain", grid, unique_label_ids=True)
    timed = add_time_axis(make_tiled_plate(root / "timed", grid, unique_label_ids=True), frames=2)
    blank_time_point(timed, 0)
    return grid, plain, timed


def copy_of(url, tmp_path):
    """A fresh copy of the plate holding ``url`` (each test stitches its own)."""
    plate = url.split("/tiles.zarr/")[0]
    shutil.copytree(plate, tmp_path / "copy")
    return url.replace(plate, str(tmp_path / "copy"))


@pytest.fixture(scope="module")
def placed_on_1(tiles, tmp_path_factory):
    grid, plain, timed = tiles
    url = copy_of(timed, tmp_path_factory.mktemp("on1"))
    return open_output(stitch_and_dedup(zarr_url=url, channel=DAPI, placement_time_point=1))


def test_the_input_has_a_blank_and_a_tiled_time_point(tiles):
    _, plain, timed = tiles
    container = ngio.open_ome_zarr_container(timed)
    for path in container.level_paths:
        pixels = container.get_image(path=path).get_array()
        assert not pixels[0].any() and pixels[1].max() > 10000, path
    labels = container.get_label("nuclei").get_array()
    assert not labels[0].any()
    expected = ngio.open_ome_zarr_container(plain).get_label("nuclei").get_array()
    np.testing.assert_array_equal(labels[1], expected)


def test_tiles_are_placed_on_the_chosen_time_point(tiles, placed_on_1):
    grid, _, _ = tiles
    frame = placed_on_1.get_roi_table("FOV_ROI_table").dataframe
    assert frame[STITCH_FALLBACK_COLUMN].tolist() == [0.0] * 4
    errors = neighbour_errors(placed_px(placed_on_1, grid), grid)
    assert np.abs(errors).max() < 0.1, errors  # as on the same tiles without t
    assert np.abs(neighbour_errors(grid.stage_px, grid)).max() > 3  # the stage alone is off
    links = placed_on_1.get_table("stitching_links").dataframe
    assert links["accepted"].astype(bool).all(), links


def test_a_blank_placement_time_point_leaves_every_tile_at_its_stage_position(tiles, tmp_path, caplog):
    """The default (time point 0) is blank here: nothing to measure, so every tile
    falls back to the stage, with a WARNING naming them and the reason per overlap."""
    _, _, timed = tiles
    url = copy_of(timed, tmp_path)
    with caplog.at_level(logging.INFO, logger="fractal_roi_tasks"):
        stitched = open_output(stitch_and_dedup(zarr_url=url, channel=DAPI))
    assert "4 overlaps measured at level 0 on time point 0, 0 accepted, 4 rejected" in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "['FOV_1', 'FOV_2', 'FOV_3', 'FOV_4'] have no trustworthy overlap" in m
        and "placed at their stage positions" in m
        for m in warnings
    ), warnings
    frame = stitched.get_roi_table("FOV_ROI_table").dataframe
    assert frame[STITCH_FALLBACK_COLUMN].tolist() == [1.0] * 4
    assert np.allclose(frame[list(STITCH_CORRECTION_COLUMNS)].to_numpy(float), 0.0)
    reasons = stitched.get_table("stitching_links").dataframe["reason"].astype(str)
    assert reasons.str.startswith("no contrast in the overlap").all(), reasons.tolist()
    # the tiled time point is still fused, at the stage positions
    assert stitched.get_image().get_array()[1].max() > 10000
    assert stitched.get_label("nuclei").get_array()[1].any()


def test_a_blank_time_point_is_fused_with_another_time_points_placement(tiles, placed_on_1):
    _, plain, _ = tiles
    expected = open_output(stitch_and_dedup(zarr_url=plain, channel=DAPI))
    image = placed_on_1.get_image()
    assert image.axes[0] == "t" and image.shape[0] == 2
    assert tuple(image.shape[1:]) == tuple(expected.get_image().shape)
    for path in placed_on_1.level_paths:
        assert not placed_on_1.get_image(path=path).get_array()[0].any(), path
    # the tiled time point is exactly the stitch of the same tiles without t
    np.testing.assert_array_equal(image.get_array()[1], expected.get_image().get_array())
    labels = placed_on_1.get_label("nuclei").get_array()
    assert not labels[0].any()
    np.testing.assert_array_equal(labels[1], expected.get_label("nuclei").get_array())
    # masking rows only for the time point that has objects, named t{t}-{id}
    ids = np.unique(labels[1])[1:]
    assert len(ids) > 20 and np.array_equal(ids, np.arange(1, len(ids) + 1))
    masking = placed_on_1.get_table("nuclei_ROI_table").dataframe
    assert sorted(masking.index) == sorted(f"t1-{i}" for i in ids)
    assert set(masking["t"]) == {1}
