"""Polygon extraction with measurements against regionprops_table and a naive loop,
then writing every ROI file format for the same ROIs.

    python benchmarks/bench_rois.py            # 4096 x 4096, 10,000 objects
    python benchmarks/bench_rois.py --size 512 --objects 100   # quick
    python benchmarks/bench_rois.py --task-only   # just the task against regionprops_table

Times, on the same label image in one run: our `extract_rois` (exact polygons
with holes, area, perimeter, centroid, bounding box); skimage's
`regionprops_table` with label, area, bbox and centroid (the floor: metadata
only, no outline); and the naive way, `find_contours` on a whole-image mask
per object, timed on a subset and extrapolated. Prints ratios to the floor.

Then writes the extracted ROIs in each export format (bytes and file, in a
temporary folder, through each format's `write` as `segment_to_rois` calls
it) and all formats one after the other, as ratios to the extraction time
(target: all exports together within 2x). A format whose optional package is
missing is skipped.

Last, the Segment to ROIs task itself on the same label image written as
OME-Zarr (reading it, writing both tables and the label metadata) against
regionprops_table, both timed alternately in this process, as the median of
`--repeats` runs each (target <= 1.5x).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage.draw import disk
from skimage.measure import find_contours, regionprops_table
from skimage.segmentation import expand_labels

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import FORMATS, get_format
from fractal_roi_tasks.rois import extract_rois

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (tests)
from timing import best_of  # noqa: E402

# What segment_to_rois passes to the writers for a well image at level 0.
EXPORT_CONTEXT = {
    "zarr_url": "/data/plate.zarr/B/03/0",
    "well": "B03",
    "image": "0",
    "label_name": "nuclei",
    "level": "0",
    "scale": (1.0, 1.0),
    "channel": None,
}


def make_label_image(size: int, n_objects: int, seed: int = 0) -> np.ndarray:
    """Discs on a jittered grid, grown until many touch; every 7th has a hole."""
    rng = np.random.default_rng(seed)
    per_side = int(np.ceil(np.sqrt(n_objects)))
    step = size / per_side
    labels = np.zeros((size, size), np.uint32)
    centres = []
    for k in range(n_objects):
        i, j = divmod(k, per_side)
        cy = (i + 0.5) * step + rng.uniform(-step / 4, step / 4)
        cx = (j + 0.5) * step + rng.uniform(-step / 4, step / 4)
        rr, cc = disk((cy, cx), rng.uniform(step * 0.25, step * 0.5), shape=labels.shape)
        labels[rr, cc] = k + 1
        centres.append((cy, cx))
    labels = expand_labels(labels, distance=max(1, int(step / 12)))
    for k in range(0, n_objects, 7):
        rr, cc = disk(centres[k], max(1.5, step / 14), shape=labels.shape)
        hole = labels[rr, cc] == k + 1
        labels[rr[hole], cc[hole]] = 0
    return labels


def seconds_of(repeats: int, func) -> float:
    return best_of(repeats, func)[0]


def naive_seconds(labels: np.ndarray, subset: int) -> float:
    """find_contours on a whole-image mask per object, extrapolated to all."""
    ids = np.unique(labels)[1:]
    chosen = ids[:: max(1, len(ids) // subset)][:subset]
    start = time.perf_counter()
    for lab in chosen:
        find_contours(labels == lab, 0.5)
    return (time.perf_counter() - start) / len(chosen) * len(ids)


def export_seconds(roi_set, repeats: int) -> dict[str, float]:
    """Seconds to write each usable format, and all of them in a row, as the task does."""
    formats = {}
    for name in FORMATS:
        try:
            formats[name] = get_format(name)
        except InvalidInputError:  # an optional package is missing: main says so
            continue
    with tempfile.TemporaryDirectory() as folder:

        def write(names):
            for name in names:
                fmt = formats[name]
                fmt.write(f"{folder}/B03_0_nuclei_rois{fmt.EXTENSION}", roi_set, context=EXPORT_CONTEXT)

        seconds = {name: seconds_of(repeats, lambda name=name: write([name])) for name in formats}
        seconds["all"] = seconds_of(repeats, lambda: write(list(formats)))
    return seconds


def run(size: int, n_objects: int, repeats: int, naive_subset: int) -> dict[str, float]:
    labels = make_label_image(size, n_objects)
    extract_rois(labels[:64, :64])  # warm imports and caches
    ours = seconds_of(repeats, lambda: extract_rois(labels, shape="polygon", spacing=(0.325, 0.325)))
    floor = seconds_of(
        repeats,
        lambda: regionprops_table(labels, properties=("label", "area", "bbox", "centroid")),
    )
    naive = naive_seconds(labels, naive_subset)
    roi_set = extract_rois(labels, shape="polygon", spacing=(0.325, 0.325))
    exports = export_seconds(roi_set, repeats)
    result = {"objects": len(np.unique(labels)) - 1, "ours": ours, "floor": floor, "naive": naive}
    result.update({f"export_{name}": seconds for name, seconds in exports.items() if name != "all"})
    result["exports"] = exports["all"]
    return result


def task_against_regionprops(labels: np.ndarray, repeats: int) -> dict[str, float]:
    """Median seconds of the task (files in, tables out) and of regionprops_table, run in turns."""
    import ngio

    from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois

    with tempfile.TemporaryDirectory() as folder:
        url = f"{folder}/objects.zarr"
        ome_zarr = ngio.create_empty_ome_zarr(
            url, shape=labels.shape, pixelsize=0.5, axes_names=("y", "x"), levels=1,
            dtype="uint8", overwrite=True,
        )
        ome_zarr.derive_label("objects", dtype="uint32").set_array(labels.astype(np.uint32))
        segment_to_rois(zarr_url=url, label_name="objects")  # warm imports
        task, floor = [], []
        for _ in range(repeats):
            task.append(seconds_of(1, lambda: segment_to_rois(zarr_url=url, label_name="objects")))
            floor.append(seconds_of(1, lambda: regionprops_table(
                labels, properties=("label", "area", "bbox", "centroid"))))
    task_s, floor_s = float(np.median(task)), float(np.median(floor))
    return {"task": task_s, "task_floor": floor_s, "task_ratio": task_s / floor_s}


def print_task(result: dict[str, float]) -> None:
    print(f"Segment to ROIs task (read, extract, write tables): {result['task']:.3f} s, "
          f"regionprops_table {result['task_floor']:.3f} s (medians): "
          f"{result['task_ratio']:.2f}x (target <= 1.5x)")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--objects", type=int, default=10_000, help="number of objects")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--naive-subset", type=int, default=30, help="objects timed naively")
    parser.add_argument("--task-only", action="store_true",
                        help="only the task against regionprops_table")
    args = parser.parse_args(argv)
    if args.task_only:
        labels = make_label_image(args.size, args.objects)
        result = task_against_regionprops(labels, max(args.repeats, 5))
        print(f"label image {args.size}x{args.size}, {len(np.unique(labels)) - 1} objects")
        print_task(result)
        return result
    result = run(args.size, args.objects, args.repeats, args.naive_subset)
    print(f"label image {args.size}x{args.size}, {result['objects']} objects")
    print(f"regionprops_table (floor): {result['floor']:.3f} s   = 1.00x")
    print(f"extract_rois polygons:     {result['ours']:.3f} s   = {result['ours'] / result['floor']:.2f}x floor (target <= 3x)")
    print(f"naive find_contours loop:  {result['naive']:.3f} s   = {result['naive'] / result['floor']:.1f}x floor (extrapolated)")
    print("writing the ROI files (bytes + file, as segment_to_rois writes them):")
    for name in FORMATS:
        seconds = result.get(f"export_{name}")
        if seconds is None:
            print(f"  {name:9s} skipped (its optional package is not installed)")
        else:
            print(f"  {name:9s} {seconds:.3f} s   = {seconds / result['ours']:.2f}x extraction")
    print(f"  all       {result['exports']:.3f} s   = {result['exports'] / result['ours']:.2f}x extraction (target <= 2x)")
    result.update(task_against_regionprops(make_label_image(args.size, args.objects), max(args.repeats, 5)))
    print_task(result)
    return result


if __name__ == "__main__":
    main()
