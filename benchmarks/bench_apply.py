"""Apply Registration to Image against a plain ngio copy of the same image.

    python benchmarks/bench_apply.py              # 4096 x 4096, 2 channels, a label
    python benchmarks/bench_apply.py --size 512   # quick

Builds a 2-cycle sample plate (fields of 512 x 512, cycle 1 displaced by
known whole-pixel shifts, consensus tables written from the truth), then
times, in one run: `apply_registration_to_image` on cycle 1 (new image beside
the original: every ROI pair, every level, the label, the tables, the atomic
publication and the well update); and the baseline, a copy of the same image
with ngio (read level 0 of the image and the label, write them into a derived
image, build both pyramids). Prints the ratio (target: at most 1.3x).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import ngio

from fractal_roi_tasks.io.roi_tables import read_roi_table, write_roi_table
from fractal_roi_tasks.sample_data import FOV_SIZE_PX, make_plate
from fractal_roi_tasks.tasks.apply_registration_to_image import apply_registration_to_image
from fractal_roi_tasks.tasks.find_registration_consensus import find_registration_consensus
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus

TABLE = "FOV_ROI_table_registered"


def build_plate(root: Path, size: int) -> str:
    """A registered 2-cycle plate of `size` x `size` images; returns cycle 1's url."""
    grid = max(1, size // FOV_SIZE_PX)
    shifts = {(1, n): (0, (n * 7) % 23 - 11, (n * 5) % 19 - 9) for n in range(grid * grid)}
    plate = make_plate(root, wells=("B03",), acquisitions=2, fov_grid=(grid, grid), shifts=shifts)
    for img in plate.images[1:]:
        ome_zarr = ngio.open_ome_zarr_container(img.zarr_url)
        table, frame = read_roi_table(ome_zarr, "FOV_ROI_table", img.zarr_url)
        for i, axis in enumerate("zyx"):
            frame[f"translation_{axis}"] = [
                plate.truth[(img.well, 1, n)].translation_um[i] for n in frame.index
            ]
        write_roi_table(ome_zarr, "FOV_ROI_table", frame, like=table)
    urls = [img.zarr_url for img in plate.images]
    for item in init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        find_registration_consensus(**item)
    return plate.images[1].zarr_url


def ngio_copy(zarr_url: str, target: str) -> None:
    """The baseline: copy image and label with ngio (level 0, then the pyramids)."""
    ome_zarr = ngio.open_ome_zarr_container(zarr_url)
    new = ome_zarr.derive_image(store=target, copy_labels=False, copy_tables=False)
    new.get_image().set_array(ome_zarr.get_image().get_array())
    new.get_image().consolidate(mode="auto")
    for name in ome_zarr.list_labels():
        label = ome_zarr.get_label(name)
        new_label = new.derive_label(name, ref_image=label, dtype=str(label.dtype))
        new_label.set_array(label.get_array())
        new_label.consolidate(mode="auto")


def run(size: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = build_plate(Path(tmp), size)
        shape = ngio.open_ome_zarr_container(url).get_image().shape
        ours, baseline = [], []
        for repeat in range(repeats):
            start = time.perf_counter()
            ngio_copy(url, f"{tmp}/copy{repeat}.zarr")
            baseline.append(time.perf_counter() - start)
            shutil.rmtree(f"{url}_registered", ignore_errors=True)
            start = time.perf_counter()
            apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE, overwrite_input=False)
            ours.append(time.perf_counter() - start)
    return {"shape": shape, "ours": min(ours), "baseline": min(baseline)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)
    logging.getLogger("ngio").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Path .* contains non-alphanumeric")
        warnings.filterwarnings("ignore", message="Writing zarr v2 data")
        result = run(args.size, args.repeats)
    result["ratio"] = result["ours"] / result["baseline"]
    print(f"image {result['shape']} (c, y, x) + label 'nuclei'")
    print(f"ngio copy (baseline):  {result['baseline']:.3f} s   = 1.00x")
    print(f"apply registration:    {result['ours']:.3f} s   = {result['ratio']:.2f}x copy (target <= 1.3x)")
    return result


if __name__ == "__main__":
    main()
