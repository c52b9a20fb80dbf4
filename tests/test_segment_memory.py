"""Segment to ROIs on a label image far bigger than its memory: peak RSS and exact tables."""

import ngio
import numpy as np
import pandas as pd

from fractal_roi_tasks.rois import extract_rois
from tests.peak_rss import baseline_rss_mib, run_task

SIZE = 8192  # uint32: 256 MiB of labels
CHUNK = 1024
STEP, SIDE, HOLE = 61, 40, 10  # 61 is prime to 1024: objects straddle every chunk border


def _tile(r0, c0, n):
    """Label values of rows [r0, r0+n) x cols [c0, c0+n) of the test image."""
    rows, cols = np.ogrid[r0 : r0 + n, c0 : c0 + n]
    ry, rx = rows % STEP, cols % STEP
    inside = (ry < SIDE) & (rx < SIDE)
    hole = (abs(ry - SIDE // 2) < HOLE // 2) & (abs(rx - SIDE // 2) < HOLE // 2)
    ids = (rows // STEP) * (SIZE // STEP + 1) + cols // STEP + 1 + 2**31
    labels = np.where(inside & ~hole, ids, 0).astype(np.uint32)
    # One object across the whole image: a frame 3 px wide.
    frame = (rows < 3) | (rows >= SIZE - 3) | (cols < 3) | (cols >= SIZE - 3)
    labels[np.broadcast_to(frame, labels.shape)] = 1
    return labels


def _write_label(url: str, name: str, dtype: str, tile) -> float:
    """A SIZE^2 image whose label `name` is written chunk by chunk from `tile(r, c, n)`; its MiB."""
    ome_zarr = ngio.create_empty_ome_zarr(
        url, shape=(SIZE, SIZE), pixelsize=0.5, axes_names=("y", "x"), levels=1,
        chunks=(CHUNK, CHUNK), dtype="uint8",
    )
    array = ome_zarr.derive_label(name, dtype=dtype, chunks=(CHUNK, CHUNK)).zarr_array
    for r in range(0, SIZE, CHUNK):
        for c in range(0, SIZE, CHUNK):
            array[r : r + CHUNK, c : c + CHUNK] = tile(r, c, CHUNK)
    return array.nbytes / 2**20


def test_blockwise_task_bounded_and_exact(tmp_path):
    url = str(tmp_path / "big.zarr")
    label_mib = _write_label(url, "cells", "uint32", _tile)

    base = baseline_rss_mib("segment_to_rois")
    run = run_task("segment_to_rois", {"zarr_url": url, "label_name": "cells"}, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    net = run.peak_rss_mib - base
    print(f"peak RSS {run.peak_rss_mib:.0f} MiB, baseline {base:.0f}, net {net:.0f}, labels {label_mib:.0f}")
    assert net < label_mib  # whole-array path would need ~18 bytes per pixel

    features = ngio.open_ome_zarr_container(url).get_table("cells_features").dataframe
    n_grid = (SIZE // STEP + 1) ** 2
    assert 1 in features.index
    assert len(features) > 0.9 * n_grid

    # The same objects, measured in memory on a corner that fits: equal bit for bit.
    corner = _tile(0, 0, 1500)
    whole = extract_rois(corner, spacing=(0.5, 0.5)).features.set_index("label")
    inner = whole[(whole["bbox_y_px"] + whole["bbox_len_y_px"] < 1500 - 1)
                  & (whole["bbox_x_px"] + whole["bbox_len_x_px"] < 1500 - 1)].drop(index=1, errors="ignore")
    assert len(inner) > 400
    got = features.loc[inner.index, inner.columns]
    pd.testing.assert_frame_equal(got, inner, check_exact=True, check_dtype=False,
                                  check_index_type=False)


def _crosses(r0, c0, n):
    """uint64 skeleton crosses (ids above 2**32) on a 61-px grid, and one line across the image."""
    rows, cols = np.ogrid[r0 : r0 + n, c0 : c0 + n]
    ry, rx = rows % STEP, cols % STEP
    arm = ((ry == SIDE // 2) & (rx < SIDE)) | ((rx == SIDE // 2) & (ry < SIDE))
    ids = (rows // STEP) * (SIZE // STEP + 1) + cols // STEP + 1 + 2**40
    labels = np.where(arm, ids, 0).astype(np.uint64)
    labels[np.broadcast_to(rows == SIZE - 2, labels.shape)] = 5  # spans every chunk of its row
    return labels


def test_skeleton_mode_object_by_object_bounded_and_exact(tmp_path):
    from fractal_roi_tasks.rois import extract_branches

    url = str(tmp_path / "skel.zarr")
    label_mib = _write_label(url, "skel", "uint64", _crosses)  # 512 MiB

    base = baseline_rss_mib("segment_to_rois")
    run = run_task("segment_to_rois", {"zarr_url": url, "label_name": "skel", "shape": "skeleton"}, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    net = run.peak_rss_mib - base
    print(f"skeleton: peak RSS {run.peak_rss_mib:.0f} MiB, net {net:.0f}, labels {label_mib:.0f}")
    # The whole-image path holds the labels, a padded copy and skan's graph
    # (> 2x the labels); this one about 9 chunks twice plus skan and numba.
    assert net < 1.5 * label_mib

    branches = ngio.open_ome_zarr_container(url).get_table("skel_branches").dataframe
    assert set(branches.loc[branches["label"] == 5, "branch_type"]) == {"tip-tip"}
    corner = _crosses(0, 0, 1500)
    corner[corner == 5] = 0
    whole = extract_branches(corner, spacing=(0.5, 0.5)).roi_set.features
    # crosses wholly inside the corner, away from its cut edges
    cut = set(np.unique(corner[1400:]).tolist()) | set(np.unique(corner[:, 1400:]).tolist())
    inner = set(np.unique(corner[:1400, :1400]).tolist()) - cut - {0}
    expected = whole[whole["label"].isin(inner)].reset_index(drop=True)
    got = branches[branches["label"].isin(inner)].reset_index(drop=True)
    got["branch_type"] = got["branch_type"].astype(object)  # stored as a categorical
    assert len(expected) > 4 * 300  # four branches per cross
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True, check_dtype=False)


def test_segmentation_mode_bounded_and_equal_to_the_in_memory_path(tmp_path, monkeypatch):
    """8192^2: 128 MiB of channel, 256 MiB of labels; the same labels and tables as in memory."""
    import shutil

    from fractal_roi_tasks.io import ngio_tables, pyramid, segment_image
    from fractal_roi_tasks.sample_data import make_plate
    from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois

    url = make_plate(tmp_path / "big", wells=("B03",), fov_grid=(16, 16)).images[0].zarr_url
    reference = str(tmp_path / "reference.zarr")
    shutil.copytree(url, reference)
    args = {"label_name": "seg", "segmentation": {"channel": {"label": "DAPI"}, "method": "otsu"}}

    base = baseline_rss_mib("segment_to_rois")
    run = run_task("segment_to_rois", {"zarr_url": url, **args}, tmp_path / "run")
    assert run.returncode == 0, run.stderr[-2000:]
    net = run.peak_rss_mib - base
    data_mib = 8192**2 * (2 + 4) / 2**20  # one uint16 channel + uint32 labels
    print(f"segmentation: peak RSS {run.peak_rss_mib:.0f} MiB, net {net:.0f}, channel + labels {data_mib:.0f}")
    assert net < data_mib  # the whole-channel path held the channel in float64 alone (512 MiB)

    # Today's in-memory path, in this process: whole reads, in-memory pyramid.
    for module in (ngio_tables, segment_image):
        monkeypatch.setattr(module, "WHOLE_READ_MAX_BYTES", 2**40)
    monkeypatch.setattr(pyramid, "IN_MEMORY_MAX_BYTES", 2**40)
    segment_to_rois(zarr_url=reference, **args)
    got, want = ngio.open_ome_zarr_container(url), ngio.open_ome_zarr_container(reference)
    assert len(got.level_paths) == 3
    for path in got.level_paths:
        a = got.get_label("seg", path=path).zarr_array
        b = want.get_label("seg", path=path).zarr_array
        for r in range(0, a.shape[-2], 2048):
            np.testing.assert_array_equal(a[..., r : r + 2048, :], b[..., r : r + 2048, :])
    pd.testing.assert_frame_equal(
        got.get_table("seg_features").dataframe, want.get_table("seg_features").dataframe,
        check_exact=True,
    )
