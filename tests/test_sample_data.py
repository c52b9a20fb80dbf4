"""Tests of the sample OME-Zarr plates and images built from bundled real images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ngio
import numpy as np
import pytest
import skimage.data
import zarr
from scipy import ndimage

from fractal_roi_tasks import sample_data
from fractal_roi_tasks.errors import AlreadyExistsError
from fractal_roi_tasks.sample_data import (
    FovTruth,
    SampleImage,
    SamplePlate,
    add_noise,
    add_saturated_blob,
    background_fov,
    load_cardiomyocyte_nuclei,
    load_source,
    make_image,
    make_plate,
    random_shifts,
    sample_fov,
    sample_fov_labels,
    shifted_field,
)

FOV = 512
PIXEL = 0.325
N_NUCLEI = 168


def symmetries(array: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/flips of the square, on the last two axes (test oracle)."""
    out = []
    for flip in (False, True):
        base = np.flip(array, axis=-1) if flip else array
        out.extend(np.rot90(base, k, axes=(-2, -1)) for k in range(4))
    return out


def symmetry_index(fov: np.ndarray, reference: np.ndarray) -> int:
    """Which symmetry of ``reference`` ``fov`` is; fails if none."""
    matches = [i for i, s in enumerate(symmetries(reference)) if np.array_equal(s, fov)]
    assert len(matches) == 1, "the FOV is not exactly one symmetry of the source"
    return matches[0]


def fov_windows(grid: tuple[int, int]) -> list[tuple[slice, slice]]:
    rows, columns = grid
    return [
        (slice(r * FOV, (r + 1) * FOV), slice(c * FOV, (c + 1) * FOV))
        for r in range(rows)
        for c in range(columns)
    ]


@pytest.fixture(scope="module")
def plate_2d(tmp_path_factory) -> SamplePlate:
    return make_plate(tmp_path_factory.mktemp("plate2d"))


@pytest.fixture(scope="module")
def stack_plate(tmp_path_factory) -> SamplePlate:
    return make_plate(
        tmp_path_factory.mktemp("plate3d"), wells=("C05",), fov_grid=(1, 2), z_planes=5
    )


@pytest.fixture(scope="module")
def plate_05(tmp_path_factory) -> SamplePlate:
    return make_plate(
        tmp_path_factory.mktemp("plate05"),
        plate_name="cycles.zarr",
        acquisitions=2,
        fov_grid=(1, 1),
        ngff_version="0.5",
    )


# --------------------------------------------------------------------------
# Sources


@pytest.mark.parametrize("name", sample_data.SOURCE_NAMES)
def test_load_source_is_a_2d_float_image_in_unit_range(name):
    image = load_source(name)
    assert image.ndim == 2
    assert image.dtype == np.float32
    assert 0.0 <= image.min() < image.max() <= 1.0
    assert image.std() > 0.05


def test_load_source_picks_the_documented_channel():
    np.testing.assert_allclose(
        load_source("retina"), skimage.data.retina()[..., 1] / 255.0, atol=1e-6
    )
    np.testing.assert_allclose(
        load_source("coins"), skimage.data.coins() / 255.0, atol=1e-6
    )
    assert load_source("hubble_deep_field").shape == (872, 1000)


def test_load_source_returns_a_fresh_array():
    first = load_source("cell")
    first[:] = 0
    assert load_source("cell").max() > 0


def test_load_source_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"'astronaut'.*cardiomyocyte.*retina.*hubble"):
        load_source("astronaut")


def test_cardiomyocyte_nuclei_are_the_real_ones():
    raw, labels = load_cardiomyocyte_nuclei()
    assert raw.shape == labels.shape == (FOV, FOV)
    assert raw.dtype == np.uint16 and labels.dtype == np.uint32
    # uint8 scaled to the full uint16 range.
    assert raw.max() == 65535 and np.all(raw % 257 == 0)
    np.testing.assert_array_equal(np.unique(labels), np.arange(N_NUCLEI + 1))
    # The labels sit on the nuclei: far brighter inside than outside.
    assert raw[labels > 0].mean() > 5 * raw[labels == 0].mean()
    np.testing.assert_allclose(raw / 65535.0, load_source("cardiomyocyte"), atol=1e-6)


# --------------------------------------------------------------------------
# Plate structure


def test_plate_lists_its_wells_images_and_acquisitions(plate_2d):
    plate = ngio.open_ome_zarr_plate(plate_2d.plate_url)
    assert plate.rows == ["B"]
    assert plate.columns == ["03", "04"]
    assert sorted(plate.images_paths(max_workers=1)) == ["B/03/0", "B/04/0"]
    assert plate.acquisition_ids == [0]
    assert plate_2d.images == [
        SampleImage(f"{plate_2d.plate_url}/B/03/0", "B03", "B", "03", "0", 0),
        SampleImage(f"{plate_2d.plate_url}/B/04/0", "B04", "B", "04", "0", 0),
    ]
    assert plate_2d.fov_shape == (FOV, FOV)
    assert plate_2d.pixel_size_um == PIXEL
    assert Path(plate_2d.plate_url).is_absolute()


def test_plate_with_acquisitions(plate_05):
    plate = ngio.open_ome_zarr_plate(plate_05.plate_url)
    assert plate_05.plate_url.endswith("cycles.zarr")
    assert sorted(plate.acquisition_ids) == [0, 1]
    well = plate.get_well("B", "04")
    assert sorted(well.paths()) == ["0", "1"]
    assert well.paths(acquisition=1) == ["1"]
    assert plate.get_image_acquisition_id("B", "03", "1") == 1
    assert [(i.well, i.path, i.acquisition) for i in plate_05.images] == [
        ("B03", "0", 0),
        ("B03", "1", 1),
        ("B04", "0", 0),
        ("B04", "1", 1),
    ]


def test_acquisitions_of_a_well_image_the_same_cells(plate_05):
    first, second = (
        ngio.open_ome_zarr_container(image.zarr_url) for image in plate_05.images[:2]
    )
    np.testing.assert_array_equal(
        first.get_image().get_as_numpy(), second.get_image().get_as_numpy()
    )
    np.testing.assert_array_equal(
        first.get_label("nuclei").get_as_numpy(),
        second.get_label("nuclei").get_as_numpy(),
    )


# --------------------------------------------------------------------------
# Image content


def test_images_are_2d_with_named_channels_and_a_pyramid(plate_2d):
    for image in plate_2d.images:
        container = ngio.open_ome_zarr_container(image.zarr_url)
        assert container.channel_labels == ["DAPI", "GFP"]
        assert container.wavelength_ids == ["A01_C01", "A02_C02"]
        assert container.is_2d and not container.is_3d
        assert container.levels == 3
        for level, path in enumerate(container.level_paths):
            level_image = container.get_image(path=path)
            assert level_image.axes == ("c", "y", "x")
            size = 2 * FOV // 2**level
            assert level_image.shape == (2, size, size)
            assert level_image.dtype == "uint16"
            assert level_image.pixel_size.x == pytest.approx(PIXEL * 2**level)
        label = container.get_label("nuclei", path=container.level_paths[-1])
        assert label.axes == ("y", "x")
        assert label.shape == (2 * FOV // 4, 2 * FOV // 4)


def test_fovs_are_real_transformed_nuclei_with_matching_labels(plate_2d):
    raw, labels = load_cardiomyocyte_nuclei()
    seen = []
    for image in plate_2d.images:
        container = ngio.open_ome_zarr_container(image.zarr_url)
        dapi = container.get_image().get_as_numpy(c=0)
        nuclei = container.get_label("nuclei").get_as_numpy()
        for index, window in enumerate(fov_windows((2, 2))):
            k = symmetry_index(dapi[window], raw)
            seen.append(k)
            offset = index * N_NUCLEI
            expected = symmetries(labels)[k]
            np.testing.assert_array_equal(
                nuclei[window], np.where(expected > 0, expected + offset, 0)
            )
    # Every FOV of the default plate shows the nuclei differently.
    assert sorted(seen) == list(range(8))


def find_crop(image: np.ndarray, crop: np.ndarray) -> list[tuple[int, int]]:
    """Every top-left (y, x) where ``crop`` appears exactly in ``image``."""
    h, w = crop.shape
    ys, xs = np.nonzero(image[: -h + 1, : -w + 1] == crop[0, 0])
    row = image[ys[:, None], xs[:, None] + np.arange(16)]
    keep = np.all(row == crop[0, :16], axis=1)
    return [
        (int(y), int(x))
        for y, x in zip(ys[keep], xs[keep], strict=True)
        if np.array_equal(image[y : y + h, x : x + w], crop)
    ]


def test_gfp_is_a_different_retina_crop_per_fov_and_well(plate_2d):
    retina = skimage.data.retina()[..., 1].astype(np.uint16) * 257
    positions = []
    for image in plate_2d.images:
        gfp = ngio.open_ome_zarr_container(image.zarr_url).get_image().get_as_numpy(c=1)
        for window in fov_windows((2, 2)):
            crop = gfp[window]
            assert crop.min() > 0  # inside the fundus, no black corners
            (position,) = find_crop(retina, crop)
            positions.append(position)
    assert len(set(positions)) == len(positions) == 8


def test_nuclei_ids_are_unique_across_fovs_at_every_level(plate_2d):
    container = ngio.open_ome_zarr_container(plate_2d.images[1].zarr_url)
    nuclei = container.get_label("nuclei").get_as_numpy()
    np.testing.assert_array_equal(np.unique(nuclei), np.arange(4 * N_NUCLEI + 1))
    for index, window in enumerate(fov_windows((2, 2))):
        ids = np.unique(nuclei[window])
        ids = ids[ids > 0]
        assert len(ids) == N_NUCLEI
        assert ids.min() == index * N_NUCLEI + 1
        assert ids.max() == (index + 1) * N_NUCLEI
    for path in container.level_paths[1:]:
        level = container.get_label("nuclei", path=path).get_as_numpy()
        assert level.dtype == np.uint32
        ids = set(np.unique(level).tolist())
        assert ids <= set(range(4 * N_NUCLEI + 1))
        assert len(ids) > 3 * N_NUCLEI  # nearest-neighbour downsampling keeps most


def test_label_carries_image_label_metadata(plate_2d):
    root = Path(plate_2d.images[0].zarr_url)
    labels_attrs = json.loads((root / "labels" / ".zattrs").read_text())
    assert labels_attrs["labels"] == ["nuclei"]
    nuclei_attrs = json.loads((root / "labels" / "nuclei" / ".zattrs").read_text())
    assert nuclei_attrs["image-label"]["source"] == {"image": "../../"}
    assert len(nuclei_attrs["multiscales"][0]["datasets"]) == 3


# --------------------------------------------------------------------------
# Tables


def test_fov_roi_table_geometry_and_stage_positions(plate_2d):
    side = FOV * PIXEL
    origins = {}
    for image in plate_2d.images:
        container = ngio.open_ome_zarr_container(image.zarr_url)
        assert set(container.list_roi_tables()) >= {"FOV_ROI_table", "well_ROI_table"}
        table = container.get_roi_table("FOV_ROI_table")
        rois = table.rois()
        assert [roi.name for roi in rois] == ["FOV_1", "FOV_2", "FOV_3", "FOV_4"]
        expected_starts = [(0, 0), (0, side), (side, 0), (side, side)]
        for roi, (y0, x0) in zip(rois, expected_starts, strict=True):
            assert roi["y"].start == pytest.approx(y0)
            assert roi["x"].start == pytest.approx(x0)
            assert roi["y"].length == pytest.approx(side)
            assert roi["x"].length == pytest.approx(side)
            assert (roi["z"].start, roi["z"].length) == (0.0, 1.0)
        # A stage position: the image's stage origin plus the ROI's offset.
        stage_y = {r.model_extra["y_micrometer_original"] - r["y"].start for r in rois}
        stage_x = {r.model_extra["x_micrometer_original"] - r["x"].start for r in rois}
        assert len({round(v, 6) for v in stage_y}) == 1
        assert len({round(v, 6) for v in stage_x}) == 1
        origins[image.well] = (
            rois[0].model_extra["y_micrometer_original"],
            rois[0].model_extra["x_micrometer_original"],
        )
        # The stored columns, as other readers see them.
        frame = table.dataframe
        assert frame.index.name == "FieldIndex"
        assert {"x_micrometer_original", "y_micrometer_original"} <= set(frame.columns)
        # Each ROI reads exactly one FOV.
        patch = container.get_image().get_roi_as_numpy(table.get("FOV_4"))
        full = container.get_image().get_as_numpy()
        np.testing.assert_array_equal(patch, full[:, FOV:, FOV:])
    # Neighbouring wells of a 96-well plate are 9 mm apart on the stage.
    assert origins["B04"][1] - origins["B03"][1] == pytest.approx(9000.0)
    assert origins["B04"][0] == pytest.approx(origins["B03"][0])
    assert origins["B03"][1] > 0 and origins["B03"][0] > 0


def test_well_roi_table_covers_the_image(plate_2d):
    container = ngio.open_ome_zarr_container(plate_2d.images[0].zarr_url)
    (roi,) = container.get_roi_table("well_ROI_table").rois()
    assert roi.name == "well_1"
    assert (roi["y"].start, roi["x"].start) == (0.0, 0.0)
    assert roi["y"].length == pytest.approx(2 * FOV * PIXEL)
    assert roi["x"].length == pytest.approx(2 * FOV * PIXEL)
    patch = container.get_image().get_roi_as_numpy(roi)
    assert patch.shape == (2, 2 * FOV, 2 * FOV)


# --------------------------------------------------------------------------
# 3D


def test_3d_plate_shapes_and_spacing(stack_plate):
    assert stack_plate.fov_shape == (5, FOV, FOV)
    container = ngio.open_ome_zarr_container(stack_plate.images[0].zarr_url)
    image = container.get_image()
    assert image.axes == ("c", "z", "y", "x")
    assert image.shape == (2, 5, FOV, 2 * FOV)
    assert image.pixel_size.z == 1.0 and image.pixel_size.y == PIXEL
    assert container.is_3d
    label = container.get_label("nuclei")
    assert label.axes == ("z", "y", "x")
    assert label.shape == (5, FOV, 2 * FOV)
    lowest = container.get_label("nuclei", path=container.level_paths[-1])
    assert lowest.shape == (5, FOV // 4, FOV // 2)
    for roi in container.get_roi_table("FOV_ROI_table").rois():
        assert (roi["z"].start, roi["z"].length) == (0.0, 5.0)
        assert container.get_image().get_roi_as_numpy(roi).shape == (2, 5, FOV, FOV)


def test_3d_nuclei_shrink_away_from_the_middle_plane(stack_plate):
    _, labels_2d = load_cardiomyocyte_nuclei()
    container = ngio.open_ome_zarr_container(stack_plate.images[0].zarr_url)
    stack = container.get_label("nuclei").get_as_numpy()
    # The middle plane holds the real labels, whole.
    assert len(np.unique(stack[2])) - 1 == 2 * N_NUCLEI
    symmetry_index(stack[2, :, :FOV], labels_2d)
    # Symmetric about the middle plane.
    np.testing.assert_array_equal(stack[0], stack[4])
    np.testing.assert_array_equal(stack[1], stack[3])
    # Plane z holds, under the same id, exactly the pixels of each object
    # farther than |z - 2| pixels from every other object and the background
    # (the edge of a field of view is a cut, not a boundary). Checked on FOV_1.
    fov = stack[:, :, :FOV]
    boxes = ndimage.find_objects(fov[2])
    assert len(boxes) == N_NUCLEI
    for index, box in enumerate(boxes, start=1):
        padded = tuple(
            slice(max(s.start - 3, 0), min(s.stop + 3, FOV)) for s in box
        )
        inside = fov[2][padded] == index
        depth = ndimage.distance_transform_edt(inside)
        for z in range(5):
            expected = inside & (depth > abs(z - 2))
            np.testing.assert_array_equal(fov[z][padded] == index, expected)
    areas = [
        np.bincount(plane.ravel(), minlength=2 * N_NUCLEI + 1)[1:] for plane in stack
    ]
    assert areas[0].sum() < areas[1].sum() < areas[2].sum()
    # Objects too small for the erosion are absent from the outer planes...
    assert np.count_nonzero(areas[0]) < np.count_nonzero(areas[2])
    # ...but most nuclei are still there.
    assert np.count_nonzero(areas[0]) > 1.8 * N_NUCLEI


def test_3d_raw_blurs_away_from_the_middle_plane(stack_plate):
    container = ngio.open_ome_zarr_container(stack_plate.images[0].zarr_url)
    for channel in (0, 1):
        stack = container.get_image().get_as_numpy(c=channel).astype(float)
        sharpness = [np.abs(np.diff(plane, axis=-1)).mean() for plane in stack]
        assert sharpness[0] < sharpness[1] < sharpness[2]
        assert sharpness[2] > sharpness[3] > sharpness[4]


# --------------------------------------------------------------------------
# NGFF versions


def test_ngff_04_writes_zarr_v2(plate_2d):
    plate_path = Path(plate_2d.plate_url)
    assert (plate_path / ".zgroup").exists() and not (plate_path / "zarr.json").exists()
    image_path = Path(plate_2d.images[0].zarr_url)
    for path in (plate_path, image_path, image_path / "labels" / "nuclei"):
        assert zarr.open_group(str(path), mode="r").metadata.zarr_format == 2
    attrs = json.loads((image_path / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"


def test_ngff_05_writes_zarr_v3(plate_05):
    plate_path = Path(plate_05.plate_url)
    image_path = Path(plate_05.images[-1].zarr_url)
    for path in (
        plate_path,
        plate_path / "B" / "04",
        image_path,
        image_path / "labels" / "nuclei",
        image_path / "tables" / "FOV_ROI_table",
    ):
        assert (path / "zarr.json").exists()
        assert not (path / ".zgroup").exists() and not (path / ".zattrs").exists()
        assert zarr.open_group(str(path), mode="r").metadata.zarr_format == 3
    attrs = json.loads((image_path / "zarr.json").read_text())["attributes"]
    assert attrs["ome"]["version"] == "0.5"
    plate_attrs = json.loads((plate_path / "zarr.json").read_text())["attributes"]
    assert plate_attrs["ome"]["version"] == "0.5"
    container = ngio.open_ome_zarr_container(str(image_path))
    assert container.channel_labels == ["DAPI", "GFP"]
    rois = container.get_roi_table("FOV_ROI_table").rois()
    assert [roi.name for roi in rois] == ["FOV_1"]
    assert "x_micrometer_original" in rois[0].model_extra
    nuclei = container.get_label("nuclei").get_as_numpy()
    assert len(np.unique(nuclei)) - 1 == N_NUCLEI


# --------------------------------------------------------------------------
# Stand-alone image


def test_make_image_writes_a_stand_alone_image(tmp_path):
    url = make_image(tmp_path / "single.zarr", fov_grid=(1, 2), levels=2)
    assert url == str(tmp_path / "single.zarr")
    attrs = json.loads((Path(url) / ".zattrs").read_text())
    assert "multiscales" in attrs and "well" not in attrs and "plate" not in attrs
    container = ngio.open_ome_zarr_container(url)
    assert container.get_image().shape == (2, FOV, 2 * FOV)
    assert container.levels == 2
    assert container.wavelength_ids == ["A01_C01", "A02_C02"]
    rois = container.get_roi_table("FOV_ROI_table").rois()
    assert [roi.name for roi in rois] == ["FOV_1", "FOV_2"]
    assert rois[1].model_extra["x_micrometer_original"] == pytest.approx(FOV * PIXEL)
    assert rois[0].model_extra["y_micrometer_original"] == 0.0
    nuclei = container.get_label("nuclei").get_as_numpy()
    np.testing.assert_array_equal(np.unique(nuclei), np.arange(2 * N_NUCLEI + 1))


def test_make_image_matches_the_first_well_of_a_plate(tmp_path):
    url = make_image(tmp_path / "single.zarr", fov_grid=(1, 2), z_planes=3)
    plate = make_plate(tmp_path, wells=("A01", "A02"), fov_grid=(1, 2), z_planes=3)
    alone = ngio.open_ome_zarr_container(url)
    in_plate = ngio.open_ome_zarr_container(plate.images[0].zarr_url)
    np.testing.assert_array_equal(
        alone.get_image().get_as_numpy(), in_plate.get_image().get_as_numpy()
    )
    other_well = ngio.open_ome_zarr_container(plate.images[1].zarr_url)
    assert not np.array_equal(
        alone.get_image().get_as_numpy(), other_well.get_image().get_as_numpy()
    )


# --------------------------------------------------------------------------
# Existing outputs and bad options


def test_existing_plate_is_kept_without_overwrite(tmp_path):
    plate = make_plate(tmp_path, wells=("B03",), fov_grid=(1, 1), levels=1)
    with pytest.raises(AlreadyExistsError, match=r"sample\.zarr already exists"):
        make_plate(tmp_path, wells=("C07",), fov_grid=(1, 1), levels=1)
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        make_plate(tmp_path, fov_grid=(1, 1))
    reopened = ngio.open_ome_zarr_plate(plate.plate_url)
    assert reopened.rows == ["B"] and reopened.columns == ["03"]


def test_overwrite_replaces_the_plate(tmp_path):
    make_plate(tmp_path, wells=("B03",), fov_grid=(1, 1), levels=1)
    plate = make_plate(
        tmp_path, wells=("C07",), fov_grid=(1, 1), levels=1, overwrite=True
    )
    reopened = ngio.open_ome_zarr_plate(plate.plate_url)
    assert reopened.rows == ["C"] and reopened.columns == ["07"]
    assert not (Path(plate.plate_url) / "B").exists()


def test_overwrite_never_replaces_something_that_is_not_zarr(tmp_path):
    precious = tmp_path / "sample.zarr"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(AlreadyExistsError, match="not a Zarr group"):
        make_plate(tmp_path, fov_grid=(1, 1), overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_existing_image_is_kept_without_overwrite(tmp_path):
    url = make_image(tmp_path / "img.zarr", levels=1)
    with pytest.raises(FileExistsError, match=r"img\.zarr already exists"):
        make_image(tmp_path / "img.zarr", levels=1)
    url = make_image(tmp_path / "img.zarr", fov_grid=(2, 1), levels=1, overwrite=True)
    assert ngio.open_ome_zarr_container(url).get_image().shape == (2, 2 * FOV, FOV)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"wells": ("B3x",)}, r"'B3x'"),
        ({"wells": ("B03", "B03")}, r"B03 more than once"),
        ({"fov_grid": (0, 2)}, r"fov_grid must be two positive integers"),
        ({"z_planes": 0}, r"z_planes must be an integer >= 1"),
        ({"ngff_version": "0.6"}, r"'0.6'"),
        ({"levels": 0}, r"levels must be between 1 and 10"),
        ({"acquisitions": 0}, r"acquisitions must be >= 1"),
        ({"plate_name": "../escape.zarr"}, r"plate_name must be a plain name"),
    ],
)
def test_bad_options_are_rejected_before_writing(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        make_plate(tmp_path, **options)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Known shifts between acquisitions (registration ground truth)


def fov_content(image: SampleImage, fov_index: int, grid=(1, 2)):
    """(channels, label) of one FOV of one image, spatial axes kept."""
    container = ngio.open_ome_zarr_container(image.zarr_url)
    window = fov_windows(grid)[fov_index]
    pixels = container.get_image().get_as_numpy()
    label = container.get_label("nuclei").get_as_numpy()
    return pixels[(Ellipsis, *window)], label[(Ellipsis, *window)]


def overlap(displacement: tuple[int, ...], size: int = FOV):
    """Windows (moved, reference) of the last two axes for a whole-pixel (dy, dx)."""
    moved = tuple(slice(max(d, 0), size + min(d, 0)) for d in displacement)
    reference = tuple(slice(max(-d, 0), size + min(-d, 0)) for d in displacement)
    return moved, reference


@pytest.fixture(scope="module")
def shifted_plate(tmp_path_factory) -> SamplePlate:
    return make_plate(
        tmp_path_factory.mktemp("shifted"),
        wells=("B03", "C05"),
        acquisitions=3,
        fov_grid=(1, 2),
        levels=2,
        shifts={
            (1, 0): (7, -45),  # whole pixels, every well
            (1, 1): (0.37, -2.61),  # sub-pixel
            (2, 0): (-41.25, 52.5),
            ("C05", 2, 0): (3, 4),  # this well only
        },
        artefacts=[(2, 1)],
    )


@pytest.fixture(scope="module")
def shifted_stack_plate(tmp_path_factory) -> SamplePlate:
    return make_plate(
        tmp_path_factory.mktemp("shifted3d"),
        wells=("B03",),
        acquisitions=2,
        fov_grid=(1, 2),
        z_planes=5,
        levels=1,
        shifts={(1, 0): (1, -3, 44), (1, 1): (0.4, 2.5, -1.75)},
        empty_fovs=(),
    )


def test_default_plates_have_zero_truth_for_every_fov(plate_05):
    assert set(plate_05.truth) == {
        (well, acquisition, "FOV_1") for well in ("B03", "B04") for acquisition in (0, 1)
    }
    zero = FovTruth((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    assert set(plate_05.truth.values()) == {zero}


def test_truth_is_the_negative_displacement_in_pixels_and_micrometers(shifted_plate):
    truth = shifted_plate.truth
    assert len(truth) == 2 * 3 * 2
    assert truth[("B03", 1, "FOV_1")] == FovTruth(
        displacement_px=(0.0, 7.0, -45.0),
        translation_px=(0.0, -7.0, 45.0),
        translation_um=(0.0, -7.0 * PIXEL, 45.0 * PIXEL),
    )
    assert truth[("B03", 1, "FOV_2")].translation_px == (0.0, -0.37, 2.61)
    assert truth[("B03", 2, "FOV_1")].translation_px == (0.0, 41.25, -52.5)
    # A per-well key wins over the general one.
    assert truth[("C05", 2, "FOV_1")].translation_px == (0.0, -3.0, -4.0)
    assert truth[("C05", 1, "FOV_1")].translation_px == (0.0, -7.0, 45.0)
    # The reference and unshifted FOVs: zeros; the artefact is flagged.
    assert truth[("B03", 0, "FOV_2")].translation_um == (0.0, 0.0, 0.0)
    assert truth[("B03", 2, "FOV_2")].artefact and truth[("C05", 2, "FOV_2")].artefact
    assert not truth[("B03", 1, "FOV_2")].artefact


def test_whole_pixel_shift_moves_every_channel_and_label_exactly(shifted_plate):
    images = {(i.well, i.acquisition): i for i in shifted_plate.images}
    for well, acquisition, (dy, dx) in (("B03", 1, (7, -45)), ("C05", 2, (3, 4))):
        reference_pixels, reference_label = fov_content(images[(well, 0)], 0)
        pixels, label = fov_content(images[(well, acquisition)], 0)
        moved, kept = overlap((dy, dx))
        np.testing.assert_array_equal(pixels[(slice(None), *moved)], reference_pixels[(slice(None), *kept)])
        np.testing.assert_array_equal(label[moved], reference_label[kept])
        # What enters the field from beyond the real sample is real-looking
        # (mirrored) nuclei, but unlabelled.
        entering = np.ones((FOV, FOV), bool)
        entering[moved] = False
        assert pixels[0][entering].std() > 1000
        assert not label[entering].any()
        # The ROI table is that of the reference: the ROI stays, the content moves.
        container = ngio.open_ome_zarr_container(images[(well, acquisition)].zarr_url)
        assert [r.name for r in container.get_roi_table("FOV_ROI_table").rois()] == ["FOV_1", "FOV_2"]


def test_sub_pixel_shift_is_a_band_limited_shift_and_registration_recovers_it(shifted_plate):
    from fractal_roi_tasks.registration import estimate_shift

    images = {(i.well, i.acquisition): i for i in shifted_plate.images}
    for well, acquisition, fov in (("B03", 1, 1), ("B03", 2, 0), ("C05", 1, 1)):
        reference, _ = fov_content(images[(well, 0)], fov)
        moving, label = fov_content(images[(well, acquisition)], fov)
        truth = shifted_plate.truth[(well, acquisition, f"FOV_{fov + 1}")]
        for channel in (0, 1):
            estimate = estimate_shift(reference[channel], moving[channel])
            assert np.abs(np.array(estimate.shift) - truth.translation_px[1:]).max() < 0.02
        # Close to an independent interpolation (quintic spline) in the interior.
        dy, dx = truth.displacement_px[1:]
        spline = ndimage.shift(reference[0].astype(float), (dy, dx), order=5, mode="mirror")
        inner = (slice(60, -60), slice(60, -60))
        difference = np.abs(spline[inner] - moving[0][inner])
        assert np.median(difference) < 0.002 * 65535
        # Labels follow the rounded displacement (halves up).
        whole = (math.floor(dy + 0.5), math.floor(dx + 0.5))
        moved, kept = overlap(whole)
        _, reference_label = fov_content(images[(well, 0)], fov)
        np.testing.assert_array_equal(label[moved], reference_label[kept])


def test_artefact_is_a_saturated_blob_in_one_acquisition(shifted_plate):
    images = {(i.well, i.acquisition): i for i in shifted_plate.images}
    spoiled, _ = fov_content(images[("B03", 2)], 1)
    clean, _ = fov_content(images[("B03", 1)], 1)
    saturated = spoiled[0] == 65535
    # At least the 30 px disk, a little more where the nuclei are bright.
    yy, xx = np.mgrid[:FOV, :FOV]
    disk = np.hypot(yy - 0.35 * FOV, xx - 0.65 * FOV) <= 30
    assert saturated[disk].all()
    assert saturated.sum() < 1.5 * disk.sum()
    assert (clean[0] == 65535).sum() < 50  # the real image's own brightest pixels
    np.testing.assert_array_equal(spoiled[1], fov_content(images[("B03", 0)], 1)[0][1])


def test_3d_shift_with_whole_and_fractional_planes(shifted_stack_plate):
    from fractal_roi_tasks.registration import estimate_shift

    reference_image, acquisition = shifted_stack_plate.images
    assert shifted_stack_plate.truth[("B03", 1, "FOV_1")].translation_um == (-1.0, 3 * PIXEL, -44 * PIXEL)
    # Whole pixels and planes: plane k of the moved stack is plane k - 1 of
    # the reference (the stack continues beyond its planes with more blur).
    reference_pixels, reference_label = fov_content(reference_image, 0)
    pixels, label = fov_content(acquisition, 0)
    moved, kept = overlap((-3, 44))
    np.testing.assert_array_equal(pixels[(slice(None), slice(1, 5), *moved)], reference_pixels[(slice(None), slice(0, 4), *kept)])
    np.testing.assert_array_equal(label[(slice(1, 5), *moved)], reference_label[(slice(0, 4), *kept)])
    # Fractional planes: the registration finds dz too.
    reference_pixels, _ = fov_content(reference_image, 1)
    pixels, _ = fov_content(acquisition, 1)
    estimate = estimate_shift(reference_pixels[0], pixels[0])
    expected = shifted_stack_plate.truth[("B03", 1, "FOV_2")].translation_px
    assert np.abs(np.array(estimate.shift) - expected).max() < 0.05


def test_empty_fovs_and_noise(tmp_path):
    plate = make_plate(
        tmp_path, wells=("B03",), acquisitions=2, fov_grid=(1, 2), levels=1,
        empty_fovs=(1,), noise=100.0, seed=7,
    )
    first, second = plate.images
    for image in plate.images:
        pixels, label = fov_content(image, 1)
        assert not label.any()
        for channel in pixels:
            assert 900 < channel.mean() < 1100 and 80 < channel.std() < 120
        assert plate.truth[(image.well, image.acquisition, "FOV_2")].empty
    # Noise is independent per acquisition (seeded by seed, well, acquisition,
    # FOV and channel).
    a, _ = fov_content(first, 0)
    b, _ = fov_content(second, 0)
    assert 80 < (a.astype(float) - b).std() / np.sqrt(2) < 120


def test_random_shifts_feed_make_plate(tmp_path):
    shifts = random_shifts(acquisitions=2, n_fovs=1, max_shift_px=50.0, max_shift_z=1.0, seed=3)
    assert set(shifts) == {(1, 0)} and abs(shifts[(1, 0)][0]) <= 1
    assert random_shifts(acquisitions=2, n_fovs=1, seed=3) == random_shifts(acquisitions=2, n_fovs=1, seed=3)
    flat = random_shifts(acquisitions=2, n_fovs=1, max_shift_px=50.0, seed=3)
    assert flat[(1, 0)][0] == 0.0
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2, fov_grid=(1, 1), levels=1, shifts=flat)
    assert plate.truth[("B03", 1, "FOV_1")].displacement_px == flat[(1, 0)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shifts": {(0, 0): (1, 1)}}, r"acquisition must be 1..1 \(acquisition 0 is the reference\)"),
        ({"shifts": {(1, 4): (1, 1)}}, r"fov_index must be 0..3"),
        ({"shifts": {(1, 0): (1, 1, 1)}}, r"a 2D plate cannot move in z"),
        ({"shifts": {(1, 0): (300, 0)}}, r"below 256 px"),
        ({"shifts": {(1, 0): (1,)}}, r"\(dy, dx\) or \(dz, dy, dx\)"),
        ({"shifts": {("Z09", 1, 0): (1, 1)}}, r"'Z09', which is not among the plate's wells \(B03, B04\)"),
        ({"shifts": {(1,): (1, 1)}}, r"keys are \(acquisition, fov_index\)"),
        ({"artefacts": [(2, 0)]}, r"acquisition must be 0..1"),
        ({"empty_fovs": (7,)}, r"empty_fovs must hold FOV indices 0..3"),
        ({"noise": -1.0}, r"noise must be"),
        ({"seed": -1}, r"seed must be"),
    ],
)
def test_bad_registration_options_are_rejected_before_writing(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        make_plate(tmp_path, acquisitions=2, **options)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# Shifted fields (pure helpers)


def test_sample_fov_with_zero_displacement_is_the_plate_fov(stack_plate):
    container = ngio.open_ome_zarr_container(stack_plate.images[0].zarr_url)
    pixels = container.get_image().get_as_numpy()
    label = container.get_label("nuclei").get_as_numpy()
    for index, window in enumerate(fov_windows((1, 2))):
        for channel, name in enumerate(("DAPI", "GFP")):
            np.testing.assert_array_equal(
                sample_fov(index, (0.0, 0.0, 0.0), z_planes=5, channel=name),
                pixels[(channel, slice(None), *window)],
            )
        ids = sample_fov_labels(index, (0, 0, 0), z_planes=5)
        np.testing.assert_array_equal(np.where(ids > 0, ids + index * N_NUCLEI, 0), label[(slice(None), *window)])


def test_shifted_field_whole_pixels_are_exact_and_the_source_is_mirrored():
    source = load_source("coins")  # 303 x 384
    moved = shifted_field(source, (-20.0, 30.0), origin=(0, 0), shape=(100, 100))
    np.testing.assert_array_equal(moved[:80, 30:], source[20:100, 0:70])
    # Beyond the top-left corner the source continues as its mirror image.
    np.testing.assert_array_equal(moved[:, :30], source[20:120, 29::-1])


def test_shifted_field_sub_pixel_round_trip_and_direction():
    source = load_source("hubble_deep_field").astype(np.float64)
    there = shifted_field(source, (0.25, -0.5), origin=(200, 300), shape=(128, 128))
    # The content moves towards +y and -x: the centre of mass does too.
    blob = np.zeros((64, 64))
    blob[30:34, 30:34] = 1.0
    moved = shifted_field(blob, (0.25, -0.5), origin=(0, 0), shape=(64, 64))
    centre = ndimage.center_of_mass(moved)
    assert centre == pytest.approx((31.5 + 0.25, 31.5 - 0.5), abs=0.02)
    assert there.dtype == np.float64 and there.shape == (128, 128)


def test_shifted_stack_planes_follow_the_defocus_law():
    raw, _ = load_cardiomyocyte_nuclei()
    stack = shifted_field(raw, (0.5, 0.0, 0.0), z_planes=5)
    expected = ndimage.gaussian_filter(raw.astype(np.float32), 1.0 + abs(3 - 0.5 - 2))
    np.testing.assert_allclose(stack[3], expected, rtol=1e-6, atol=1e-2)
    with pytest.raises(ValueError, match=r"cannot be displaced in z"):
        shifted_field(raw, (0.5, 0.0, 0.0))


def test_noise_blob_and_background_helpers():
    image = np.full((64, 64), 20000, np.uint16)
    shot = add_noise(image, photons=100.0, seed=0)
    # 20000 grey values at 100 photons full scale: ~30 photons, sd ~ sqrt(30) photons.
    assert shot.std() == pytest.approx(20000 / np.sqrt(20000 / 65535 * 100), rel=0.1)
    assert np.array_equal(add_noise(image, read_noise=5, seed=[1, 2]), add_noise(image, read_noise=5, seed=[1, 2]))
    blob = add_saturated_blob(np.zeros((3, 100, 100), np.uint16), centre=(50, 50), radius_px=20)
    assert blob.shape == (3, 100, 100) and (blob[1] == 65535).sum() == pytest.approx(np.pi * 400, rel=0.05)
    empty = background_fov((2, 32, 32), level=500, read_noise=20, seed=1)
    assert empty.shape == (2, 32, 32) and abs(empty.mean() - 500) < 5


def test_the_public_names_are_importable_from_the_package():
    # sample_data was one module; it is a package now, and every name it offered
    # (and those of the old sample_tiles module) still imports from it.
    offered = {
        "CHANNELS", "FOV_SIZE_PX", "NUCLEI_LABEL", "PIXEL_SIZE_UM", "SOURCE_NAMES",
        "Z_SPACING_UM", "FovTruth", "SampleImage", "SamplePlate", "add_noise",
        "add_saturated_blob", "background_fov", "load_cardiomyocyte_nuclei", "load_source",
        "make_image", "make_plate", "random_shifts", "sample_fov", "sample_fov_labels",
        "shifted_field",
    }
    tiles = {"TILE_CHANNELS", "TileGrid", "converter_array", "make_tiled_plate", "tile_grid", "write_tiles"}
    timelapse = {"SampleTimelapse", "drift_path", "drifting_frames", "make_timelapse"}
    assert offered | tiles | timelapse == set(sample_data.__all__)
    assert all(hasattr(sample_data, name) for name in sample_data.__all__)


def test_a_sample_timelapse_drifts_along_its_path(tmp_path):
    """Frames, labels and the t scale of a time-lapse are what make_timelapse says."""
    import ngio

    from fractal_roi_tasks.registration.shift import estimate_shift
    from fractal_roi_tasks.sample_data.timelapse import drift_path, make_timelapse

    path = drift_path(4, step_px=0.0, slow_px=(0.0, 1.5, -2.0), jump=(3, (6.0, 3.0)))
    truth = make_timelapse(
        str(tmp_path / "tl.zarr"), path=path, size=192, blank_frames=(2,), time_interval_s=30.0
    )
    container = ngio.open_ome_zarr_container(truth.zarr_url)
    image = container.get_image()
    assert image.axes == ("t", "c", "y", "x") and image.shape == (4, 2, 192, 192)
    assert image.pixel_size.t == 30.0
    label = container.get_label("nuclei")
    assert label.axes == ("t", "y", "x")
    frames = np.asarray(image.get_array(c=0))
    # Frame 3 against frame 0: the registering shift is minus the displacement.
    measured = estimate_shift(frames[0].astype(float), frames[3].astype(float)).shift
    assert np.allclose(measured, -path[3], atol=0.05)
    assert frames[2].std() < 0.2 * frames[0].std()  # blank: background and noise only
    labels = np.asarray(label.get_array())
    dy, dx = (int(v) for v in np.rint(path[3]))
    assert np.array_equal(labels[3][20 + dy : 150 + dy, 20 + dx : 150 + dx], labels[0][20:150, 20:150])
