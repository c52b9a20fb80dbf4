"""Stitch and Deduplicate on a mosaic several times larger than its memory bound.

The task runs in a child process as a Fractal server runs it. Its peak RSS
(the kernel's high-water mark of the child) on a large mosaic, less that on a
small one of the same tiles (the libraries: ngio, zarr, dask, scipy, which
the task imports when it runs), must stay several times below one channel of
the mosaic. The large run happens twice, once under a data cap (`RLIMIT_DATA`)
half a channel above what the small run needs, and both outputs must be
identical pixel for pixel, pyramid, labels and tables included.

The tiles are cut, one at a time, from the bundled retina image continued by
mirror symmetry, with noise, and labelled tile by tile (the brightest
tenth, smoothed): the test never holds a mosaic either.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import ngio
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage.measure import label as connected

from fractal_roi_tasks.sample_data import load_source

pytestmark = pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric")

MODULE = "stitch_and_dedup"
TILE = 1024  # px, one chunk per tile and channel
STEP = 870  # px between neighbours: 15% overlap
PIXEL_UM = 0.5
SMALL, LARGE = (2, 2), (9, 12)  # large: one uint16 channel 7.9k x 10.5k = 160 MiB
PROBE_TIMEOUT_S = 240  # the small mosaic runs in ~20 s; a probe slower than this is too tight
ARGS = {"level": "1", "max_shift_um": 4.0}  # placement on level 1: the fusion is what is measured


def mirrored(index: np.ndarray, size: int) -> np.ndarray:
    """``index`` folded into [0, size) by mirror symmetry (the source continued without edges)."""
    folded = np.mod(index, 2 * size)
    return np.where(folded < size, folded, 2 * size - 1 - folded)


def true_positions(grid) -> np.ndarray:
    """(N, 2) whole-pixel (y, x) of every tile in the mosaic: the nominal grid, off by a few px."""
    rows, columns = grid
    rng = np.random.default_rng(7)
    nominal = np.array([(r * STEP, c * STEP) for r in range(rows) for c in range(columns)], float)
    return nominal + rng.integers(-3, 4, nominal.shape) + 16


def write_tiles(url: str, grid) -> None:
    """Tiles side by side as a converter writes them, with a FOV table and stage positions."""
    source = load_source("retina").astype(np.float32)
    source = 1000 + 40000 * (source - source.min()) / np.ptp(source)
    threshold = float(np.percentile(ndimage.gaussian_filter(source, 2), 90))
    rows, columns = grid
    ome_zarr = ngio.create_empty_ome_zarr(
        store=url, shape=(2, rows * TILE, columns * TILE), pixelsize=PIXEL_UM,
        axes_names=("c", "y", "x"), levels=2, chunks=(1, TILE, TILE), dtype="uint16",
        channels_meta=["DAPI", "GFP"], overwrite=True,
    )
    image = ome_zarr.get_image().zarr_array
    label = ome_zarr.derive_label("regions", dtype="uint32").zarr_array
    rng = np.random.default_rng(11)
    table = []
    for index, (y, x) in enumerate(true_positions(grid).astype(int)):
        ys = mirrored(np.arange(y, y + TILE), source.shape[0])
        xs = mirrored(np.arange(x, x + TILE), source.shape[1])
        tile = source[np.ix_(ys, xs)]
        noisy = tile + rng.normal(0, 400, tile.shape).astype(np.float32)
        r, c = divmod(index, columns)
        where = (slice(r * TILE, (r + 1) * TILE), slice(c * TILE, (c + 1) * TILE))
        image[(0, *where)] = np.clip(noisy, 0, 65535).astype(np.uint16)
        image[(1, *where)] = np.clip(65535 - noisy, 0, 65535).astype(np.uint16)
        regions = ndimage.gaussian_filter(tile, 2) > threshold
        regions[np.arange(y, y + TILE) % 2000 < 6] = True  # lines across the mosaic: objects of many tiles
        label[where] = connected(regions).astype(np.uint32)
        stage = (r * STEP + 16, c * STEP + 16)  # the nominal grid: off by the few px
        table.append({
            "FieldIndex": f"FOV_{index + 1}",
            "x_micrometer": c * TILE * PIXEL_UM, "y_micrometer": r * TILE * PIXEL_UM,
            "z_micrometer": 0.0, "len_x_micrometer": TILE * PIXEL_UM,
            "len_y_micrometer": TILE * PIXEL_UM, "len_z_micrometer": 1.0,
            "x_micrometer_original": stage[1] * PIXEL_UM, "y_micrometer_original": stage[0] * PIXEL_UM,
        })
    ome_zarr.get_image().consolidate(mode="dask")
    ome_zarr.get_label("regions").consolidate(mode="dask")
    fov = ngio.RoiTable()
    fov.set_table_data(pd.DataFrame(table).set_index("FieldIndex"))
    ome_zarr.add_table("FOV_ROI_table", fov)


_MEASURE = """
import json, resource, sys
from pathlib import Path
from fractal_roi_tasks.dev.peak_rss import run_task
cap = int(sys.argv[4]) * 2**20
if cap:  # inherited by the task child
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
run = run_task(sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"returncode": run.returncode, "peak": run.peak_rss_mib, "stderr": run.stderr[-3000:]}))
"""


def measure(url: str, tmp_path: Path, cap_mib: int = 0, timeout_s: float | None = None) -> dict:
    """Peak RSS (MiB) of a fresh task child on ``url``, optionally under a data cap (MiB).

    Started from a small intermediate process: a forked child's peak RSS would
    count this (large) test process at the fork. The cap is `RLIMIT_DATA`
    (heap, anonymous memory, thread stacks; not the address space reserved
    but never touched), set in the intermediate and inherited by the task.
    """
    shutil.rmtree(url + "_stitched", ignore_errors=True)
    root = Path(__file__).resolve().parent.parent
    args = json.dumps({**ARGS, "zarr_url": url})
    process = subprocess.Popen(
        [sys.executable, "-c", _MEASURE, MODULE, args, str(tmp_path), str(cap_mib)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
        start_new_session=True,  # one group: a timeout kills the task child too
    )
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"returncode": None, "peak": None, "stderr": f"timed out after {timeout_s} s"}
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, "measure", out, err)
    return json.loads(out.strip().splitlines()[-1])


def smallest_cap(url: str, tmp_path: Path, start_mib: float, step_mib: int = 128) -> int:
    """The smallest cap, in steps from ``start_mib``, under which the task runs on ``url``.

    What the libraries and threads need on this machine: it varies with the
    number of cores, so the test finds it instead of assuming it.
    """
    cap = int(start_mib)
    for _ in range(12):
        # Just under its need, an allocation can fail in a library that retries
        # instead of raising (SuperLU spun for minutes): a slow run is too tight.
        if measure(url, tmp_path, cap, timeout_s=PROBE_TIMEOUT_S)["returncode"] == 0:
            return cap
        cap += step_mib
    raise AssertionError(f"the task did not run on {url} under a data cap of {cap} MiB")


def read_output(url: str) -> dict:
    new = ngio.open_ome_zarr_container(url + "_stitched")
    return {
        "image": new.get_image().zarr_array[...],
        "coarse": new.get_image(path="1").zarr_array[...],
        "label": new.get_label("regions").zarr_array[...],
        "fov": new.get_roi_table("FOV_ROI_table").dataframe,
        "masking": new.get_table("regions_ROI_table").dataframe,
    }


def test_peak_memory_bounded_by_tiles_and_output_identical_under_a_cap(tmp_path):
    small_url, large_url = str(tmp_path / "small.zarr"), str(tmp_path / "large.zarr")
    write_tiles(small_url, SMALL)
    write_tiles(large_url, LARGE)
    small = measure(small_url, tmp_path / "run_small")
    free = measure(large_url, tmp_path / "run_large")
    assert small["returncode"] == 0 and free["returncode"] == 0, small["stderr"] + free["stderr"]
    expected = read_output(large_url)
    channel_mib = expected["image"][0].nbytes / 2**20
    grown = free["peak"] - small["peak"]
    print(f"peak RSS {free['peak']:.0f} MiB on {expected['image'].shape}, {small['peak']:.0f} MiB on {SMALL} tiles")
    assert channel_mib > 150
    assert grown < channel_mib / 4, f"peak RSS grew by {grown:.0f} MiB; one channel is {channel_mib:.0f} MiB"
    masking = expected["masking"]
    assert len(masking) > 1000 and expected["label"].max() == len(masking)
    # The lines: objects across a whole row of tiles, one id each.
    assert (masking["len_x_micrometer"] > 3 * TILE * PIXEL_UM).any()

    # The large mosaic under what the small one needs plus half a channel: a
    # task holding a channel (or its float32 copy) would fail here.
    cap = smallest_cap(small_url, tmp_path / "probe", small["peak"] + 128) + int(channel_mib / 2)
    capped = measure(large_url, tmp_path / "run_capped", cap)
    assert capped["returncode"] == 0, capped["stderr"]
    got = read_output(large_url)
    for key in ("image", "coarse", "label"):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    for key in ("fov", "masking"):
        pd.testing.assert_frame_equal(got[key], expected[key])
