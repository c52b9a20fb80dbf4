"""Calculate Registration on an image several times larger than its memory bound.

The task runs in a child process as a Fractal server runs it. Its peak RSS
(the kernel's high-water mark of its address space) on a large well, minus
that on a small one (the libraries it loads), must stay well below one
channel of one acquisition: the task reads the coarse pyramid level (capped)
and one small window per ROI at full resolution, never a whole channel. The
images are written band by band from a smooth random texture, the moving one
displaced by a known whole-pixel shift, so every ROI's translation is known.
"""

import json
import subprocess
import sys
from pathlib import Path

import ngio
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from fractal_roi_tasks.io.pyramid import build_pyramid
from fractal_roi_tasks.sample_data import make_plate
from fractal_roi_tasks.tasks.init_calculate_registration import init_calculate_registration

pytestmark = pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric")

MODULE = "calculate_registration"
SIDE = 8192  # px: one uint16 channel of one acquisition is 128 MiB
GRID = 4  # ROIs per side
BAND = 512  # rows written at once (one chunk row)
BLOCK = 4  # px: the texture's grain
SHIFT = (5, -7)  # px (y, x): the moving image's content is displaced by this
PIXEL_UM = 0.5


def texture(side: int) -> np.ndarray:
    """A smooth random texture at 1/BLOCK resolution, with room for the shift."""
    coarse = np.random.default_rng(7).random((side // BLOCK + 8, side // BLOCK + 8), np.float32)
    return ndimage.gaussian_filter(coarse, 1.0)


def band(base: np.ndarray, rows: slice, side: int, shift: tuple[int, int]) -> np.ndarray:
    """Rows of the full-resolution image, content displaced by `shift` (whole pixels)."""
    y = np.arange(rows.start, rows.stop) - shift[0] + 4 * BLOCK
    x = np.arange(side) - shift[1] + 4 * BLOCK
    values = base[np.ix_(y // BLOCK, x // BLOCK)]
    return (values * 4000 + 100).astype(np.uint16)


def write_well(root: Path, side: int) -> list[str]:
    """A 2-cycle plate whose images are replaced by `side` x `side` images with FOV tables."""
    plate = make_plate(root, wells=("B03",), acquisitions=2, fov_grid=(1, 1), levels=1)
    base = texture(side)
    field = side // GRID
    for img, shift in zip(plate.images, ((0, 0), SHIFT)):
        ome_zarr = ngio.create_empty_ome_zarr(
            store=img.zarr_url, shape=(2, side, side), pixelsize=PIXEL_UM, axes_names=("c", "y", "x"),
            levels=4, chunks=(1, BAND, BAND), dtype="uint16", channels_meta=["DAPI", "GFP"],
            overwrite=True,
        )
        array = ome_zarr.get_image().zarr_array
        for start in range(0, side, BAND):
            rows = slice(start, start + BAND)
            pixels = band(base, rows, side, shift)
            array[0, rows, :] = pixels
            array[1, rows, :] = pixels[:, ::-1]
        build_pyramid(ome_zarr.get_image())  # bounded, as the tasks build theirs
        rows = [
            {
                "FieldIndex": f"FOV_{index + 1}", "x_micrometer": (index % GRID) * field * PIXEL_UM,
                "y_micrometer": (index // GRID) * field * PIXEL_UM, "z_micrometer": 0.0,
                "len_x_micrometer": field * PIXEL_UM, "len_y_micrometer": field * PIXEL_UM,
                "len_z_micrometer": 1.0,
            }
            for index in range(GRID * GRID)
        ]
        table = ngio.RoiTable()
        table.set_table_data(pd.DataFrame(rows).set_index("FieldIndex"))
        ome_zarr.add_table("FOV_ROI_table", table, overwrite=True)
    return [img.zarr_url for img in plate.images]


_MEASURE = """
import json, sys
from pathlib import Path
from fractal_roi_tasks.dev.peak_rss import baseline_rss_mib, run_task
run = run_task(sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"returncode": run.returncode, "peak": run.peak_rss_mib,
                  "baseline": baseline_rss_mib(sys.argv[1]), "stderr": run.stderr[-3000:]}))
"""


def measure(args: dict, tmp_path: Path) -> dict:
    """Peak RSS of the task child, in MiB, started from a small intermediate process.

    A forked child's peak RSS counts its parent's memory at the fork, and this
    test process is large.
    """
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, MODULE, json.dumps(args), str(tmp_path)],
        capture_output=True, text=True, check=True, cwd=root,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def registration_args(urls: list[str]) -> dict:
    (item,) = init_calculate_registration(zarr_urls=urls, zarr_dir="x")["parallelization_list"]
    return {**item, "channel": {"label": "DAPI"}}


def test_peak_memory_far_below_one_channel(tmp_path):
    """Peak RSS grows far less than one channel from a 1024^2 well to an 8192^2 one."""
    small = measure(registration_args(write_well(tmp_path / "small", 1024)), tmp_path / "run_small")
    urls = write_well(tmp_path / "large", SIDE)
    run = measure(registration_args(urls), tmp_path / "run")
    assert small["returncode"] == 0 and run["returncode"] == 0, small["stderr"] + run["stderr"]
    channel_mib = SIDE * SIDE * 2 / 2**20
    grown = run["peak"] - small["peak"]
    print(f"peak RSS {run['peak']:.0f} MiB at {SIDE}^2 x 2, {small['peak']:.0f} MiB at 1024^2 x 2")
    assert grown < 0.5 * channel_mib, f"peak RSS grew by {grown:.0f} MiB; one channel is {channel_mib:.0f} MiB"
    frame = ngio.open_ome_zarr_container(urls[1]).get_roi_table("FOV_ROI_table").dataframe
    assert len(frame) == GRID * GRID
    # The content moved by SHIFT; the translation registering it back is -SHIFT.
    for axis, shift in zip("yx", SHIFT):
        np.testing.assert_allclose(frame[f"translation_{axis}"] / PIXEL_UM, -shift, atol=0.05)
    assert (frame["registration_quality"] > 0.9).all()
