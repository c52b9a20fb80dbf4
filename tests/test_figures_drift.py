"""The drift panels of the figure: the drift path against the truth, kymographs before/after correction.

Built on a real sample time-lapse drifting along a known path (12 frames of
128 x 128, a blank frame, a stage jump), run through Calculate Drift and Apply
Drift Correction.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ngio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import image as mpimg  # noqa: E402

from fractal_roi_tasks.cli import main  # noqa: E402
from fractal_roi_tasks.demo_timelapse import write_true_drift  # noqa: E402
from fractal_roi_tasks.figures import compose, panels  # noqa: E402
from fractal_roi_tasks.figures.drift import DRIFT_TRUTH_TABLE, KEYS, read_kymograph  # noqa: E402
from fractal_roi_tasks.figures.read import gather  # noqa: E402
from fractal_roi_tasks.io.drift_table import read_drift_shifts  # noqa: E402
from fractal_roi_tasks.sample_data.timelapse import drift_path, make_timelapse  # noqa: E402
from fractal_roi_tasks.tasks.apply_drift_correction import apply_drift_correction  # noqa: E402
from fractal_roi_tasks.tasks.calculate_drift import calculate_drift  # noqa: E402

DAPI = {"label": "DAPI"}
BLANK = (4,)
# A fast drift (1.5 px steps on 0.6 / -0.8 px a frame) and a stage jump at frame 7.
PATH = drift_path(12, step_px=1.5, slow_px=(0.0, 0.6, -0.8), jump=(7, (5.0, -4.0)), seed=2)


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """The time-lapse with its drift table, its true path and its corrected copy beside it."""
    folder = tmp_path_factory.mktemp("driftfig")
    sample = make_timelapse(str(folder / "movie.zarr"), path=PATH, size=128, blank_frames=BLANK)
    write_true_drift(sample)
    calculate_drift(zarr_url=sample.zarr_url, channel=DAPI)
    apply_drift_correction(zarr_url=sample.zarr_url, overwrite_input=False)
    return sample


def offsets(kymograph: np.ndarray, reference: int = 0, reach: int = 24) -> np.ndarray:
    """Per time point, the whole-pixel lag best aligning its row onto the reference row.

    The lag maximising the correlation of the two rows where they overlap (no wrap-around).
    """
    ref = kymograph[reference].astype(float)
    n = len(ref)
    out = []
    for row in kymograph.astype(float):
        scores = []
        for lag in range(-reach, reach + 1):
            a = row[max(0, lag) : n + min(0, lag)]
            b = ref[max(0, -lag) : n - max(0, lag)]
            a, b = a - a.mean(), b - b.mean()
            scores.append((a @ b) / (np.sqrt((a @ a) * (b @ b)) or 1.0))
        out.append(int(np.argmax(scores)) - reach)
    return np.array(out, dtype=float)


def test_the_drift_panels_are_made_and_the_path_is_the_table(movie):
    data = gather(movie.zarr_url)
    by_key = {panel.key: panel for panel in data.panels}
    assert [key for key in by_key if key in KEYS] == list(KEYS)
    assert not [key for key in data.missing if key.startswith("drift")]
    path = by_key["drift_path"].plot
    assert by_key["drift_path"].rgb is None
    shifts, frame = read_drift_shifts(ngio.open_ome_zarr_container(movie.zarr_url))
    np.testing.assert_array_equal(path.shift_px, shifts)
    np.testing.assert_array_equal(path.t, np.arange(12))
    assert path.axes == ("y", "x") and path.reference == 0
    np.testing.assert_array_equal(path.blank, frame["blank"].to_numpy(bool))
    assert np.flatnonzero(path.blank).tolist() == list(BLANK)
    assert np.flatnonzero(path.interpolated).tolist() == list(BLANK)
    # the truth the demo stores, in the table's sign (minus the content's displacement)
    np.testing.assert_allclose(path.true_px, -movie.displacement_px)
    assert "within 0.0" in by_key["drift_path"].title and "interpolated: t = 4" in by_key["drift_path"].title
    for key in KEYS[1:]:
        rgb = by_key[key].rgb
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        # the blank frame's rows carry the orange tick at the left edge, no other rows do
        ticked = np.all(rgb[:, 0] == panels.FLAG_RGB, axis=1)
        repeat = rgb.shape[0] // 12
        assert np.flatnonzero(ticked).tolist() == list(range(4 * repeat, 5 * repeat))


def test_the_kymograph_after_is_straight_and_the_one_before_follows_the_drift(movie):
    data = gather(movie.zarr_url)
    before, after = data.facts["kymograph_before"], data.facts["kymograph_after"]
    assert before.along_x.shape == after.along_x.shape == (12, 128)
    assert before.along_y.shape == after.along_y.shape == (12, 128)
    assert before.level == "0" and before.strip_px == 8
    measured = np.ones(12, bool)
    measured[list(BLANK)] = False
    for k, axis in enumerate("yx"):
        kymograph_before = getattr(before, f"along_{axis}")
        kymograph_after = getattr(after, f"along_{axis}")
        moved = offsets(kymograph_before)[measured]
        still = offsets(kymograph_after)[measured]
        truth = movie.displacement_px[measured, k]
        assert np.ptp(truth) > 8  # the path really moves along this axis
        # before: the streaks move with the content (the strip also sees other nuclei
        # come and go with the drift across it, so only roughly)
        assert np.ptp(moved) > 8 and np.corrcoef(moved, truth)[0, 1] > 0.9, (axis, moved, truth)
        # after: straight streaks
        assert np.abs(still).max() <= 1.0, (axis, still)
        assert np.std(still) < 0.1 * np.std(moved), axis


def test_kymograph_reads_a_coarser_level_of_a_larger_image(tmp_path, monkeypatch):
    from fractal_roi_tasks.figures import drift

    sample = make_timelapse(str(tmp_path / "big.zarr"), n_frames=3, size=128)
    monkeypatch.setattr(drift, "KYMOGRAPH_LEVEL", 64)
    kymograph = read_kymograph(ngio.open_ome_zarr_container(sample.zarr_url))
    assert kymograph.level == "1" and kymograph.along_x.shape == (3, 64)
    assert kymograph.strip_px == drift.MIN_STRIP_PX


def test_figure_command_draws_the_drift_panels(movie, tmp_path, capsys):
    out = tmp_path / "drift.png"
    assert main(["figure", movie.zarr_url, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out} (3 panels: drift_path, drift_kymograph_before, drift_kymograph_after)" in printed
    assert "not drawn: segment_to_rois" in printed and "not drawn: drift" not in printed
    width, height = compose.figure_size_px(3)
    assert mpimg.imread(out).shape[:2] == (height, width)
    # the folder holding the movie and its corrected copy: the same panels
    assert main(["figure", str(Path(movie.zarr_url).parent), "-o", str(out)]) == 0
    assert "(3 panels: drift_path, drift_kymograph_before, drift_kymograph_after)" in capsys.readouterr().out


def test_without_a_drift_table_or_a_corrected_image_the_figure_says_why(tmp_path, capsys):
    plain = make_timelapse(str(tmp_path / "plain.zarr"), path=PATH[:4], size=64)
    assert main(["figure", plain.zarr_url, "-o", str(tmp_path / "none.png")]) == 1
    err = capsys.readouterr().err
    assert "No panel can be made" in err and "drift table ('drift_table')" in err
    assert "run Calculate Drift" in err
    assert not (tmp_path / "none.png").exists()

    # a drift table but no true path and no corrected image: the path and the kymograph before
    calculate_drift(zarr_url=plain.zarr_url, channel=DAPI)
    container = ngio.open_ome_zarr_container(plain.zarr_url, mode="r")
    assert DRIFT_TRUTH_TABLE not in container.list_tables()
    out = tmp_path / "half.png"
    assert main(["figure", plain.zarr_url, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(2 panels: drift_path, drift_kymograph_before)" in printed
    assert "not drawn: drift_kymograph_after: no 'plain.zarr_drift_corrected' image" in printed
    assert "Apply Drift Correction with overwrite_input=False" in printed
    data = gather(plain.zarr_url)
    path = next(panel for panel in data.panels if panel.key == "drift_path")
    assert path.plot.true_px is None and "no true path known" in path.title


def test_3d_path_has_z(tmp_path):
    path_3d = np.array([[0, 0, 0], [1, 3, -2], [0, -4, 5], [-1, 2, 6], [1, -5, -3]], dtype=float)
    sample = make_timelapse(str(tmp_path / "stack.zarr"), path=path_3d, size=64, z_planes=4)
    write_true_drift(sample)
    calculate_drift(zarr_url=sample.zarr_url, channel=DAPI)
    data = gather(sample.zarr_url)
    path = data.facts["drift_path"]
    assert path.axes == ("z", "y", "x") and path.shift_px.shape == (5, 3)
    np.testing.assert_allclose(path.true_px, -path_3d)
    assert data.facts["kymograph_before"].along_x.shape == (5, 64)
    written = compose.save_panels(data.panels, tmp_path / "stack.png")
    assert mpimg.imread(written).shape[2] in (3, 4)
