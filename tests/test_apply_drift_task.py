"""Apply Drift Correction on sample time-lapses with a known drift: pixels, labels, pyramid, safety, errors."""

import json
import os
import shutil
import subprocess
import sys

import ngio
import numpy as np
import pytest
import skimage

from fractal_roi_tasks.drift.correction import common_region, frame_boxes, resample_frame
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io import swap
from fractal_roi_tasks.io.drift_table import (
    DriftSource,
    drift_frame,
    read_drift_shifts,
    read_drift_source,
    write_drift_table,
)
from fractal_roi_tasks.sample_data.timelapse import make_timelapse
from fractal_roi_tasks.tasks.apply_drift_correction import apply_drift_correction

pytestmark = pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric")

PATH_2D = np.array([[0, 0], [3, -2], [5, -6], [2, 4], [-4, 7], [-7, 1], [1, 9], [6, -3]], dtype=float)
PATH_3D = np.array([[0, 0, 0], [1, 3, -2], [0, -4, 5], [-1, 2, 6], [1, -5, -3], [0, 6, 1]], dtype=float)


def timelapse(root, path, *, z_planes=1, size=192, table_shifts=None):
    """A time-lapse drifting along `path` with the truth's drift table written into it."""
    sample = make_timelapse(str(root / "movie.zarr"), path=path, size=size, z_planes=z_planes)
    shifts = -sample.displacement_px if table_shifts is None else table_shifts
    ome_zarr = ngio.open_ome_zarr_container(sample.zarr_url)
    spacing = (1.0,) * shifts.shape[1]
    write_drift_table(ome_zarr, drift_frame(
        shifts, spacing_um=spacing, time_step=60.0, quality=np.ones(len(shifts)),
        blank=np.zeros(len(shifts), bool), interpolated=np.zeros(len(shifts), bool), reference=0,
    ))
    return sample


def arrays(url, level="0"):
    ome_zarr = ngio.open_ome_zarr_container(url)
    image = ome_zarr.get_image(path=level)
    label = ome_zarr.get_label("nuclei", path=level)
    return image.zarr_array[...], label.zarr_array[...]


def correlation(a, b):
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_common_region_and_boxes():
    shifts = np.array([[0.0, 0.0], [2.4, -3.0], [-1.0, 1.0]])
    region = common_region(shifts, (20, 30))
    assert region == (slice(2, 19), slice(1, 27))
    for (read, write), row in zip(frame_boxes(shifts, region), np.rint(shifts)):
        assert write == region
        assert [r.start for r in read] == [w.start - s for w, s in zip(write, row)]
        assert all(0 <= r.start and r.stop <= n for r, n in zip(read, (20, 30)))
    exact = common_region(shifts, (20, 30), subpixel=True)
    assert exact == (slice(3, 19), slice(1, 27))
    with pytest.raises(InvalidInputError, match="share no pixel"):
        common_region(np.array([[0.0], [25.0]]), (20,))


def test_resample_frame_matches_scipy_inside_and_is_zero_outside():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 4000, (32, 40)).astype(np.uint16)
    shift = np.array([1.25, -2.5])
    region = common_region(np.array([[0.0, 0.0], shift]), frame.shape, subpixel=True)
    out = resample_frame(frame, shift, region)
    expected = ndimage.shift(frame.astype(np.float32), shift, order=1)
    assert out.dtype == np.uint16
    np.testing.assert_allclose(out[region], np.rint(expected[region]), atol=0)
    mask = np.ones(frame.shape, bool)
    mask[region] = False
    assert not out[mask].any()


def check_corrected(url, sample, before_image, *, exact_labels=True):
    image, label = arrays(url)
    dims = sample.displacement_px.shape[1]
    region = common_region(-sample.displacement_px, image.shape[-dims:])
    outside = np.ones(label.shape[1:], bool)
    outside[region] = False
    for t in range(len(label)):
        if exact_labels:
            assert np.array_equal(label[t][region], label[0][region]), t
        assert not label[t][outside].any() and not image[t][:, outside].any(), t
        assert label[t][region].any()
    moved = [t for t in range(1, len(image)) if np.abs(sample.displacement_px[t]).max() >= 1]
    for t in moved:  # channel 0: the nuclei stain
        after = correlation(image[t, 0][region], image[0, 0][region])
        before = correlation(before_image[t, 0][region], before_image[0, 0][region])
        # What decorrelation the drift made, correction takes away for the most part.
        assert 1.0 - after < (1.0 - before) / 3.0, (t, before, after)
        assert after > 0.9, (t, after)
    return image, label, region


def test_2d_in_place_every_level_and_labels(tmp_path):
    sample = timelapse(tmp_path, PATH_2D)
    before, before_label = arrays(sample.zarr_url)
    result = apply_drift_correction(zarr_url=sample.zarr_url)
    assert result == {"image_list_updates": [{"zarr_url": sample.zarr_url}]}
    image, label, region = check_corrected(sample.zarr_url, sample, before)
    assert image.shape == before.shape and label.shape == before_label.shape
    # level 1 (built from level 0): the same common region, halved, and labels still agree there
    image_1, label_1 = arrays(sample.zarr_url, level="1")
    half = tuple(slice(-(-r.start // 2), r.stop // 2) for r in region)
    outside = np.ones(label_1.shape[1:], bool)
    outside[tuple(slice(r.start // 2, -(-r.stop // 2)) for r in region)] = False
    for t in range(len(label_1)):
        assert np.array_equal(label_1[t][half], label_1[0][half]), t
        assert not image_1[t][:, outside].any() and not label_1[t][outside].any(), t
    # running again on the corrected image changes nothing
    marker = swap.read_marker(sample.zarr_url)
    assert apply_drift_correction(zarr_url=sample.zarr_url) == result
    assert swap.read_marker(sample.zarr_url) == marker
    assert np.array_equal(arrays(sample.zarr_url)[0], image)


def test_3d_with_z_drift(tmp_path):
    sample = timelapse(tmp_path, PATH_3D, z_planes=4, size=128)
    before, _ = arrays(sample.zarr_url)
    apply_drift_correction(zarr_url=sample.zarr_url)
    image, label, region = check_corrected(sample.zarr_url, sample, before)
    assert region[0] == slice(1, 3)  # z drift of -1..+1 plane leaves planes 1-2 in every frame


def test_new_image_beside_a_plain_image_keeps_the_original(tmp_path):
    sample = timelapse(tmp_path, PATH_2D)
    before, before_label = arrays(sample.zarr_url)
    result = apply_drift_correction(zarr_url=sample.zarr_url, overwrite_input=False)
    target = sample.zarr_url + "_drift_corrected"
    assert result == {"image_list_updates": [{"zarr_url": target, "origin": sample.zarr_url}]}
    original, original_label = arrays(sample.zarr_url)
    assert np.array_equal(original, before) and np.array_equal(original_label, before_label)
    check_corrected(target, sample, before)
    assert apply_drift_correction(zarr_url=sample.zarr_url, overwrite_input=False) == result


def test_what_the_drift_was_measured_on_is_logged_and_kept_in_the_new_image(tmp_path, caplog):
    sample = timelapse(tmp_path, PATH_2D)
    ome_zarr = ngio.open_ome_zarr_container(sample.zarr_url)
    _, frame = read_drift_shifts(ome_zarr)
    source = DriftSource("DAPI", "A01_C01", "0", "time_point", 0, 8, (1, 2, 4))
    write_drift_table(ome_zarr, frame, source=source)
    with caplog.at_level("INFO", logger="fractal_roi_tasks.tasks.apply_drift_correction"):
        apply_drift_correction(zarr_url=sample.zarr_url, overwrite_input=False)
    assert "(measured on channel 'DAPI' at level 0 against time point 0)" in caplog.text
    corrected = ngio.open_ome_zarr_container(sample.zarr_url + "_drift_corrected")
    assert read_drift_source(corrected) == source


def test_labels_left_alone_when_asked(tmp_path, caplog):
    sample = timelapse(tmp_path, PATH_2D)
    _, before_label = arrays(sample.zarr_url)
    apply_drift_correction(zarr_url=sample.zarr_url, correct_labels=False)
    assert np.array_equal(arrays(sample.zarr_url)[1], before_label)
    assert "copied uncorrected" in caplog.text


def test_subpixel_resampling(tmp_path):
    sample = timelapse(tmp_path, None)  # the default path: sub-pixel random walk
    before, _ = arrays(sample.zarr_url)
    apply_drift_correction(zarr_url=sample.zarr_url, subpixel=True)
    image, label = arrays(sample.zarr_url)
    shifts = -sample.displacement_px
    region = common_region(shifts, image.shape[-2:], subpixel=True)
    outside = np.ones(image.shape[-2:], bool)
    outside[region] = False
    for t in range(1, len(image)):
        assert not image[t][:, outside].any() and not label[t][outside].any(), t
        after = correlation(image[t, 0][region], image[0, 0][region])
        assert after > correlation(before[t, 0][region], before[0, 0][region]), t
        # labels move by whole pixels; the content by exact shifts
        whole = np.rint(shifts[t]) == np.rint(-np.rint(sample.displacement_px[t]))
        if whole.all():
            assert np.array_equal(label[t][region], label[0][region]), t
    assert swap.read_marker(sample.zarr_url)["subpixel"] is True


def command(tmp_path, url, name):
    args_json = tmp_path / f"{name}.args.json"
    args_json.write_text(json.dumps({"zarr_url": url}))
    return [sys.executable, "-m", "fractal_roi_tasks.tasks.apply_drift_correction",
            "--args-json", str(args_json), "--out-json", str(tmp_path / f"{name}.out.json")]


@pytest.mark.parametrize("point,no_exchange", [("correcting", ""), ("built", ""), ("exchanged", ""),
                                                ("moved_away", "1")])
def test_killed_inside_the_build_then_rerun(tmp_path, point, no_exchange):
    sample = timelapse(tmp_path, PATH_2D[:5])
    url = sample.zarr_url
    before, before_label = arrays(url)
    env = {**os.environ, swap.CRASH_ENV: point, swap.NO_EXCHANGE_ENV: no_exchange}
    result = subprocess.run(command(tmp_path, url, point), env=env, capture_output=True)
    assert result.returncode == 1, result.stderr.decode()[-2000:]
    if point in ("correcting", "built"):  # not yet published: the original is untouched
        image, label = arrays(url)
        assert np.array_equal(image, before) and np.array_equal(label, before_label)
    apply_drift_correction(zarr_url=url)
    check_corrected(url, sample, before)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_errors_name_what_is_wrong(tmp_path):
    sample = timelapse(tmp_path, PATH_2D[:4])
    with pytest.raises(InvalidInputError, match=r"No drift table 'elsewhere'.*drift_table"):
        apply_drift_correction(zarr_url=sample.zarr_url, drift_table="elsewhere")
    ome_zarr = ngio.open_ome_zarr_container(sample.zarr_url)
    write_drift_table(ome_zarr, drift_frame(
        np.zeros((3, 2)), spacing_um=(1.0, 1.0), time_step=60.0, quality=np.ones(3),
        blank=np.zeros(3, bool), interpolated=np.zeros(3, bool), reference=0,
    ), "short")
    with pytest.raises(InvalidInputError, match="has 3 rows.*has 4 time points"):
        apply_drift_correction(zarr_url=sample.zarr_url, drift_table="short")
    write_drift_table(ome_zarr, drift_frame(
        np.zeros((4, 3)), spacing_um=(1.0, 1.0, 1.0), time_step=60.0, quality=np.ones(4),
        blank=np.zeros(4, bool), interpolated=np.zeros(4, bool), reference=0,
    ), "with_z")
    with pytest.raises(InvalidInputError, match="z shifts but .* no z axis"):
        apply_drift_correction(zarr_url=sample.zarr_url, drift_table="with_z")
    still = str(tmp_path / "still.zarr")
    ngio.create_ome_zarr_from_array(
        still, skimage.data.coins()[None], pixelsize=0.5, axes_names=("c", "y", "x"), levels=1
    )
    with pytest.raises(InvalidInputError, match=r"no time axis \(axes \('c', 'y', 'x'\)\)"):
        apply_drift_correction(zarr_url=still)
    assert swap.read_marker(sample.zarr_url) is None


def test_new_image_listed_in_its_well(tmp_path):
    plate = tmp_path / "plate.zarr"
    ngio.create_empty_plate(str(plate), "movie", images=[
        ngio.ImageInWellPath(row="B", column="03", path="0", acquisition_id=2)
    ], ngff_version="0.4")
    sample = make_timelapse(str(plate / "B" / "03" / "0"), path=PATH_2D[:4], size=128)
    write_drift_table(ngio.open_ome_zarr_container(sample.zarr_url), drift_frame(
        -sample.displacement_px, spacing_um=(1.0, 1.0), time_step=60.0, quality=np.ones(4),
        blank=np.zeros(4, bool), interpolated=np.zeros(4, bool), reference=0,
    ))
    before, _ = arrays(sample.zarr_url)
    result = apply_drift_correction(zarr_url=sample.zarr_url, overwrite_input=False)
    target = str(plate / "B" / "03" / "0_drift_corrected")
    assert result == {"image_list_updates": [{"zarr_url": target, "origin": sample.zarr_url}]}
    well = ngio.open_ome_zarr_well(str(plate / "B" / "03"))
    assert sorted(well.paths()) == ["0", "0_drift_corrected"]
    assert well.get_image_acquisition_id("0_drift_corrected") == 2
    check_corrected(target, sample, before)
