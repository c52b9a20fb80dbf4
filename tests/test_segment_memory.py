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


def test_blockwise_task_bounded_and_exact(tmp_path):
    url = str(tmp_path / "big.zarr")
    ome_zarr = ngio.create_empty_ome_zarr(
        url, shape=(SIZE, SIZE), pixelsize=0.5, axes_names=("y", "x"), levels=1,
        chunks=(CHUNK, CHUNK), dtype="uint8",
    )
    label = ome_zarr.derive_label("cells", dtype="uint32", chunks=(CHUNK, CHUNK))
    array = label.zarr_array
    for r in range(0, SIZE, CHUNK):
        for c in range(0, SIZE, CHUNK):
            array[r : r + CHUNK, c : c + CHUNK] = _tile(r, c, CHUNK)
    label_mib = array.nbytes / 2**20

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
