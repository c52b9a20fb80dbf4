"""Calculate Drift on time-lapse images drifting along known paths (bundled real images)."""

import json
import weakref
from pathlib import Path

import ngio
import numpy as np
import pytest
import skimage.data
from pydantic import ValidationError

from fractal_roi_tasks.dev.peak_rss import run_task
from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.drift_table import (
    DRIFT_TABLE,
    DriftSource,
    drift_frame,
    read_drift_shifts,
    read_drift_source,
    write_drift_table,
)
from fractal_roi_tasks.sample_data.constants import PIXEL_SIZE_UM, Z_SPACING_UM
from fractal_roi_tasks.sample_data.timelapse import make_timelapse
from fractal_roi_tasks.tasks.calculate_drift import calculate_drift

DAPI = {"label": "DAPI"}
BLANK = (7,)


@pytest.fixture(scope="module")
def timelapse_2d(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("drift2d") / "tl.zarr")
    return make_timelapse(url, n_frames=20, size=192, blank_frames=BLANK, seed=3)


@pytest.fixture(scope="module")
def timelapse_3d(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("drift3d") / "tl3.zarr")
    return make_timelapse(url, n_frames=8, size=128, z_planes=6, seed=5)


def table(zarr_url, name=DRIFT_TABLE):
    return read_drift_shifts(ngio.open_ome_zarr_container(zarr_url), name)


def test_2d_shifts_equal_the_true_path_and_blank_frames_are_interpolated(timelapse_2d, caplog):
    with caplog.at_level("INFO", logger="fractal_roi_tasks.tasks.calculate_drift"):
        out = calculate_drift(zarr_url=timelapse_2d.zarr_url, channel=DAPI)
    assert "drift of 20 time points on 'DAPI'" in caplog.text
    assert "1 blank, 1 interpolated" in caplog.text
    assert "time point 7: drift interpolated (blank" in caplog.text
    assert out == {"image_list_updates": [{"zarr_url": timelapse_2d.zarr_url}]}
    shifts, frame = table(timelapse_2d.zarr_url)
    assert shifts.shape == (20, 2)
    assert frame["t"].tolist() == list(range(20))
    good = np.ones(20, dtype=bool)
    good[list(BLANK)] = False
    # The shift registering frame t onto frame 0 is minus the content's displacement.
    assert np.abs(shifts[good] + timelapse_2d.displacement_px[good]).max() < 0.05
    assert frame["blank"].tolist() == (~good).tolist()
    assert frame["interpolated"].tolist() == (~good).tolist()
    # Blank frame 7: linear in time between its good neighbours 6 and 8.
    np.testing.assert_allclose(shifts[7], (shifts[6] + shifts[8]) / 2, atol=1e-9)
    assert frame["reference"].tolist() == [True] + [False] * 19
    np.testing.assert_allclose(frame["time"], np.arange(20) * timelapse_2d.time_interval_s)
    for axis in ("y", "x"):
        np.testing.assert_allclose(
            frame[f"shift_{axis}_um"], frame[f"shift_{axis}_px"] * PIXEL_SIZE_UM, rtol=1e-6
        )
    assert (frame["quality"][good] > 0.5).all()


def test_rerun_overwrites_the_table_with_the_same_result(timelapse_2d):
    calculate_drift(zarr_url=timelapse_2d.zarr_url, channel=DAPI, drift_table="again")
    first, _ = table(timelapse_2d.zarr_url, "again")
    calculate_drift(zarr_url=timelapse_2d.zarr_url, channel=DAPI, drift_table="again")
    second, frame = table(timelapse_2d.zarr_url, "again")
    assert len(frame) == 20
    np.testing.assert_array_equal(first, second)


def test_a_coarser_level_gives_shifts_in_level_0_pixels(timelapse_2d):
    calculate_drift(zarr_url=timelapse_2d.zarr_url, channel=DAPI, level="1", drift_table="coarse")
    shifts, frame = table(timelapse_2d.zarr_url, "coarse")
    good = frame["blank"].to_numpy() == 0
    # At level 1 each pixel is two of level 0: unscaled shifts would be off by half the path.
    assert np.abs(timelapse_2d.displacement_px[good]).max() > 1.0
    assert np.abs(shifts[good] + timelapse_2d.displacement_px[good]).max() < 0.05
    np.testing.assert_allclose(frame["shift_x_um"], frame["shift_x_px"] * PIXEL_SIZE_UM, rtol=1e-6)


def test_another_reference_time_point_and_a_channel_by_wavelength_id(timelapse_2d):
    calculate_drift(
        zarr_url=timelapse_2d.zarr_url,
        channel={"wavelength_id": "A01_C01"},
        reference_time_point=10,
        drift_table="ref10",
    )
    shifts, frame = table(timelapse_2d.zarr_url, "ref10")
    truth = -(timelapse_2d.displacement_px - timelapse_2d.displacement_px[10])
    good = ~frame["blank"].to_numpy()
    assert frame["reference"].tolist() == [t == 10 for t in range(20)]
    assert np.abs(shifts[good] - truth[good]).max() < 0.05


def test_the_table_says_which_channel_level_and_reference_it_was_measured_on(timelapse_2d):
    calculate_drift(
        zarr_url=timelapse_2d.zarr_url,
        channel={"label": "GFP"},
        level="1",
        reference_time_point=3,
        max_step=4,
        drift_table="recorded",
    )
    ome_zarr = ngio.open_ome_zarr_container(timelapse_2d.zarr_url)
    source = read_drift_source(ome_zarr, "recorded")
    assert source == DriftSource(
        channel_label="GFP",
        wavelength_id="A02_C02",
        level="1",
        reference_mode="time_point",
        reference_time_point=3,
        max_step=4,
        time_steps=(1, 2, 4),
    )
    assert "measured on channel 'GFP' at level 1 against time point 3" in source.describe()
    # A user finds it in the table group's attributes (zarr v2 or v3), beside ngio's own.
    group = Path(timelapse_2d.zarr_url) / "tables" / "recorded"
    document = group / ".zattrs" if (group / ".zattrs").exists() else group / "zarr.json"
    attrs = json.loads(document.read_text())
    attrs = attrs.get("attributes", attrs)
    assert attrs["drift_source"]["channel_label"] == "GFP"
    assert attrs["type"] == "generic_table"
    assert ome_zarr.get_table("recorded").table_type() == "generic_table"


def test_a_table_without_its_source_reads_back_as_none(timelapse_2d):
    ome_zarr = ngio.open_ome_zarr_container(timelapse_2d.zarr_url)
    write_drift_table(ome_zarr, drift_frame(
        np.zeros((20, 2)), spacing_um=(1.0, 1.0), time_step=1.0, quality=np.ones(20),
        blank=np.zeros(20, bool), interpolated=np.zeros(20, bool), reference=0,
    ), "bare")
    assert read_drift_source(ome_zarr, "bare") is None
    with pytest.raises(InvalidInputError, match=r"No drift table 'missing'.*Run Calculate Drift"):
        read_drift_source(ome_zarr, "missing")


def test_3d_shifts_in_planes_and_micrometers(timelapse_3d):
    calculate_drift(zarr_url=timelapse_3d.zarr_url, channel=DAPI)
    shifts, frame = table(timelapse_3d.zarr_url)
    assert shifts.shape == (8, 3)
    error = np.abs(shifts + timelapse_3d.displacement_px)
    assert error[:, 1:].max() < 0.05  # y, x
    assert error[:, 0].max() < 0.1  # z, planes: 6 planes leave little focus detail
    np.testing.assert_allclose(frame["shift_z_um"], frame["shift_z_px"] * Z_SPACING_UM, rtol=1e-6)
    assert not frame["interpolated"].any()


def test_an_image_without_time_axis_is_refused_naming_its_axes(tmp_path):
    url = str(tmp_path / "still.zarr")
    ngio.create_ome_zarr_from_array(
        url, skimage.data.coins()[None], pixelsize=0.5, axes_names=("c", "y", "x"), levels=1
    )
    with pytest.raises(InvalidInputError, match=r"no time axis \(its axes are \('c', 'y', 'x'\)\)"):
        calculate_drift(zarr_url=url, channel={"wavelength_id": "x"})


def test_one_time_point_is_refused(tmp_path):
    sample = make_timelapse(str(tmp_path / "one.zarr"), n_frames=1, size=128)
    with pytest.raises(InvalidInputError, match=r"single time point \(t = 1\)"):
        calculate_drift(zarr_url=sample.zarr_url, channel=DAPI)


def test_bad_arguments_are_refused_clearly(timelapse_2d):
    url = timelapse_2d.zarr_url
    with pytest.raises(InvalidInputError, match=r"reference_time_point 20 is outside .* 0-19"):
        calculate_drift(zarr_url=url, channel=DAPI, reference_time_point=20)
    with pytest.raises(ValidationError, match="reference_time_point"):
        calculate_drift(zarr_url=url, channel=DAPI, reference_time_point=-1)
    with pytest.raises(NotFoundError, match=r"'Cy5' not found; the image has channels \['DAPI', 'GFP'\]"):
        calculate_drift(zarr_url=url, channel={"label": "Cy5"})
    with pytest.raises(NotFoundError, match=r"level '5' does not exist; the image has levels \['0', '1'\]"):
        calculate_drift(zarr_url=url, channel=DAPI, level="5")
    with pytest.raises(ValueError, match="drift_table"):
        calculate_drift(zarr_url=url, channel=DAPI, drift_table="../x")
    with pytest.raises(InvalidInputError, match="reference frame 7 cannot be used"):
        calculate_drift(zarr_url=url, channel=DAPI, reference_time_point=7)


def test_runs_as_a_fractal_server_runs_it(tmp_path):
    sample = make_timelapse(str(tmp_path / "server.zarr"), n_frames=6, size=128, seed=1)
    run = run_task("calculate_drift", {"zarr_url": sample.zarr_url, "channel": DAPI}, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.output == {"image_list_updates": [{"zarr_url": sample.zarr_url}]}
    shifts, _ = table(sample.zarr_url)
    assert np.abs(shifts + sample.displacement_px).max() < 0.05
    assert run.peak_rss_mib > 0


def test_only_the_chosen_channel_is_read_one_time_point_at_a_time(timelapse_2d, monkeypatch):
    image_class = type(ngio.open_ome_zarr_container(timelapse_2d.zarr_url).get_image())
    original = image_class.get_array
    reads = []
    given = []
    most_alive = []

    def recording(self, *args, **kwargs):
        reads.append((kwargs.get("c"), kwargs.get("t")))
        frame = original(self, *args, **kwargs)
        given[:] = [ref for ref in given if ref() is not None]
        given.append(weakref.ref(frame))
        most_alive.append(len(given))
        return frame

    monkeypatch.setattr(image_class, "get_array", recording)
    calculate_drift(
        zarr_url=timelapse_2d.zarr_url,
        channel={"label": "GFP"},
        drift_table="gfp",
        reference_time_point=5,
        max_step=4,
    )
    # Each time point once, the reference first, then in time order...
    assert reads == [(1, 5)] + [(1, t) for t in range(20) if t != 5]
    # ... and never more than the largest step + 2 time points held (of 20).
    assert max(most_alive) == 4 + 2
