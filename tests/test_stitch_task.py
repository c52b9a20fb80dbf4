"""Stitch and Deduplicate on tiles cut from real images at known sub-pixel positions."""

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ngio
import numpy as np
import pytest
import zarr
from scipy import ndimage

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io import swap
from fractal_roi_tasks.names import STITCH_CORRECTION_COLUMNS, STITCH_FALLBACK_COLUMN
from fractal_roi_tasks.registration.shift import estimate_shift
from fractal_roi_tasks.sample_data import (
    load_cardiomyocyte_nuclei,
    load_source,
    make_tiled_plate,
    tile_grid,
    write_tiles,
)
from fractal_roi_tasks.tasks.stitch_and_dedup import stitch_and_dedup

pytestmark = [
    pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric"),
]
PIXEL_UM = 0.325


def nuclei_grid(**options):
    raw, nuclei = load_cardiomyocyte_nuclei()
    settings = {"grid": (3, 3), "tile_shape": (200, 200), "jitter_px": 4.0, "seed": 5, **options}
    return tile_grid(raw / 65535.0, object_labels=nuclei, **settings)


def placed_px(container, grid):
    """Solved tile positions in the stage frame, from the correction columns."""
    frame = container.get_roi_table("FOV_ROI_table").dataframe
    return grid.stage_px + frame[list(STITCH_CORRECTION_COLUMNS)].to_numpy(float) / PIXEL_UM


def neighbour_errors(placed, grid):
    rows, columns = grid.grid
    pairs = [(i, i + 1) for i in range(rows * columns) if (i + 1) % columns]
    pairs += [(i, i + columns) for i in range(rows * columns - columns)]
    truth = grid.positions_px
    return np.array([(placed[j] - placed[i]) - (truth[j] - truth[i]) for i, j in pairs])


def fused_against_truth(fused, grid):
    """|fused - truth| inside the mosaic, in grey values, after one global alignment.

    Returns its median and 99th percentile: a misplaced tile or a seam shows
    in both; what is left is cubic interpolation at the sharp (8-bit JPEG) edges.
    """
    low, high = float(grid.mosaic.min()), float(grid.mosaic.max())
    truth = 1000 + 50000 * (grid.mosaic - low) / (high - low)
    size = min(fused.shape[-1], truth.shape[-1]) - 40
    # one translation relates the fused frame to the truth frame
    found = estimate_shift(truth[20:size, 20:size], fused[20:size, 20:size].astype(float))
    aligned = ndimage.shift(fused.astype(float), found.shift, order=3)
    inner = (slice(30, size - 10), slice(30, size - 10))
    return np.percentile(np.abs(aligned[inner] - truth[inner]), [50, 99]), found


def open_output(result):
    return ngio.open_ome_zarr_container(result["image_list_updates"][0]["zarr_url"])


@pytest.fixture(scope="module")
def stitched_2d(tmp_path_factory):
    grid = nuclei_grid()
    url = make_tiled_plate(tmp_path_factory.mktemp("plate"), grid, unique_label_ids=True)
    result = stitch_and_dedup(zarr_url=url, channel={"label": "DAPI"})
    return grid, url, result


def test_tiles_placed_sub_pixel_and_fused_like_the_source(stitched_2d):
    grid, url, result = stitched_2d
    update = result["image_list_updates"][0]
    assert update == {"zarr_url": url + "_stitched", "origin": url, "types": {"stitched": True}}
    container = open_output(result)
    errors = neighbour_errors(placed_px(container, grid), grid)
    assert np.abs(errors).max() < 0.1, errors  # the stage alone is off by several px
    assert np.abs(neighbour_errors(grid.stage_px, grid)).max() > 3
    image = container.get_image()
    assert image.shape[0] == 2 and 530 < image.shape[1] < 560
    assert container.levels == ngio.open_ome_zarr_container(url).levels
    (median, high), found = fused_against_truth(image.get_array(c=0), grid)
    assert found.quality > 0.99
    assert median < 0.002 * 50000 and high < 0.02 * 50000, (median, high)
    well = ngio.open_ome_zarr_well(str(os.path.dirname(url)))
    assert sorted(well.paths()) == ["0", "0_stitched"]


def test_every_object_cut_by_a_border_gets_one_id(stitched_2d):
    grid, url, result = stitched_2d
    container = open_output(result)
    fused = container.get_label("nuclei").get_array()
    ids = np.unique(fused)[1:]
    assert ids.dtype == np.uint32 and np.array_equal(ids, np.arange(1, len(ids) + 1))
    masking = container.get_table("nuclei_ROI_table").dataframe
    assert len(masking) == len(ids)
    label_meta = zarr.open_group(result["image_list_updates"][0]["zarr_url"] + "/labels/nuclei").attrs
    colors = label_meta["image-label"]["colors"]
    assert [c["label-value"] for c in colors] == ids.tolist()
    # the true objects in the fused frame: tile i's labels went to its ROI there
    frame = container.get_roi_table("FOV_ROI_table").dataframe
    in_fused = np.round(frame[["y_micrometer", "x_micrometer"]].to_numpy() / PIXEL_UM).astype(int)
    offsets, counts = np.unique(grid.label_positions_px - in_fused, axis=0, return_counts=True)
    offset = offsets[counts.argmax()]
    truth = grid.object_labels[offset[0] : offset[0] + fused.shape[0], offset[1] : offset[1] + fused.shape[1]]
    assert truth.shape == fused.shape
    both = (fused > 0) & (truth > 0)
    assert both.sum() > 0.9 * (fused > 0).sum()
    pairs, overlap = np.unique(np.stack([fused[both], truth[both]]), axis=1, return_counts=True)
    size = ndimage.sum_labels(fused > 0, fused, pairs[0])
    dominant = overlap > 0.5 * size  # where most of a fused object lies
    assert set(pairs[0, dominant]) == set(ids), "a fused object matches no true object"
    assert len(set(pairs[1, dominant])) == len(ids), "two fused objects share one true object"
    true_size = ndimage.sum_labels(truth > 0, truth, pairs[1])
    big = pairs[1][true_size > 30]  # slivers at the mosaic edge may vanish
    assert set(big) <= set(pairs[1, dominant]), "a true object has no id"


def test_rerun_changes_nothing(stitched_2d):
    grid, url, result = stitched_2d
    target = result["image_list_updates"][0]["zarr_url"]
    before = {p: p.stat().st_mtime_ns for p in Path(target).rglob("*")}
    assert stitch_and_dedup(zarr_url=url, channel={"label": "DAPI"}) == result
    after = {p: p.stat().st_mtime_ns for p in Path(target).rglob("*")}
    assert before == after


def test_3d_stack_blending_none_outside_a_plate(tmp_path):
    grid = tile_grid(load_source("retina")[400:, 400:], grid=(2, 3), tile_shape=(128, 128), z_planes=3,
                     jitter_px=3.0, noise=0.01, vignetting=0.2, seed=2)
    url = write_tiles(tmp_path / "stack.zarr", grid, pixel_size_um=PIXEL_UM)
    result = stitch_and_dedup(zarr_url=url, blending="none", level="0")
    assert "origin" in result["image_list_updates"][0]
    container = open_output(result)
    assert container.get_image().shape[:2] == (2, 3)
    assert np.abs(neighbour_errors(placed_px(container, grid), grid)).max() < 0.3
    assert not ngio.open_ome_zarr_container(url).list_labels()


def test_3d_labels_fused_plane_by_plane_with_one_id_per_object(tmp_path):
    grid = nuclei_grid(grid=(2, 2), tile_shape=(160, 160), z_planes=3)
    url = make_tiled_plate(tmp_path, grid, ngff_version="0.5")
    container = open_output(stitch_and_dedup(zarr_url=url))
    fused = container.get_label("nuclei").get_array()
    assert fused.ndim == 3 and fused.shape[0] == 3
    assert np.array_equal(fused[0], fused[2])  # the tiles' labels are the same on every plane
    ids = np.unique(fused)[1:]
    assert np.array_equal(ids, np.arange(1, len(ids) + 1))
    covered = np.zeros(grid.object_labels.shape[-2:], bool)
    for y, x in grid.label_positions_px:
        covered[y : y + 160, x : x + 160] = True
    assert len(ids) == len(np.unique(grid.object_labels[0][covered])) - 1
    masking = container.get_table("nuclei_ROI_table").dataframe
    assert len(masking) == len(ids) and np.allclose(masking["len_z_micrometer"], 3.0)


def test_placed_from_a_coarser_level(tmp_path):
    grid = tile_grid(load_source("retina")[300:, 300:], grid=(2, 3), tile_shape=(192, 192),
                     jitter_px=4.0, noise=0.01, seed=8)
    url = write_tiles(tmp_path / "coarse.zarr", grid, pixel_size_um=PIXEL_UM, levels=2)
    container = open_output(stitch_and_dedup(zarr_url=url, level="1"))
    errors = neighbour_errors(placed_px(container, grid), grid)
    assert np.sqrt(np.mean(errors**2)) < 0.5, errors  # measured on half-size pixels
    assert container.get_image().shape[-1] > 2.5 * 192 * 0.85  # fused at full resolution


def test_hundreds_of_small_tiles(tmp_path):
    grid = tile_grid(load_source("retina")[200:, 200:], grid=(15, 15), tile_shape=(64, 64), overlap=0.2,
                     jitter_px=2.0, noise=0.01, seed=4)
    url = write_tiles(tmp_path / "many.zarr", grid, pixel_size_um=PIXEL_UM, levels=1)
    container = open_output(stitch_and_dedup(zarr_url=url, max_shift_um=3.0))
    errors = neighbour_errors(placed_px(container, grid), grid)
    assert np.sqrt(np.mean(errors**2)) < 0.35
    assert len(container.get_roi_table("FOV_ROI_table").rois()) == 225


def test_in_place_and_killed_at_each_step(tmp_path):
    grid = nuclei_grid(grid=(2, 2), tile_shape=(160, 160))
    url = make_tiled_plate(tmp_path, grid)
    pristine = tmp_path / "pristine"
    shutil.copytree(url, pristine)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"zarr_url": url, "overwrite_input": True}))
    def command(name):
        return [sys.executable, "-m", "fractal_roi_tasks.tasks.stitch_and_dedup",
                "--args-json", str(args), "--out-json", str(tmp_path / f"{name}.json")]

    first = subprocess.run(command("out"), capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    final = ngio.open_ome_zarr_container(url).get_image().get_array()
    labels = ngio.open_ome_zarr_container(url).get_label("nuclei").get_array()
    assert final.shape[1] > 2 * 160 * 0.8 and json.loads((tmp_path / "out.json").read_text()) == {
        "image_list_updates": [{"zarr_url": url, "types": {"stitched": True}}]
    }
    for point in ("fusing", "built", "completed", "exchanged"):
        shutil.rmtree(url)
        shutil.copytree(pristine, url)
        env = {**os.environ, swap.CRASH_ENV: point}
        assert subprocess.run(command(point), env=env, capture_output=True).returncode == 1, point
        assert ngio.open_ome_zarr_container(url).get_image().shape[0] == 2  # a whole image
        rerun = subprocess.run(command(f"{point}-rerun"), capture_output=True, text=True)
        assert rerun.returncode == 0, (point, rerun.stderr[-3000:])
        again = ngio.open_ome_zarr_container(url)
        assert np.array_equal(again.get_image().get_array(), final), point
        assert np.array_equal(again.get_label("nuclei").get_array(), labels), point
        well = tmp_path.joinpath("tiles.zarr", "B", "03")
        assert [p.name for p in well.iterdir() if p.name.startswith(".0")] == [], point


def test_what_is_not_stitched_is_said(tmp_path, caplog):
    grid = nuclei_grid(grid=(1, 2), tile_shape=(128, 128))
    url = make_tiled_plate(tmp_path, grid)
    container = ngio.open_ome_zarr_container(url)
    container.derive_label("cells", dtype="uint32")
    container.add_table("nuclei_features", ngio.GenericTable(container.get_table("FOV_ROI_table").dataframe))
    with caplog.at_level(logging.WARNING):
        stitched = open_output(stitch_and_dedup(zarr_url=url, label_names=["nuclei"]))
    assert stitched.list_labels() == ["nuclei"]
    assert "label images ['cells'] not stitched" in caplog.text
    assert "tables ['nuclei_features'] describe the tiles" in caplog.text


def test_tiles_that_do_not_overlap_are_placed_from_the_stage(tmp_path, caplog):
    grid = nuclei_grid(grid=(2, 2), tile_shape=(160, 160), overlap=0.0, jitter_px=0.0)
    spread = grid.stage_px * 1.2  # gaps between the tiles
    url = write_tiles(tmp_path / "gaps.zarr", dataclasses.replace(grid, stage_px=spread))
    with caplog.at_level(logging.WARNING):
        container = open_output(stitch_and_dedup(zarr_url=url))
    frame = container.get_roi_table("FOV_ROI_table").dataframe
    assert frame[STITCH_FALLBACK_COLUMN].tolist() == [1.0] * 4
    assert "no trustworthy overlap" in caplog.text and "FOV_1" in caplog.text


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    grid = nuclei_grid(grid=(1, 2), tile_shape=(96, 96))
    url = write_tiles(tmp_path / "two.zarr", grid)
    container = ngio.open_ome_zarr_container(url)
    with pytest.raises(NotFoundError, match=r"Channel label 'Cy5' not found; the image has channels \['DAPI', 'GFP'\]"):
        stitch_and_dedup(zarr_url=url, channel={"label": "Cy5"})
    with pytest.raises(NotFoundError, match=r"ROI table 'tiles' not found .* it has tables \['FOV_ROI_table', 'well_ROI_table'\]"):
        stitch_and_dedup(zarr_url=url, roi_table="tiles")
    with pytest.raises(NotFoundError, match=r"Label image 'cells' not found .* it has labels \['nuclei'\]"):
        stitch_and_dedup(zarr_url=url, label_names=["cells"])
    with pytest.raises(NotFoundError, match=r"Pyramid level '7' does not exist"):
        stitch_and_dedup(zarr_url=url, level="7")
    container.derive_label("coarse", ref_image=container.get_image(path="1"), dtype="uint16")
    with pytest.raises(InvalidInputError, match=r"Label image 'coarse' has pixels of .* full resolution"):
        stitch_and_dedup(zarr_url=url, label_names=["coarse"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.zarr"]  # not even a hidden build
    container.add_table("one", ngio.RoiTable(rois=[container.get_roi_table("FOV_ROI_table").rois()[0]]))
    with pytest.raises(InvalidInputError, match="has 1 ROI: there is nothing to stitch"):
        stitch_and_dedup(zarr_url=url, roi_table="one")
    assert not (tmp_path / "two.zarr_stitched").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.zarr"]


def fused_from_roi_positions(tmp_path, caplog, *, drop_stage_columns: bool, **options):
    """Stitch a 2 x 2 grid placed from its ROI positions; returns (input, output, log)."""
    grid = nuclei_grid(grid=(2, 2), tile_shape=(128, 128))
    url = make_tiled_plate(tmp_path, grid)
    container = ngio.open_ome_zarr_container(url)
    if drop_stage_columns:
        frame = container.get_roi_table("FOV_ROI_table").dataframe
        table = ngio.RoiTable()
        table.set_table_data(frame.drop(columns=["x_micrometer_original", "y_micrometer_original"]))
        container.add_table("FOV_ROI_table", table, overwrite=True)
    with caplog.at_level(logging.INFO):
        stitched = open_output(stitch_and_dedup(zarr_url=url, **options))
    return container, stitched, caplog.text


def test_without_stage_positions_tiles_stay_at_their_rois(tmp_path, caplog):
    # A converter writes the tiles side by side: their ROIs do not overlap, so
    # placed from them every tile keeps its place in the array, flagged.
    source, stitched, log = fused_from_roi_positions(tmp_path, caplog, drop_stage_columns=False,
                                                     use_stage_positions=False)
    assert "4 tiles from their ROI positions" in log and "has no" not in log
    assert np.array_equal(stitched.get_image().get_array(), source.get_image().get_array())
    frame = stitched.get_roi_table("FOV_ROI_table").dataframe
    assert frame[STITCH_FALLBACK_COLUMN].tolist() == [1.0] * 4
    assert np.allclose(frame[list(STITCH_CORRECTION_COLUMNS)].to_numpy(), 0.0)
    # The stage columns travel with the table even when they were not used.
    assert frame["x_micrometer_original"].tolist() == source.get_roi_table(
        "FOV_ROI_table").dataframe["x_micrometer_original"].tolist()
    tiles, fused = source.get_label("nuclei").get_array(), stitched.get_label("nuclei").get_array()
    assert np.array_equal(fused > 0, tiles > 0)
    # Nothing shared: every (tile, id) is its own object, numbered 1..n.
    per_tile = [len(np.unique(tiles[y : y + 128, x : x + 128])) - 1 for y in (0, 128) for x in (0, 128)]
    assert np.array_equal(np.unique(fused)[1:], np.arange(1, sum(per_tile) + 1))


def test_a_table_without_stage_columns_is_placed_from_its_rois(tmp_path, caplog):
    source, stitched, log = fused_from_roi_positions(tmp_path, caplog, drop_stage_columns=True)
    assert "has no y_micrometer_original / x_micrometer_original columns" in log
    assert "placed from their ROI positions instead" in log
    assert np.array_equal(stitched.get_image().get_array(), source.get_image().get_array())
    frame = stitched.get_roi_table("FOV_ROI_table").dataframe
    assert "x_micrometer_original" not in frame.columns
    assert frame[STITCH_FALLBACK_COLUMN].tolist() == [1.0] * 4


def test_groups_no_link_joins_each_keep_their_own_mean_start(tmp_path):
    # Four tiles in a row; the stage puts the last two 300 px further right,
    # so no overlap joins the pairs: each pair is placed on its own.
    grid = nuclei_grid(grid=(1, 4), tile_shape=(160, 160))
    stage = grid.stage_px + np.array([[0, 0], [0, 0], [0, 300], [0, 300]])
    url = write_tiles(tmp_path / "apart.zarr", dataclasses.replace(grid, stage_px=stage))
    frame = open_output(stitch_and_dedup(zarr_url=url)).get_roi_table("FOV_ROI_table").dataframe
    correction = frame[list(STITCH_CORRECTION_COLUMNS)].to_numpy(float)
    assert frame[STITCH_FALLBACK_COLUMN].tolist() == [0.0] * 4
    for pair in ([0, 1], [2, 3]):
        assert np.allclose(correction[pair].mean(axis=0), 0.0, atol=1e-6)
        assert np.abs(correction[pair]).max() > 0.1  # each was moved, around its own mean
    # Within each pair the placement is the truth, not the stage.
    placed = stage + correction / PIXEL_UM
    for i, j in ([0, 1], [2, 3]):
        truth = grid.positions_px[j] - grid.positions_px[i]
        assert np.abs((placed[j] - placed[i]) - truth).max() < 0.1
