"""Calculate Registration on multiplexed time-lapse cycles: measured on one time point, all moved.

The plates are `make_plate` plates of two cycles with known whole-pixel
shifts, given a t axis afterwards (`add_time_axis`); frames are then made to
differ (divided by t + 1) or blanked (zeros) straight in every pyramid level,
so what each time point holds is known.
"""

import logging
import shutil

import ngio
import numpy as np
import pandas as pd
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io.registration_reads import BoxRead, read_boxes
from fractal_roi_tasks.sample_data import make_plate
from fractal_roi_tasks.tasks.apply_registration_to_image import apply_registration_to_image
from fractal_roi_tasks.tasks.calculate_registration import calculate_registration
from fractal_roi_tasks.tasks.find_registration_consensus import find_registration_consensus
from fractal_roi_tasks.tasks.init_calculate_registration import init_calculate_registration
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus
from tests.test_time_axis import add_time_axis

DAPI = {"wavelength_id": "A01_C01"}
REGISTERED = "FOV_ROI_table_registered"
SHIFTS = {(1, 0): (0, 3, -2), (1, 1): (0, -4, 5)}  # whole pixels: Apply's result is exact


@pytest.fixture(scope="module")
def base_plate(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    plate = make_plate(root, wells=("B03",), acquisitions=2, fov_grid=(1, 2), levels=2, shifts=SHIFTS)
    return root, plate


@pytest.fixture
def new_plate(base_plate, tmp_path):
    """``new_plate(name, frames=(reference, moving))``: a copy of the base plate with t axes."""
    root, plate = base_plate

    def make(name, frames=(None, None)):
        target = tmp_path / name
        shutil.copytree(root, target)
        urls = [img.zarr_url.replace(str(root), str(target)) for img in plate.images]
        for url, n in zip(urls, frames):
            if n is not None:
                add_time_axis(url, frames=n)
        return urls

    return make


def edit_frames(url, edit):
    """Replace frame t of every pyramid level by ``edit(t, frame)``."""
    container = ngio.open_ome_zarr_container(url)
    for path in container.level_paths:
        array = container.get_image(path=path).zarr_array
        for t in range(array.shape[0]):
            array[t] = edit(t, array[t])


def calculate(urls, **options):
    (item,) = init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]
    calculate_registration(**item, channel=DAPI, **options)
    return ngio.open_ome_zarr_container(urls[1]).get_roi_table("FOV_ROI_table").dataframe


def consensus(urls):
    for item in init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        find_registration_consensus(**item)


def test_a_blank_first_frame_is_flagged_and_time_point_1_recovers_the_shift(new_plate, base_plate, caplog):
    urls = new_plate("blank", frames=(2, 2))
    edit_frames(urls[1], lambda t, frame: np.zeros_like(frame) if t == 0 else frame)
    with caplog.at_level(logging.WARNING):
        blank = calculate(urls)
    assert (blank["registration_quality"] < 0.3).all(), blank["registration_quality"]
    assert "unreliable registration (no contrast in the moving image)" in caplog.text
    with pytest.raises(InvalidInputError, match="below"):
        consensus(urls)  # nothing trustworthy to build a consensus on

    found = calculate(urls, time_point=1)
    plate = base_plate[1]
    for fov, row in found.iterrows():
        truth = plate.truth[("B03", 1, fov)].translation_um
        for axis, expected in zip("yx", truth[1:]):
            assert row[f"translation_{axis}"] == pytest.approx(expected, abs=0.1 * plate.pixel_size_um)
        assert row["registration_quality"] > 0.5


def test_calculate_consensus_apply_move_every_time_point(new_plate):
    urls = new_plate("chain", frames=(3, 3))
    for url in urls:  # every time point holds other values, the same in both cycles
        edit_frames(url, lambda t, frame: frame // (t + 1))
    calculate(urls, time_point=2)
    consensus(urls)
    for url in urls:
        apply_registration_to_image(zarr_url=url, registered_roi_table=REGISTERED)
    reference, moving = (ngio.open_ome_zarr_container(u) for u in urls)
    ref_pixels, pixels = (c.get_image().get_array() for c in (reference, moving))
    assert pixels.shape[0] == 3 and not np.array_equal(pixels[0], pixels[1])
    for t in range(3):
        # inside the consensus region equal to the reference, zero outside in both
        assert (ref_pixels[t] > 0).mean() > 0.5
        np.testing.assert_array_equal(pixels[t], ref_pixels[t], err_msg=f"t={t}")
    np.testing.assert_array_equal(moving.get_label("nuclei").get_array(), reference.get_label("nuclei").get_array())


def test_one_time_point_gives_exactly_the_t_less_table(new_plate):
    plain = calculate(new_plate("plain"))
    timed = calculate(new_plate("timed", frames=(1, 1)), time_point=0)
    pd.testing.assert_frame_equal(timed, plain, check_exact=True)
    assert plain["registration_quality"].min() > 0.5


def test_a_time_point_that_does_not_exist_is_refused_with_the_count(new_plate):
    urls = new_plate("two", frames=(2, 2))
    with pytest.raises(InvalidInputError, match=r"time_point is 2, but the reference .* has 2 time points \(0 to 1\)"):
        calculate(urls, time_point=2)
    with pytest.raises(InvalidInputError, match=r"time_point is 1, but the reference .* has one time point \(0\)"):
        calculate(new_plate("plain"), time_point=1)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        calculate(urls, time_point=-1)
    before = ngio.open_ome_zarr_container(urls[1]).get_roi_table("FOV_ROI_table").dataframe
    assert "translation_x" not in before  # nothing was written


def test_cycles_with_different_time_points_are_refused(new_plate):
    urls = new_plate("uneven", frames=(2, 3))
    with pytest.raises(InvalidInputError, match=r"has 3 time points but its reference .* has 2"):
        calculate(urls)


class _OtherAxes:
    """An ngio image seen with an extra axis, so `read_boxes` reads it through ngio."""

    def __init__(self, image):
        self.image, self.axes = image, (*image.axes, "q")

    def get_array(self, **kwargs):
        return self.image.get_array(**kwargs)


def test_every_read_takes_one_time_point_on_both_read_paths(new_plate):
    urls = new_plate("paths", frames=(3, 3))
    edit_frames(urls[0], lambda t, frame: frame // (t + 1))
    image = ngio.open_ome_zarr_container(urls[0]).get_image()
    box = {"y": slice(100, 260), "x": slice(30, 400)}
    for t in range(3):
        expected = image.zarr_array[t, 0, 100:260, 30:400]
        reads = [BoxRead(image, 0, box, t), BoxRead(_OtherAxes(image), 0, box, t)]
        for pixels in read_boxes(reads, ("y", "x")):
            np.testing.assert_array_equal(pixels, expected, err_msg=f"t={t}")
    assert not np.array_equal(image.zarr_array[0, 0], image.zarr_array[1, 0])
