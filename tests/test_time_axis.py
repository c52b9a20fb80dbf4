"""Every task on a t = 1 image gives exactly its output without t; t > 1 works or stops clearly."""

import shutil
from pathlib import Path

import ngio
import numpy as np
import pandas as pd
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data import (
    load_cardiomyocyte_nuclei,
    make_image,
    make_plate,
    make_tiled_plate,
    tile_grid,
)
from fractal_roi_tasks.sample_data.writing import write_converter_image
from fractal_roi_tasks.tasks.apply_registration_to_image import apply_registration_to_image
from fractal_roi_tasks.tasks.calculate_registration import calculate_registration
from fractal_roi_tasks.tasks.find_registration_consensus import find_registration_consensus
from fractal_roi_tasks.tasks.init_calculate_registration import init_calculate_registration
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus
from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois
from fractal_roi_tasks.tasks.stitch_and_dedup import stitch_and_dedup


def add_time_axis(zarr_url, *, frames=1, ngff_version="0.4"):
    """Rewrite the image at ``zarr_url`` in place with a leading t axis of ``frames`` copies."""
    container = ngio.open_ome_zarr_container(zarr_url)
    image = container.get_image()
    pixels = image.get_array()
    labels = {
        name: np.stack([container.get_label(name).get_array()] * frames)
        for name in container.list_labels()
    }
    staged = zarr_url + "_timed"
    write_converter_image(
        staged,
        np.stack([pixels] * frames),
        channels=list(zip(image.channel_labels, image.wavelength_ids)),
        pixel_size_um=image.pixel_size.x,
        z_spacing_um=image.pixel_size.z,
        chunk_yx=image.chunks[-2:],
        levels=container.levels,
        ngff_version=ngff_version,
        overwrite=False,
        tables={},
        labels=labels,
        time_interval_s=60.0,
    )
    shutil.copytree(Path(zarr_url) / "tables", Path(staged) / "tables", dirs_exist_ok=True)
    shutil.rmtree(zarr_url)
    shutil.move(staged, zarr_url)
    assert ngio.open_ome_zarr_container(zarr_url).get_image().axes[0] == "t"
    return zarr_url


def tables_of(zarr_url):
    container = ngio.open_ome_zarr_container(zarr_url)
    return {name: container.get_table(name).dataframe for name in sorted(container.list_tables())}


def assert_same_tables(plain_url, timed_url):
    plain, timed = tables_of(plain_url), tables_of(timed_url)
    assert sorted(plain) == sorted(timed)
    for name, frame in plain.items():
        other = timed[name]
        shared = [c for c in frame.columns if c in other.columns]
        assert shared == list(frame.columns), (name, list(frame.columns), list(other.columns))
        pd.testing.assert_frame_equal(frame, other[shared], check_dtype=False, obj=name)


def assert_same_pixels(plain, timed):
    """The t = 1 output keeps its t axis and holds the same pixels."""
    assert timed.axes[0] == "t" and timed.shape[0] == 1, timed.axes
    assert tuple(timed.shape[1:]) == tuple(plain.shape)
    np.testing.assert_array_equal(timed.get_array()[0], plain.get_array())


def assert_same_labels(plain_url, timed_url):
    plain = ngio.open_ome_zarr_container(plain_url)
    timed = ngio.open_ome_zarr_container(timed_url)
    assert sorted(plain.list_labels()) == sorted(timed.list_labels())
    for name in plain.list_labels():
        assert_same_pixels(plain.get_label(name), timed.get_label(name))


def files_under(zarr_url, folder):
    return sorted(
        p.relative_to(zarr_url) for p in (Path(zarr_url) / folder).rglob("*") if p.is_file()
    )


def assert_same_files(plain_url, timed_url, folder):
    plain, timed = files_under(plain_url, folder), files_under(timed_url, folder)
    assert plain == timed and plain
    for rel in plain:
        # a file may name its image: the two differ only by that path
        expected = (Path(plain_url) / rel).read_bytes()
        expected = expected.replace(plain_url.encode(), timed_url.encode())
        assert expected == (Path(timed_url) / rel).read_bytes(), rel


@pytest.fixture(params=[1, 3], ids=["tcyx", "tczyx"])
def image_pair(tmp_path, request):
    """The same sample image without t and with a t axis of size 1 (2D, and 3D of 3 planes)."""
    options = {"levels": 2, "z_planes": request.param}
    plain = make_image(tmp_path / "plain" / "image.zarr", **options)
    timed = add_time_axis(make_image(tmp_path / "timed" / "image.zarr", **options))
    return plain, timed


def test_segment_to_rois_given_labels_is_the_same_on_t1(image_pair):
    plain, timed = image_pair
    for url in image_pair:
        segment_to_rois(zarr_url=url, label_name="nuclei", exports=["json", "imagej", "geojson"])
    assert_same_tables(plain, timed)
    assert_same_files(plain, timed, "rois")


def test_segment_to_rois_segmentation_is_the_same_on_t1(image_pair):
    plain, timed = image_pair
    for url in image_pair:
        segment_to_rois(
            zarr_url=url, label_name="found", segmentation={"channel": {"wavelength_id": "A01_C01"}}
        )
    assert_same_tables(plain, timed)
    assert_same_labels(plain, timed)


DAPI = {"wavelength_id": "A01_C01"}
REGISTERED = "FOV_ROI_table_registered"


def register_and_apply(urls):
    calculate(urls)
    consensus_and_apply(urls)


def calculate(urls):
    for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        calculate_registration(**item, channel=DAPI)


def consensus_and_apply(urls):
    for item in init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        find_registration_consensus(**item)
    for url in urls:
        apply_registration_to_image(zarr_url=url, registered_roi_table=REGISTERED)


def small_plate(root, frames=None, z_planes=1):
    plate = make_plate(
        root,
        z_planes=z_planes,
        wells=("B03",),
        acquisitions=2,
        fov_grid=(1, 2),
        levels=2,
        shifts={(1, 0): (0, 3, -2), (1, 1): (0, -1.5, 4.25)},
    )
    urls = [img.zarr_url for img in plate.images]
    if frames is not None:
        for url in urls:
            add_time_axis(url, frames=frames)
    return urls


@pytest.mark.parametrize("z_planes", [1, 3], ids=["tcyx", "tczyx"])
def test_registration_tasks_are_the_same_on_t1(tmp_path, z_planes):
    plain = small_plate(tmp_path / "plain", z_planes=z_planes)
    timed = small_plate(tmp_path / "timed", frames=1, z_planes=z_planes)
    register_and_apply(plain)
    register_and_apply(timed)
    for plain_url, timed_url in zip(plain, timed):
        assert_same_image(plain_url, timed_url)


def assert_same_image(plain_url, timed_url):
    """Tables, pixels of every level and labels of a t = 1 output equal those without t."""
    assert_same_tables(plain_url, timed_url)
    plain_c = ngio.open_ome_zarr_container(plain_url)
    timed_c = ngio.open_ome_zarr_container(timed_url)
    for path in plain_c.level_paths:
        assert_same_pixels(plain_c.get_image(path=path), timed_c.get_image(path=path))
    assert_same_labels(plain_url, timed_url)


def tiled(root, frames=None):
    raw, nuclei = load_cardiomyocyte_nuclei()
    grid = tile_grid(
        raw / 65535.0,
        object_labels=nuclei,
        grid=(2, 2),
        tile_shape=(160, 160),
        jitter_px=3.0,
        seed=5,
    )
    url = make_tiled_plate(root, grid, unique_label_ids=True)
    if frames is not None:
        add_time_axis(url, frames=frames)
    return url


def test_stitch_and_dedup_is_the_same_on_t1(tmp_path):
    plain = stitch_and_dedup(zarr_url=tiled(tmp_path / "plain"), channel={"label": "DAPI"})
    timed_tiles = tiled(tmp_path / "timed", frames=1)
    timed = stitch_and_dedup(zarr_url=timed_tiles, channel={"label": "DAPI"})
    plain_url = plain["image_list_updates"][0]["zarr_url"]
    timed_url = timed["image_list_updates"][0]["zarr_url"]
    assert_same_image(plain_url, timed_url)


def test_calculate_registration_on_two_equal_time_points_gives_the_t_less_table(tmp_path):
    """Measured on time point 0 (more in test_registration_time.py)."""
    plain = small_plate(tmp_path / "plain")
    timed = small_plate(tmp_path / "timed", frames=2)
    calculate(plain)
    calculate(timed)
    for plain_url, timed_url in zip(plain, timed):
        assert_same_tables(plain_url, timed_url)
    assert "translation_x" in tables_of(timed[1])["FOV_ROI_table"]


def test_stitch_fuses_every_time_point_with_one_placement(tmp_path):
    """Two equal time points: each fused frame equals the stitched t-less image."""
    plain = stitch_and_dedup(zarr_url=tiled(tmp_path / "plain"), channel={"label": "DAPI"})
    timed = stitch_and_dedup(zarr_url=tiled(tmp_path / "timed", frames=2), channel={"label": "DAPI"})
    expected = ngio.open_ome_zarr_container(plain["image_list_updates"][0]["zarr_url"])
    found = ngio.open_ome_zarr_container(timed["image_list_updates"][0]["zarr_url"])
    image = found.get_image()
    assert image.axes[0] == "t" and image.shape[0] == 2
    label_name = found.list_labels()[0]
    for t in range(2):
        np.testing.assert_array_equal(image.get_array()[t], expected.get_image().get_array())
        np.testing.assert_array_equal(
            found.get_label(label_name).get_array()[t], expected.get_label(label_name).get_array()
        )
    with pytest.raises(InvalidInputError, match="placement_time_point is 5"):
        stitch_and_dedup(
            zarr_url=tiled(tmp_path / "bad", frames=2), channel={"label": "DAPI"}, placement_time_point=5
        )


def test_segment_to_rois_works_on_every_time_point(tmp_path):
    """Two equal time points: the same objects twice, at t 0 and 1 (more in test_segment_time.py)."""
    image = add_time_axis(make_image(tmp_path / "a" / "image.zarr", levels=2), frames=2)
    segment_to_rois(zarr_url=image, label_name="nuclei")
    features = tables_of(image)["nuclei_features"]
    first, second = (features[features["t"] == t].set_index("label") for t in (0, 1))
    assert len(first) > 100 and list(features.index[:1]) == [f"t0-{first.index[0]}"]
    times = ["t", "time_s"]
    pd.testing.assert_frame_equal(first.drop(columns=times), second.drop(columns=times))
    assert set(second["time_s"]) == {60.0}


def test_consensus_and_apply_register_every_time_point(tmp_path):
    plain = small_plate(tmp_path / "plain")
    calculate(plain)
    shutil.copytree(tmp_path / "plain", tmp_path / "timed")
    timed = [url.replace(str(tmp_path / "plain"), str(tmp_path / "timed")) for url in plain]
    for url in timed:
        add_time_axis(url, frames=2)
    consensus_and_apply(plain)
    consensus_and_apply(timed)
    for plain_url, timed_url in zip(plain, timed):
        assert_same_tables(plain_url, timed_url)
        expected = ngio.open_ome_zarr_container(plain_url).get_image().get_array()
        found = ngio.open_ome_zarr_container(timed_url).get_image()
        assert found.axes[0] == "t" and found.shape[0] == 2
        for t in range(2):
            np.testing.assert_array_equal(found.get_array()[t], expected)
        expected_label = ngio.open_ome_zarr_container(plain_url).get_label("nuclei").get_array()
        found_label = ngio.open_ome_zarr_container(timed_url).get_label("nuclei").get_array()
        for t in range(2):
            np.testing.assert_array_equal(found_label[t], expected_label)
