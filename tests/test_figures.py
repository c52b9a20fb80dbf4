"""The overview figure: the demo writes it, `figure` redraws it, panels show the real outputs.

One demo run (module fixture) feeds every test here.
"""

import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import ngio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import image as mpimg  # noqa: E402

from fractal_roi_tasks import demo, demo_timelapse  # noqa: E402
from fractal_roi_tasks.cli import main  # noqa: E402
from fractal_roi_tasks.figures import compose, panels  # noqa: E402
from fractal_roi_tasks.figures.drift import KEYS as DRIFT_PANELS  # noqa: E402
from fractal_roi_tasks.figures.read import CROP, gather  # noqa: E402

ALL_PANELS = [
    "segment_to_rois", "registration_before", "registration_after", "stitch_mosaic",
    "stitch_seam_hard", "stitch_seam_blended", "stitch_labels_before", "stitch_labels_after",
]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("figdemo")
    assert main(["demo", str(target), "-j", "2"]) == 0
    return target


def _plates(demo_dir):
    """The two plates and the time-lapse."""
    return [str(demo_dir / demo.DEMO_PLATE_NAME), str(demo_dir / demo.DEMO_TILES_NAME),
            str(demo_timelapse.timelapse_path(demo_dir))]


def test_demo_writes_the_overview_and_figure_redraws_it(demo_dir, tmp_path, capsys):
    overview = demo_dir / demo.DEMO_FIGURE_NAME
    assert overview.is_file()
    width, height = compose.figure_size_px(len(ALL_PANELS))
    assert mpimg.imread(overview).shape[:2] == (height, width)
    # the time-lapse's drift panels: a figure of their own
    drift = demo_dir / demo_timelapse.DEMO_DRIFT_FIGURE_NAME
    width, height = compose.figure_size_px(len(DRIFT_PANELS))
    assert mpimg.imread(drift).shape[:2] == (height, width)

    out = tmp_path / "mine.png"
    width, height = compose.figure_size_px(len(ALL_PANELS) + len(DRIFT_PANELS))
    for paths in (_plates(demo_dir), [str(demo_dir)]):  # the plates and time-lapse, or their folder
        assert main(["figure", *paths, "-o", str(out)]) == 0
        printed = capsys.readouterr().out
        assert mpimg.imread(out).shape[:2] == (height, width)
        for key in (*ALL_PANELS, *DRIFT_PANELS):
            assert key in printed
        assert "not drawn" not in printed

    # only the HCS plate: the stitching panels cannot be made, and it says why
    assert main(["figure", _plates(demo_dir)[0], "-o", str(tmp_path / "hcs.png")]) == 0
    printed = capsys.readouterr().out
    assert "not drawn: stitch_and_dedup" in printed and "Stitch and Deduplicate" in printed


def test_panels_are_drawn_from_the_real_outputs(demo_dir):
    data = gather(*_plates(demo_dir))
    by_key = {panel.key: panel for panel in data.panels}
    assert sorted(by_key) == sorted([*ALL_PANELS, *DRIFT_PANELS])
    for panel in data.panels:
        if panel.key == "drift_path":  # a plot, drawn by compose
            assert panel.rgb is None and panel.plot.true_px is not None
            continue
        assert panel.rgb.dtype == np.uint8 and panel.rgb.shape[2] == 3

    # ROI outlines sit exactly on the label image's boundary pixels (holes included)
    roi = by_key["segment_to_rois"].rgb
    labels = data.facts["roi_labels"]
    assert roi.shape[:2] == labels.shape == (CROP, CROP)
    drawn = np.all(roi == panels.OUTLINE_RGB, axis=2)
    assert np.array_equal(drawn, panels.boundary_mask(labels))
    assert drawn.sum() > 1000
    assert f"nuclei: {int(data.facts['objects_nuclei'])}" in by_key["segment_to_rois"].title

    # registration: the overlay after is far better aligned than before
    def channel_correlation(rgb):
        return panels.correlation(rgb[..., 0], rgb[..., 1])

    before = channel_correlation(by_key["registration_before"].rgb)
    after = channel_correlation(by_key["registration_after"].rgb)
    assert after > before + 0.3 and after > 0.8

    # after de-duplication: one colour per object of the stitched label image
    dedup = data.facts["dedup_labels"]
    colours = np.unique(by_key["stitch_labels_after"].rgb.reshape(-1, 3), axis=0)
    n_objects = len(np.unique(dedup)) - 1
    assert len(colours) - 1 == n_objects  # black background
    stitched = Path(_plates(demo_dir)[1]) / "B" / "03" / "0_stitched"
    table = ngio.open_ome_zarr_container(str(stitched), mode="r").get_table("nuclei_ROI_table")
    assert n_objects == len(table.dataframe)
    # before: two tile colours, objects cut at the tile borders
    before_rgb = by_key["stitch_labels_before"].rgb.reshape(-1, 3)
    for colour in panels.TILE_COLOURS:
        assert np.all(before_rgb == colour, axis=1).sum() > 1000
    # the mosaic has its tile borders drawn
    assert np.all(by_key["stitch_mosaic"].rgb == panels.BORDER_RGB, axis=2).sum() > 500


def test_docs_generator_writes_every_page_picture(demo_dir, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_figures", Path(__file__).parents[1] / "docs" / "make_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.make_figures(demo_dir, tmp_path)
    assert sorted(written) == sorted(module.PAGES)
    for page, image in module.PAGE_IMAGES.items():
        assert (Path(__file__).parents[1] / "docs" / f"{page}.md").is_file()
        assert written[image].is_file() and written[image].stat().st_size < 200_000
        assert mpimg.imread(written[image]).shape[2] in (3, 4)


def test_without_matplotlib_the_commands_say_how_to_get_it(demo_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compose, "have_matplotlib", lambda: False)
    out = tmp_path / "none.png"
    assert main(["figure", *_plates(demo_dir), "-o", str(out)]) == 1
    assert compose.INSTALL_HINT in capsys.readouterr().err
    assert not out.exists()
