"""Peak memory and time of every task process at two image sizes 8x apart in pixels.

    python benchmarks/bench_memory.py                 # 4096^2 and 8192 x 16384, 2 channels
    python benchmarks/bench_memory.py --size 1024     # quick

For each size a 2-cycle sample plate (fields of 512 px, 2 channels, nuclei
labels, cycle 1 displaced by known shifts) and a plate of overlapping tiles
cut from a real image are written; then each of the five tasks runs in its own
process, as a Fractal server starts it (`python -m ... --args-json`), and its
peak RSS is the child's own high-water mark (VmHWM, read by `dev/peak_rss.py`). Init tasks run in this process: they
only list images. Prints per task

- RSS(large) / RSS(small) (target <= 1.3: memory does not follow the image);
- time per pixel, large over small (target <= 1.2: linear);
- the peak RSS net of a process that only imports the task module.

Then Segment to ROIs on a 4096^2 label image of 10,000 objects, through the
task (reading the label image, writing both tables, in this process), against
`skimage.measure.regionprops_table` on the same array already in memory
(label, area, bbox, centroid): target <= 1.5x.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ngio
import numpy as np

from fractal_roi_tasks.dev.peak_rss import baseline_rss_mib, run_task
from fractal_roi_tasks.sample_data import (
    FOV_SIZE_PX,
    load_source,
    make_plate,
    make_tiled_plate,
    tile_grid,
)
from fractal_roi_tasks.tasks.init_calculate_registration import init_calculate_registration
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (tests)
from bench_rois import make_label_image  # noqa: E402
from timing import best_of  # noqa: E402

TASKS = (
    "segment_to_rois",
    "calculate_registration",
    "find_registration_consensus",
    "apply_registration_to_image",
    "stitch_and_dedup",
)
TILE_PX = 1024


def build(root: Path, grid: tuple[int, int]) -> dict:
    """Both plates for one size; returns the task arguments, by task."""
    shifts = {(1, n): (0, (n * 7) % 23 - 11, (n * 5) % 19 - 9) for n in range(grid[0] * grid[1])}
    plate = make_plate(root, wells=("B03",), acquisitions=2, fov_grid=grid, shifts=shifts)
    urls = [img.zarr_url for img in plate.images]
    reference, moving = urls
    calc = init_calculate_registration(zarr_urls=urls, zarr_dir=str(root))["parallelization_list"]
    consensus = init_registration_consensus(zarr_urls=urls, zarr_dir=str(root))["parallelization_list"]
    # Tiles: as many pixels as one channel of the plate image, 15% overlap.
    side = int(round(np.sqrt(grid[0] * grid[1]) * FOV_SIZE_PX / (TILE_PX * 0.85)))
    tile_rows = max(2, int(round(side * np.sqrt(grid[0] / grid[1]))))
    tile_cols = max(2, int(round(side * side / tile_rows)))
    tiles = tile_grid(
        load_source("retina"), grid=(tile_rows, tile_cols), tile_shape=(TILE_PX, TILE_PX),
        overlap=0.15, jitter_px=3.0, noise=0.01,
    )
    tiles_url = make_tiled_plate(root, tiles)
    channel = {"label": "DAPI"}
    return {
        "segment_to_rois": {"zarr_url": reference, "label_name": "nuclei"},
        "calculate_registration": {**calc[1], "channel": channel} if calc[0]["zarr_url"] == reference
        else {**calc[0], "channel": channel},
        "find_registration_consensus": consensus[0],
        "apply_registration_to_image": {
            "zarr_url": moving, "registered_roi_table": "FOV_ROI_table_registered",
        },
        "stitch_and_dedup": {"zarr_url": tiles_url},
        "_pixels": grid[0] * grid[1] * FOV_SIZE_PX**2,
        "_tile_pixels": tile_rows * tile_cols * TILE_PX**2,
    }


def measure(args_by_task: dict, work: Path) -> dict[str, tuple[float, float]]:
    """{task: (peak RSS MiB, seconds)}, each task in its own process, in pipeline order."""
    out = {}
    for task in TASKS:
        start = time.perf_counter()
        run = run_task(task, args_by_task[task], work / task)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            raise RuntimeError(f"{task} failed:\n{run.stderr[-3000:]}")
        out[task] = (run.peak_rss_mib, seconds)
    return out


def segment_against_regionprops(size: int, n_objects: int, repeats: int, root: Path) -> dict:
    """Segment to ROIs (task, in process) over regionprops_table on the same labels."""
    from skimage.measure import regionprops_table

    from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois

    labels = make_label_image(size, n_objects)
    url = str(root / "objects.zarr")
    ome_zarr = ngio.create_empty_ome_zarr(
        url, shape=labels.shape, pixelsize=0.5, axes_names=("y", "x"), levels=1,
        dtype="uint8", overwrite=True,
    )
    label = ome_zarr.derive_label("objects", dtype="uint32")
    label.set_array(labels.astype(np.uint32))
    ours, _ = best_of(repeats, lambda: segment_to_rois(zarr_url=url, label_name="objects"))
    floor, _ = best_of(
        repeats, lambda: regionprops_table(labels, properties=("label", "area", "bbox", "centroid"))
    )
    return {"objects": int(len(np.unique(labels)) - 1), "ours_s": ours, "floor_s": floor,
            "ratio": ours / floor}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="side of the small image (px)")
    parser.add_argument("--objects", type=int, default=10_000, help="objects for the regionprops comparison")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    fovs = max(1, args.size // FOV_SIZE_PX)
    sizes = {"small": (fovs, fovs), "large": (2 * fovs, 4 * fovs)}

    root = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    try:
        results = {}
        for name, grid in sizes.items():
            print(f"building the {name} plates ({grid[0] * FOV_SIZE_PX} x {grid[1] * FOV_SIZE_PX} px) ...", flush=True)
            task_args = build(root / name, grid)
            results[name] = (task_args, measure(task_args, root / name / "runs"))
        small_args, small = results["small"]
        large_args, large = results["large"]
        figures = {}
        print(f"\n{'task':30s} {'RSS small':>10s} {'RSS large':>10s} {'ratio':>6s}  {'net large':>9s}  {'time/px ratio':>13s}")
        for task in TASKS:
            pixels = "_tile_pixels" if task == "stitch_and_dedup" else "_pixels"
            base = baseline_rss_mib(task)
            (rss_s, t_s), (rss_l, t_l) = small[task], large[task]
            per_px = (t_l / large_args[pixels]) / (t_s / small_args[pixels])
            figures[task] = {
                "rss_small_mib": rss_s, "rss_large_mib": rss_l, "rss_ratio": rss_l / rss_s,
                "net_large_mib": rss_l - base, "time_per_px_ratio": per_px,
                "seconds_small": t_s, "seconds_large": t_l,
            }
            print(f"{task:30s} {rss_s:9.0f}M {rss_l:9.0f}M {rss_l / rss_s:5.2f}x  {rss_l - base:8.0f}M"
                  f"  {per_px:12.2f}x")
        print("targets: RSS ratio <= 1.3, time per pixel ratio <= 1.2; "
              f"pixels per channel: {small_args['_pixels']:,} and {large_args['_pixels']:,}")
        side = min(args.size, 4096)
        seg = segment_against_regionprops(side, args.objects, args.repeats, root)
        figures["segment_vs_regionprops"] = seg
        print(f"\nSegment to ROIs, {seg['objects']} objects on {side}^2: {seg['ours_s']:.2f} s, "
              f"regionprops_table {seg['floor_s']:.2f} s: {seg['ratio']:.2f}x regionprops (target <= 1.5x)")
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
