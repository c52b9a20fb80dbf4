"""Apply Registration to Image on an image several times larger than its memory bound.

The task runs in a child process as a Fractal server runs it; its peak RSS
(the kernel's high-water mark of its address space) on the large image, minus that on a small one
(the libraries it loads: ngio, zarr, dask, ~250 MiB, which the task module
imports only when it runs), must stay well below the size of one channel. The image is
written chunk band by chunk band from a formula, so the expected output is
computed band by band too and the test itself never holds a channel.
"""

import json
import subprocess
import sys
from pathlib import Path

import ngio
import numpy as np
import pandas as pd
import pytest

from fractal_roi_tasks.sample_data import make_plate

pytestmark = pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric")

MODULE = "apply_registration_to_image"
TABLE = "FOV_ROI_table_registered"
SIDE = 8192  # px: one uint16 channel is 128 MiB
GRID = 4  # ROIs per side
MARGIN = 16  # px: every ROI region is its field shrunk by this, so shifts stay inside
BAND = 512  # rows written / checked at once (one chunk row)


def pixels(channel: int, rows: slice, side: int) -> np.ndarray:
    """The source image: a deterministic pattern (compressible, never constant)."""
    y, x = np.ogrid[rows.start:rows.stop, 0:side]
    return ((y * 7 + x * 3 + channel * 1000) % 4093 + 1).astype(np.uint16)


def label_pixels(rows: slice, side: int) -> np.ndarray:
    y, x = np.ogrid[rows.start:rows.stop, 0:side]
    return ((y // 64) * (side // 64) + x // 64 + 1).astype(np.uint32) % 60000


def shift_of(index: int) -> tuple[int, int]:
    return ((index * 7) % 31 - 15, (index * 5) % 29 - 14)


def boxes(side: int):
    """Per ROI: (name, source y, x, reference y, x, length y, x) in pixels."""
    field = side // GRID
    out = []
    for index in range(GRID * GRID):
        y0, x0 = (index // GRID) * field + MARGIN, (index % GRID) * field + MARGIN
        dy, dx = shift_of(index)
        out.append((str(index), y0, x0, y0 + dy, x0 + dx, field - 2 * MARGIN, field - 2 * MARGIN))
    return out


def big_moving_image(tmp_path: Path, side: int) -> str:
    """A 2-cycle plate whose cycle 1 is replaced by a large image with a registered table."""
    plate = make_plate(tmp_path, wells=("B03",), acquisitions=2, fov_grid=(1, 1), levels=1)
    url = plate.images[1].zarr_url
    ome_zarr = ngio.create_empty_ome_zarr(
        store=url, shape=(2, side, side), pixelsize=0.5, axes_names=("c", "y", "x"), levels=4,
        chunks=(1, BAND, BAND), dtype="uint16", overwrite=True,
    )
    image = ome_zarr.get_image().zarr_array
    label = ome_zarr.derive_label("nuclei", dtype="uint32")
    for start in range(0, side, BAND):
        rows = slice(start, start + BAND)
        for channel in range(2):
            image[channel, rows, :] = pixels(channel, rows, side)
        label.zarr_array[rows, :] = label_pixels(rows, side)
    size = 0.5
    rows = []
    for name, sy, sx, ry, rx, ly, lx in boxes(side):
        rows.append({
            "FieldIndex": name, "x_micrometer": sx * size, "y_micrometer": sy * size,
            "z_micrometer": 0.0, "len_x_micrometer": lx * size, "len_y_micrometer": ly * size,
            "len_z_micrometer": 1.0, "translation_z": 0.0,
            "translation_y": (ry - sy) * size, "translation_x": (rx - sx) * size,
            "x_micrometer_reference": rx * size, "y_micrometer_reference": ry * size,
            "z_micrometer_reference": 0.0,
        })
    table = ngio.RoiTable()
    table.set_table_data(pd.DataFrame(rows).set_index("FieldIndex"))
    ome_zarr.add_table(TABLE, table, overwrite=True)
    return url


_MEASURE = """
import json, sys
from pathlib import Path
from fractal_roi_tasks.dev.peak_rss import baseline_rss_mib, run_task
run = run_task(sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"returncode": run.returncode, "peak": run.peak_rss_mib,
                  "baseline": baseline_rss_mib(sys.argv[1]), "stderr": run.stderr[-3000:]}))
"""


def measure(args: dict, tmp_path: Path) -> dict:
    """Peak RSS of the task child and of an import-only child, both in MiB.

    Started from a small intermediate process: a forked child's peak RSS
    counts its parent's memory at the fork, and this test process is large.
    """
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, MODULE, json.dumps(args), str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=root,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected_band(rows: slice, side: int, channel: int | None) -> np.ndarray:
    """The registered image (or label, channel None) in these rows: today's result."""
    out = np.zeros((rows.stop - rows.start, side), np.uint32 if channel is None else np.uint16)
    for _, sy, sx, ry, rx, ly, lx in boxes(side):
        low, high = max(rows.start, ry), min(rows.stop, ry + ly)
        if low >= high:
            continue
        source_rows = slice(low - ry + sy, high - ry + sy)
        band = label_pixels(source_rows, side) if channel is None else pixels(channel, source_rows, side)
        out[low - rows.start:high - rows.start, rx:rx + lx] = band[:, sx:sx + lx]
    return out


def test_peak_memory_far_below_one_channel(tmp_path):
    """Peak RSS grows far less than one channel from a small image to a large one.

    The reference is the same task on a 1024 x 1024 image (same libraries
    loaded, an empty-pyramid's worth of work): what the large image adds on
    top is the task's working memory. The former whole-array path added
    about 3.5 channels (~450 MiB here); blocks and the chunked pyramid 40-70 MiB.
    """
    args = {"registered_roi_table": TABLE, "overwrite_input": False}
    small = measure({**args, "zarr_url": big_moving_image(tmp_path / "small", 1024)}, tmp_path / "run_small")
    url = big_moving_image(tmp_path / "plate", SIDE)
    run = measure({**args, "zarr_url": url}, tmp_path / "run")
    assert small["returncode"] == 0 and run["returncode"] == 0, small["stderr"] + run["stderr"]
    channel_mib = SIDE * SIDE * 2 / 2**20
    grown = run["peak"] - small["peak"]
    print(f"peak RSS {run['peak']:.0f} MiB at {SIDE}^2 x 2, {small['peak']:.0f} MiB at 1024^2 x 2")
    assert grown < 0.75 * channel_mib, f"peak RSS grew by {grown:.0f} MiB; one channel is {channel_mib:.0f} MiB"
    new = ngio.open_ome_zarr_container(f"{url}_registered")
    image = new.get_image().zarr_array
    label = new.get_label("nuclei").zarr_array
    for start in range(0, SIDE, BAND):
        rows = slice(start, start + BAND)
        for channel in range(2):
            np.testing.assert_array_equal(image[channel, rows, :], expected_band(rows, SIDE, channel))
        np.testing.assert_array_equal(label[rows, :], expected_band(rows, SIDE, None))
    coarsest = new.get_image(path=new.level_paths[-1]).get_array()
    assert coarsest.shape == (2, SIDE // 8, SIDE // 8) and coarsest.any()
