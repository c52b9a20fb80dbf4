"""Segment to ROIs on a time-lapse: per time point exactly what one time point alone gives."""

import ngio
import numpy as np
import pandas as pd
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io import ngio_tables
from fractal_roi_tasks.names import FOV_ROI_TABLE
from fractal_roi_tasks.sample_data.timelapse import make_timelapse
from fractal_roi_tasks.sample_data.writing import write_sample_channels
from fractal_roi_tasks.tasks import segment_to_rois as task_module
from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois

N_FRAMES = 3
DAPI = {"channel": {"wavelength_id": "A01_C01"}}


def tables(url, label_name="nuclei"):
    container = ngio.open_ome_zarr_container(url)
    names = [f"{label_name}_ROI_table", f"{label_name}_features", f"{label_name}_branches"]
    return {n: container.get_table(n).dataframe for n in names if n in container.list_tables()}


def one_time_point(timed_url, t, url):
    """The image of time point `t` alone, without a t axis (same pixels, label, FOV table)."""
    container = ngio.open_ome_zarr_container(timed_url)
    image = container.get_image()
    write_sample_channels(
        url,
        image.get_array(t=t),
        container.get_label("nuclei").get_array(t=t),
        chunk_yx=image.chunks[-2:],
        tables={FOV_ROI_TABLE: container.get_table(FOV_ROI_TABLE)},
        levels=container.levels,
        ngff_version="0.4",
        overwrite=False,
    )
    assert "t" not in ngio.open_ome_zarr_container(url).get_image().axes
    return url


@pytest.fixture(params=[1, 3], ids=["tcyx", "tczyx"])
def timelapse(tmp_path, request):
    """A drifting 3-frame time-lapse and, per frame, the same frame as a t-less image."""
    timed = make_timelapse(
        str(tmp_path / "timed.zarr"), n_frames=N_FRAMES, size=160, z_planes=request.param, seed=3
    ).zarr_url
    plain = [one_time_point(timed, t, str(tmp_path / f"t{t}.zarr")) for t in range(N_FRAMES)]
    return timed, plain


def rows_at(frame, t):
    """The rows of time point `t`, indexed by label, without the time columns: as without t."""
    rows = frame[frame["t"] == t].set_index("label").drop(columns=["t", "time_s"])
    rows.index.name = "label"
    return rows


def assert_rows_as_alone(timed_tables, plain_tables, t):
    for name, plain in plain_tables.items():
        timed = timed_tables[name]
        if name.endswith("_branches"):
            mine = timed[timed["t"] == t].drop(columns=["t"])
            assert list(mine.index) == [f"t{t}-{n}" for n in plain.index]
            mine.index = plain.index
        else:
            mine = rows_at(timed, t)
            assert list(timed.index[timed["t"] == t]) == [f"t{t}-{lab}" for lab in plain.index]
        mine = mine[[c for c in timed.columns if c in plain.columns and c in mine.columns]]
        pd.testing.assert_frame_equal(
            mine, plain[mine.columns], check_dtype=False, check_index_type=False, obj=name
        )
        assert sorted(mine.columns) == sorted(
            c for c in plain.columns if c not in ("t_second", "len_t_second")
        ), name


def test_each_time_point_gives_what_it_gives_alone(timelapse):
    timed, plain = timelapse
    segment_to_rois(zarr_url=timed, label_name="nuclei")
    found = tables(timed)
    assert found["nuclei_features"].index.is_unique and found["nuclei_ROI_table"].index.is_unique
    for t, url in enumerate(plain):
        segment_to_rois(zarr_url=url, label_name="nuclei")
        alone = tables(url)
        assert len(alone["nuclei_features"]) > 10
        assert_rows_as_alone(found, alone, t)
    features = found["nuclei_features"]
    assert sorted(set(features["t"])) == list(range(N_FRAMES))
    np.testing.assert_array_equal(features["time_s"], features["t"] * 60.0)
    masking = found["nuclei_ROI_table"]
    np.testing.assert_array_equal(masking["t_second"], masking["t"] * 60.0)
    np.testing.assert_array_equal(masking["len_t_second"], 60.0)


def test_masking_rois_read_back_through_ngio_at_their_time_point(timelapse):
    timed, _ = timelapse
    segment_to_rois(zarr_url=timed, label_name="nuclei", time_points=[1, 2])
    container = ngio.open_ome_zarr_container(timed)
    table = container.get_table("nuclei_ROI_table")
    label = container.get_label("nuclei")
    whole = label.get_array()
    rois = table.rois()
    assert {roi.model_extra["t"] for roi in rois} == {1, 2}
    for roi in rois[::15]:
        t = roi.model_extra["t"]
        patch = label.get_roi(roi)  # ngio slices t from the ROI's t slice
        assert patch.shape[0] == 1
        box = ngio_tables.roi_slices(label, roi, tuple(a for a in label.axes if a != "t"))
        np.testing.assert_array_equal(patch[0], whole[(t, *box)])
        assert roi.label in patch and roi.name == f"t{t}-{roi.label}"


def test_time_points_subset_and_one_roi_set_for_the_files(timelapse, monkeypatch):
    timed, plain = timelapse
    handed, contexts = [], []

    class Capture:
        EXTENSION = ".json"

        def write(self, path, roi_set, *, context):
            handed.append(roi_set)
            contexts.append(context)
            return path

    monkeypatch.setattr(task_module, "get_format", lambda name: Capture())
    segment_to_rois(zarr_url=timed, label_name="nuclei", time_points=[2, 0, 2], exports=["json"])
    (roi_set,) = handed
    features = tables(timed)["nuclei_features"]
    assert sorted(set(features["t"])) == [0, 2]
    assert [roi.name for roi in roi_set.rois] == list(features.index)
    assert {roi.t for roi in roi_set.rois} == {0, 2}
    assert all(roi.name == f"t{roi.t}-{roi.label}" for roi in roi_set.rois)
    assert list(roi_set.features["t"]) == [roi.t for roi in roi_set.rois]
    # the writers learn the image's time axis, not only the time points chosen
    time_keys = ("n_time_points", "time_spacing", "time_unit")
    assert [contexts[0][k] for k in time_keys] == [N_FRAMES, 60.0, "second"]

    handed.clear()
    contexts.clear()
    segment_to_rois(zarr_url=plain[0], label_name="nuclei", exports=["json"])
    (alone,) = handed
    assert all(roi.t is None for roi in alone.rois) and "t" not in alone.features
    assert [roi.name for roi in alone.rois] == [str(roi.label) for roi in alone.rois]
    assert not set(time_keys) & set(contexts[0])


def test_time_points_out_of_range_or_without_t_axis(timelapse):
    timed, plain = timelapse
    out_of_range = r"time_points \[3, 7\] out of range: the image has 3 time points \(indices 0-2\)"
    with pytest.raises(InvalidInputError, match=out_of_range):
        segment_to_rois(zarr_url=timed, label_name="nuclei", time_points=[0, 3, 7])
    with pytest.raises(InvalidInputError, match=r"time_points \[-1\] out of range"):
        segment_to_rois(zarr_url=timed, label_name="found", segmentation=DAPI, time_points=[-1])
    assert "found" not in ngio.open_ome_zarr_container(timed).list_labels()  # nothing written
    with pytest.raises(InvalidInputError, match=r"time_points is an empty list"):
        segment_to_rois(zarr_url=timed, label_name="nuclei", time_points=[])
    with pytest.raises(InvalidInputError, match=r"time_points \[0\] given, but the image has no t axis"):
        segment_to_rois(zarr_url=plain[0], label_name="nuclei", time_points=[0])
    assert "nuclei_ROI_table" not in ngio.open_ome_zarr_container(timed).list_tables()


def test_segmentation_writes_a_t_label_image_every_level_each_time_point_alone(timelapse):
    timed, plain = timelapse
    skeletons = {"segmentation": DAPI, "shape": "skeleton", "skeletonize": True}
    segment_to_rois(zarr_url=timed, label_name="found", **skeletons)
    container = ngio.open_ome_zarr_container(timed)
    found = tables(timed, "found")
    for t, url in enumerate(plain):
        segment_to_rois(zarr_url=url, label_name="found", **skeletons)
        alone = ngio.open_ome_zarr_container(url)
        for path in container.level_paths:
            level = container.get_label("found", path=path)
            assert level.axes[0] == "t" and level.shape[0] == N_FRAMES
            expected = alone.get_label("found", path=path).get_array()
            assert expected.max() > 10
            np.testing.assert_array_equal(level.get_array(t=t), expected)
        assert_rows_as_alone(found, tables(url, "found"), t)
    assert "mean_intensity" in found["found_features"] and "n_branches" in found["found_features"]


def test_segmentation_leaves_time_points_not_chosen_empty(tmp_path):
    timed = make_timelapse(str(tmp_path / "timed.zarr"), n_frames=N_FRAMES, size=128).zarr_url
    segment_to_rois(zarr_url=timed, label_name="found", segmentation=DAPI, time_points=[1])
    label = ngio.open_ome_zarr_container(timed).get_label("found").get_array()
    assert label[1].max() > 10 and not label[0].any() and not label[2].any()
    assert set(tables(timed, "found")["found_features"]["t"]) == {1}


@pytest.mark.parametrize("blocked", [False, True], ids=["whole", "blocked"])
def test_the_label_image_is_read_one_time_point_at_a_time(tmp_path, monkeypatch, blocked):
    timed = make_timelapse(str(tmp_path / "timed.zarr"), n_frames=4, size=128).zarr_url
    segment_to_rois(zarr_url=timed, label_name="nuclei")
    expected = tables(timed)
    reads = []
    read_spatial, block_reader = ngio_tables.read_spatial, ngio_tables.block_reader

    def spy_spatial(image_like, **selection):
        array, axes = read_spatial(image_like, **selection)
        reads.append((selection.get("t"), array.shape))
        return array, axes

    def spy_blocks(image_like, **selection):
        read, *rest = block_reader(image_like, **selection)

        def counted(z, rows, cols):
            block = read(z, rows, cols)
            reads.append((selection.get("t"), block.shape))
            return block

        return (counted, *rest)

    monkeypatch.setattr(ngio_tables, "read_spatial", spy_spatial)
    monkeypatch.setattr(ngio_tables, "block_reader", spy_blocks)
    if blocked:  # as for a label image bigger than memory: block by block
        monkeypatch.setattr(ngio_tables, "WHOLE_READ_MAX_BYTES", 0)
    segment_to_rois(zarr_url=timed, label_name="nuclei", time_points=[3, 1, 2])
    times = [t for t, _ in reads]
    assert set(times) == {1, 2, 3} and times == sorted(times)  # each time point done before the next
    if blocked:
        # each read one block of one plane of one time point
        assert len(reads) >= 3 and all(len(shape) == 2 and shape[0] <= 128 for _, shape in reads)
    else:
        assert reads == [(t, (128, 128)) for t in (1, 2, 3)]
    found = tables(timed)
    for name, frame in found.items():
        full = expected[name]
        pd.testing.assert_frame_equal(frame, full[full["t"] > 0], check_dtype=False, obj=name)
