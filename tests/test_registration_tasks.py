"""Calculate Registration and Find Registration Consensus on plates with known shifts."""

import json
import math
import subprocess
import sys

import ngio
import numpy as np
import pytest

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.sample_data import make_plate
from fractal_roi_tasks.tasks.calculate_registration import calculate_registration
from fractal_roi_tasks.tasks.find_registration_consensus import find_registration_consensus
from fractal_roi_tasks.tasks.init_calculate_registration import init_calculate_registration
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus

DAPI = {"label": "DAPI"}
# Displacement (dz, dy, dx) of the content per (acquisition, FOV index): sub-pixel,
# one beyond 40 px, independently per FOV.
SHIFTS_2D = {
    (1, 0): (0, 3.37, -2.81),
    (1, 1): (0, -41.62, 44.25),
    (1, 2): (0, 0.5, 0.25),
    (1, 3): (0, 7.9, 1.1),
    (2, 0): (0, -1.73, 5.42),
    (2, 1): (0, 2.05, -0.66),
    (2, 2): (0, -12.31, -9.87),
    (2, 3): (0, 0.0, 0.0),
}


def run_registration(plate, **calc_args):
    urls = [img.zarr_url for img in plate.images]
    for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        calculate_registration(**item, channel=DAPI, **calc_args)
    for item in init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        find_registration_consensus(**item)
    return urls


def whole(pixels):
    """On a whole pixel, up to the float rounding of micrometers."""
    return abs(pixels - round(pixels)) < 1e-6


def table(url, name):
    return ngio.open_ome_zarr_container(url).get_roi_table(name).dataframe


@pytest.fixture(scope="module")
def shifted_plate(tmp_path_factory):
    plate = make_plate(
        tmp_path_factory.mktemp("reg2d"),
        wells=("B03",),
        acquisitions=3,
        shifts=SHIFTS_2D,
        noise=200.0,
        artefacts=[(2, 1)],
    )
    run_registration(plate)
    return plate


def test_translations_are_sub_pixel_exact(shifted_plate):
    px = shifted_plate.pixel_size_um
    errors = []
    for img in shifted_plate.images:
        if img.acquisition == 0:
            assert "translation_x" not in table(img.zarr_url, "FOV_ROI_table")
            continue
        frame = table(img.zarr_url, "FOV_ROI_table")
        for fov, row in frame.iterrows():
            truth = shifted_plate.truth[(img.well, img.acquisition, fov)]
            for axis, expected in zip("yx", truth.translation_um[1:]):
                errors.append(abs(row[f"translation_{axis}"] - expected) / px)
            assert row["translation_z"] == 0
            assert row["registration_quality"] > 0.5
    assert max(errors) <= 0.1, f"max error {max(errors):.3f} px"


def test_sign_follows_fractal_tasks_core(shifted_plate):
    # Content displaced by +3.37 px in y must get translation_y = -3.37 px.
    img = next(i for i in shifted_plate.images if i.acquisition == 1)
    row = table(img.zarr_url, "FOV_ROI_table").loc["FOV_1"]
    assert row["translation_y"] / shifted_plate.pixel_size_um == pytest.approx(-3.37, abs=0.1)
    assert row["translation_x"] / shifted_plate.pixel_size_um == pytest.approx(2.81, abs=0.1)


def test_consensus_geometry_is_exact(shifted_plate):
    px = shifted_plate.pixel_size_um
    images = {img.acquisition: img.zarr_url for img in shifted_plate.images}
    registered = {a: table(u, "FOV_ROI_table_registered") for a, u in images.items()}
    original = table(images[0], "FOV_ROI_table")
    for fov in original.index:
        translations = {a: np.array([0.0, 0.0]) for a in images}
        for a in (1, 2):
            translations[a] = np.array(
                [registered[a].loc[fov, "translation_y"], registered[a].loc[fov, "translation_x"]]
            ) / px
        lengths = {registered[a].loc[fov, "len_x_micrometer"] for a in images}
        assert len(lengths) == 1  # every acquisition reads the same shape
        for axis_index, axis in enumerate("yx"):
            s = original.loc[fov, f"{axis}_micrometer"] / px
            length = original.loc[fov, f"len_{axis}_micrometer"] / px
            t = [translations[a][axis_index] for a in images]
            seen_start, seen_end = s + max(t), s + length + min(t)
            ref_start = registered[0].loc[fov, f"{axis}_micrometer"] / px
            n = registered[0].loc[fov, f"len_{axis}_micrometer"] / px
            assert whole(ref_start) and whole(n)
            assert seen_start - 0.5 <= ref_start and ref_start + n <= seen_end + 0.5
            assert n >= (seen_end - seen_start) - 2  # at most ~1 px lost per side
            for a in images:
                start = registered[a].loc[fov, f"{axis}_micrometer"] / px
                assert whole(start)
                assert s <= start and start + n <= s + length  # inside the FOV
                # The region in acquisition a is the reference region moved back by t_a.
                assert abs(start - (ref_start - translations[a][axis_index])) <= 0.5 + 1e-9
                ref_col = registered[a].loc[fov, f"{axis}_micrometer_reference"] / px
                assert ref_col == pytest.approx(ref_start)


def test_background_fov_falls_back_to_the_median(tmp_path):
    first_cycle = {k: v for k, v in SHIFTS_2D.items() if k[0] == 1}
    plate = make_plate(
        tmp_path, wells=("B03",), acquisitions=2, shifts=first_cycle, noise=200.0, empty_fovs=[2]
    )
    run_registration(plate)
    moving = next(i for i in plate.images if i.acquisition == 1)
    computed = table(moving.zarr_url, "FOV_ROI_table")
    assert computed.loc["FOV_3", "registration_quality"] < 0.3
    registered = table(moving.zarr_url, "FOV_ROI_table_registered")
    assert registered.loc["FOV_3", "registration_fallback"] == 1
    assert registered.loc[["FOV_1", "FOV_2", "FOV_4"], "registration_fallback"].eq(0).all()
    others = computed.loc[["FOV_1", "FOV_2", "FOV_4"], "translation_y"]
    assert registered.loc["FOV_3", "translation_y"] == pytest.approx(others.median())


def test_3d_with_a_z_shift(tmp_path):
    shifts = {(1, 0): (1.0, 2.4, -3.6), (1, 1): (-1.0, -5.2, 0.7)}
    plate = make_plate(
        tmp_path, wells=("B03",), acquisitions=2, fov_grid=(1, 2), z_planes=5,
        shifts=shifts, noise=100.0,
    )
    run_registration(plate)
    moving = next(i for i in plate.images if i.acquisition == 1)
    frame = table(moving.zarr_url, "FOV_ROI_table")
    for fov, row in frame.iterrows():
        truth = plate.truth[(moving.well, 1, fov)].translation_um
        assert row["translation_z"] == pytest.approx(truth[0], abs=0.1 * 1.0)
        for axis, expected in zip("yx", truth[1:]):
            assert row[f"translation_{axis}"] == pytest.approx(expected, abs=0.1 * plate.pixel_size_um)
    registered = table(moving.zarr_url, "FOV_ROI_table_registered")
    assert (registered["len_z_micrometer"] > 0).all()


def calculate_only(plate):
    urls = [img.zarr_url for img in plate.images]
    for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        calculate_registration(**item, channel=DAPI)
    moving = next(i for i in plate.images if i.acquisition == 1)
    return moving, table(moving.zarr_url, "FOV_ROI_table")


def test_reading_roi_by_roi_gives_the_same_translations(tmp_path, monkeypatch):
    # The task reads the coarse level once per image and the windows of
    # several ROIs at once, concurrently; reading everything ROI by ROI and
    # one array at a time must give exactly the same numbers.
    from fractal_roi_tasks.io import registration_reads

    first_cycle = {k: v for k, v in SHIFTS_2D.items() if k[0] == 1}
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2, shifts=first_cycle, noise=200.0)
    _, together = calculate_only(plate)
    monkeypatch.setattr(registration_reads, "_COARSE_BOX_BYTES", 0)
    monkeypatch.setattr(registration_reads, "_BATCH_ROIS", 1)
    monkeypatch.setattr(registration_reads, "_zarr_sync", None)
    _, one_by_one = calculate_only(plate)
    assert one_by_one.equals(together)


def test_without_a_coarse_level_the_rois_are_binned(tmp_path):
    first_cycle = {k: v for k, v in SHIFTS_2D.items() if k[0] == 1}
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2, shifts=first_cycle, noise=200.0, levels=1)
    moving, frame = calculate_only(plate)
    for fov, row in frame.iterrows():
        truth = plate.truth[(moving.well, 1, fov)].translation_um
        for axis, expected in zip("yx", truth[1:]):
            assert row[f"translation_{axis}"] == pytest.approx(expected, abs=0.1 * plate.pixel_size_um)


def test_rerunning_any_step_gives_the_same_tables(shifted_plate):
    urls = [img.zarr_url for img in shifted_plate.images]
    before = {u: (table(u, "FOV_ROI_table"), table(u, "FOV_ROI_table_registered")) for u in urls}
    run_registration(shifted_plate)
    for u in urls:
        pd_before, reg_before = before[u]
        assert table(u, "FOV_ROI_table").equals(pd_before)
        assert table(u, "FOV_ROI_table_registered").equals(reg_before)


def test_bad_inputs_name_what_exists(shifted_plate, tmp_path):
    ref = next(i for i in shifted_plate.images if i.acquisition == 0).zarr_url
    moving = next(i for i in shifted_plate.images if i.acquisition == 1).zarr_url
    init = {"reference_zarr_url": ref}
    with pytest.raises(NotFoundError, match=r"has channels \['DAPI', 'GFP'\]"):
        calculate_registration(zarr_url=moving, init_args=init, channel={"label": "RFP"})
    with pytest.raises(NotFoundError, match="ROI table 'nope' not found.*FOV_ROI_table"):
        calculate_registration(zarr_url=moving, init_args=init, channel=DAPI, roi_table="nope")
    with pytest.raises(NotFoundError, match="does not exist"):
        calculate_registration(
            zarr_url=moving, init_args={"reference_zarr_url": ref + "_gone"}, channel=DAPI
        )
    fresh = make_plate(tmp_path, wells=("B03",), acquisitions=2)
    urls = [i.zarr_url for i in fresh.images]
    item = init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"][0]
    with pytest.raises(NotFoundError, match="run Calculate Registration"):
        find_registration_consensus(**item)
    assert "FOV_ROI_table_registered" not in ngio.open_ome_zarr_container(urls[0]).list_tables()


def test_rois_that_do_not_match_are_refused(tmp_path):
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2)
    ref, moving = (i.zarr_url for i in plate.images)
    ome_zarr = ngio.open_ome_zarr_container(moving)
    fov = ome_zarr.get_roi_table("FOV_ROI_table")
    fewer = ngio.RoiTable(fov.rois()[:2])
    ome_zarr.add_table("FOV_ROI_table", fewer, overwrite=True)
    with pytest.raises(InvalidInputError, match=r"only in the reference \['FOV_3', 'FOV_4'\]"):
        calculate_registration(zarr_url=moving, init_args={"reference_zarr_url": ref}, channel=DAPI)


def test_compound_task_runs_as_a_fractal_server_runs_it(tmp_path):
    plate = make_plate(tmp_path / "p", wells=("B03",), acquisitions=2, shifts={(1, 0): (0, 2, 3)})
    urls = [i.zarr_url for i in plate.images]

    def run(module, args, name):
        args_path, out_path = tmp_path / f"{name}.args.json", tmp_path / f"{name}.out.json"
        args_path.write_text(json.dumps(args))
        subprocess.run(
            [sys.executable, "-m", f"fractal_roi_tasks.tasks.{module}",
             "--args-json", str(args_path), "--out-json", str(out_path)],
            check=True, capture_output=True,
        )
        return json.loads(out_path.read_text())

    init = run("init_calculate_registration", {"zarr_urls": urls, "zarr_dir": str(tmp_path)}, "i")
    (item,) = init["parallelization_list"]
    run("calculate_registration", {**item, "channel": DAPI}, "c")
    row = table(item["zarr_url"], "FOV_ROI_table").loc["FOV_1"]
    assert math.isclose(row["translation_x"] / plate.pixel_size_um, -3, abs_tol=0.1)


def run_consensus(urls, **consensus_args):
    for item in init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        find_registration_consensus(**item, **consensus_args)


def test_level_1_measures_in_level_1_pixels(tmp_path):
    first_cycle = {k: v for k, v in SHIFTS_2D.items() if k[0] == 1}
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2, shifts=first_cycle, noise=200.0)
    urls = [img.zarr_url for img in plate.images]
    for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        calculate_registration(**item, channel=DAPI, level="1")
    moving = next(i for i in plate.images if i.acquisition == 1)
    frame = table(moving.zarr_url, "FOV_ROI_table")
    level_1_px = 2 * plate.pixel_size_um
    for fov, row in frame.iterrows():
        truth = plate.truth[(moving.well, 1, fov)].translation_um
        for axis, expected in zip("yx", truth[1:]):
            # micrometers, whatever the level: the truth within a tenth of a level-1 pixel
            assert row[f"translation_{axis}"] == pytest.approx(expected, abs=0.1 * level_1_px)
    run_consensus(urls)
    registered = table(moving.zarr_url, "FOV_ROI_table_registered")
    assert all(whole(v / plate.pixel_size_um) for v in registered["x_micrometer"])


def test_well_roi_table_registers_the_whole_well(tmp_path):
    same = (0, -6.3, 4.7)  # the whole second cycle moved as one
    plate = make_plate(
        tmp_path, wells=("B03",), acquisitions=2, shifts={(1, n): same for n in range(4)}, noise=100.0
    )
    urls = [img.zarr_url for img in plate.images]
    for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        calculate_registration(**item, channel=DAPI, roi_table="well_ROI_table")
    moving = next(i for i in plate.images if i.acquisition == 1)
    frame = table(moving.zarr_url, "well_ROI_table")
    assert list(frame.index) == ["well_1"]
    truth = plate.truth[(moving.well, 1, "FOV_1")].translation_um
    for axis, expected in zip("yx", truth[1:]):
        assert frame.loc["well_1", f"translation_{axis}"] == pytest.approx(
            expected, abs=0.1 * plate.pixel_size_um
        )
    assert "translation_x" not in table(moving.zarr_url, "FOV_ROI_table")
    run_consensus(urls, roi_table="well_ROI_table")
    names = ngio.open_ome_zarr_container(moving.zarr_url).list_tables()
    assert "well_ROI_table_registered" in names and "FOV_ROI_table_registered" not in names


def test_a_roi_too_large_to_read_whole_is_measured_on_its_centre(tmp_path, monkeypatch, caplog):
    # A whole-well ROI of a large 3D well does not fit in memory at the coarse
    # level; here the bound is lowered so the 1024^2 sample well exceeds it.
    from fractal_roi_tasks.io import registration_reads

    same = (0, 5.4, -3.8)
    plate = make_plate(
        tmp_path, wells=("B03",), acquisitions=2, shifts={(1, n): same for n in range(4)}, noise=100.0
    )
    max_px = 150 * 150
    monkeypatch.setattr(registration_reads, "ROI_READ_BYTES", 4 * max_px)
    largest = []
    read_boxes = registration_reads.read_boxes

    def recording(reads, axes):
        pixels = read_boxes(reads, axes)
        largest.extend(p.size for p in pixels)
        return pixels

    monkeypatch.setattr(registration_reads, "read_boxes", recording)
    urls = [img.zarr_url for img in plate.images]
    with caplog.at_level("INFO", logger="fractal_roi_tasks.io.registration_reads"):
        for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
            calculate_registration(**item, channel=DAPI, roi_table="well_ROI_table")
    assert "is large: its shift is measured on its central" in caplog.text
    assert 0 < max(largest) <= max_px  # the whole well (1024^2, or 256^2 coarse) was never read
    moving = next(i for i in plate.images if i.acquisition == 1)
    frame = table(moving.zarr_url, "well_ROI_table")
    truth = plate.truth[(moving.well, 1, "FOV_1")].translation_um
    for axis, expected in zip("yx", truth[1:]):
        assert frame.loc["well_1", f"translation_{axis}"] == pytest.approx(
            expected, abs=0.1 * plate.pixel_size_um
        )


def test_a_custom_registered_roi_table_name(tmp_path):
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2, shifts={(1, 0): (0, 2, 3)})
    urls = [img.zarr_url for img in plate.images]
    for item in init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        calculate_registration(**item, channel=DAPI)
    run_consensus(urls, registered_roi_table="cycle_aligned")
    for url in urls:
        names = ngio.open_ome_zarr_container(url).list_tables()
        assert "cycle_aligned" in names and "FOV_ROI_table_registered" not in names
    moving = table(urls[1], "cycle_aligned")
    assert moving.loc["FOV_1", "translation_x"] / plate.pixel_size_um == pytest.approx(-3, abs=0.1)
    with pytest.raises(ValueError, match="registered_roi_table"):
        run_consensus(urls, registered_roi_table="../elsewhere")


def test_min_quality_decides_which_rois_fall_back(tmp_path):
    first_cycle = {k: v for k, v in SHIFTS_2D.items() if k[0] == 1}
    plate = make_plate(
        tmp_path, wells=("B03",), acquisitions=2, shifts=first_cycle, noise=200.0, empty_fovs=[2]
    )
    moving, computed = calculate_only(plate)
    urls = [img.zarr_url for img in plate.images]
    quality = computed["registration_quality"]
    assert quality["FOV_3"] < 0.3 < quality.drop("FOV_3").min()
    # Trust everything: the background FOV keeps its own (meaningless) translation.
    run_consensus(urls, min_quality=-1.0)
    registered = table(moving.zarr_url, "FOV_ROI_table_registered")
    assert registered["registration_fallback"].eq(0).all()
    assert registered.loc["FOV_3", "translation_y"] == computed.loc["FOV_3", "translation_y"]
    # A bound between the qualities of the good FOVs: exactly those below it fall back.
    ordered = quality.drop("FOV_3").sort_values()
    bound = float((ordered.iloc[0] + ordered.iloc[1]) / 2)
    run_consensus(urls, min_quality=bound)
    registered = table(moving.zarr_url, "FOV_ROI_table_registered")
    expected = (quality < bound).astype(float)
    assert registered["registration_fallback"].equals(expected.loc[registered.index])
    trusted = computed.loc[quality >= bound, "translation_x"]
    for fov in quality.index[quality < bound]:
        assert registered.loc[fov, "translation_x"] == pytest.approx(trusted.median())
    # Above every quality: nothing to fall back on, and nothing is written.
    with pytest.raises(InvalidInputError, match="below 1.0 .*lower min_quality"):
        run_consensus(urls, min_quality=1.0, registered_roi_table="never")
    assert "never" not in ngio.open_ome_zarr_container(moving.zarr_url).list_tables()
