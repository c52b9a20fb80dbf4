"""Stitching: tile placement (ours) against phase correlation plus plain least squares.

    python benchmarks/bench_stitch.py            # 5 scenarios, 16 to 256 tiles
    python benchmarks/bench_stitch.py --quick    # smaller grids, a few seconds

Each scenario is a grid of tiles cut by `fractal_roi_tasks.sample_data.tile_grid`
from a bundled real image at known sub-pixel positions, with a gaussian stage
error, vignetting (multiplicative falloff to the corners) and camera noise;
the stage positions are the prior. Scenarios: dense texture (the retina, 15%
overlap), sparse fluorescence-like (the Hubble deep field), a thin 5%
overlap, an 8 x 8 grid of a 2x-magnified low-texture image (the cell), and
many small tiles.

Error: for every pair of grid neighbours (left-right, top-bottom), the
solved ``position_j - position_i`` minus the true one; the figure is the RMS
of its length over all neighbour pairs, in pixels (a global offset of the
mosaic does not count). Time: windows, measurement and solve, best of
``--repeats``, tiles already in memory, with one BLAS thread (the script
sets ``OPENBLAS_NUM_THREADS=1`` unless it is set: multithreaded BLAS made
the baseline's time vary 40-fold from run to run on a busy machine).

Baseline, written here: for each pair of grid neighbours, the nominal overlap
(from the stage positions) of both tiles, registered by
``skimage.registration.phase_cross_correlation`` with ``upsample_factor``
20; then plain (unweighted) least squares over all pairs, positions
centred on the stage positions. Figures are ratios to the baseline measured
in the same run.

`placement_scenarios` lists the scenarios and `run_placement` measures one;
`main` prints the table.

Fusion (`run_fusion`): a converter-layout image of 1024 px tiles overlapping
by 10% (sub-pixel positions, so every tile is resampled), fused block by block
as the task does (`fractal_roi_tasks.io.stitch_output.build`, all pyramid
levels) into a mosaic of ``--mosaic`` pixels square (16384 by default);
baseline: writing an image of the same shape, chunks and pyramid with ngio,
block by block from memory. Each runs in a fresh process, which reports its
time and its peak resident memory (the whole process, Python included).
Targets: fusion at most 2x the write; peak memory under 2 GB at 16k x 16k.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from skimage.registration import phase_cross_correlation

from fractal_roi_tasks.sample_data import TileGrid, load_source, tile_grid
from fractal_roi_tasks.stitching.solve import place_tiles

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (tests)
from timing import best_of  # noqa: E402

RETINA_INSIDE = (slice(250, 1150), slice(250, 1150))
"""The retina image within its black circular border."""


class Scenario(NamedTuple):
    """One placement scenario: what `tile_grid` cuts, and the search range.

    (A NamedTuple: the smoke test loads this file without importing it as a
    module, which dataclasses do not support.)
    """

    name: str
    source: str
    grid: tuple[int, int]
    tile_shape: tuple[int, int]
    overlap: float
    jitter_px: float
    max_shift_px: float
    noise: float = 0.02
    vignetting: float = 0.3
    magnify: int = 1
    seed: int = 0
    options: dict | None = None

    def tiles(self) -> TileGrid:
        image = load_source(self.source)
        if self.source == "retina":
            image = image[RETINA_INSIDE]
        return tile_grid(
            image,
            grid=self.grid,
            tile_shape=self.tile_shape,
            overlap=self.overlap,
            jitter_px=self.jitter_px,
            noise=self.noise,
            vignetting=self.vignetting,
            magnify=self.magnify,
            seed=self.seed,
        )


def placement_scenarios(quick: bool = False) -> list[Scenario]:
    """The placement scenarios; ``quick``: the same scenes on smaller grids and tiles."""
    scenarios = [
        Scenario("dense 15%", "retina", (4, 4), (256, 256), 0.15, 3.0, 15.0),
        Scenario("sparse fluorescence", "hubble_deep_field", (4, 4), (256, 256), 0.15, 3.0, 15.0),
        Scenario("5% overlap", "retina", (4, 4), (256, 256), 0.05, 2.0, 10.0),
        Scenario("2x low texture", "cell", (8, 8), (160, 160), 0.15, 3.0, 15.0, noise=0.005, magnify=2),
        Scenario("many small tiles", "retina", (16, 16), (96, 96), 0.15, 2.0, 8.0, noise=0.01, vignetting=0.2),
    ]
    if not quick:
        return scenarios
    smaller = {  # what the quick run changes, per scenario
        "dense 15%": {"grid": (3, 3), "tile_shape": (160, 160), "max_shift_px": 12.0},
        "sparse fluorescence": {"grid": (3, 3), "tile_shape": (160, 160), "max_shift_px": 12.0},
        "5% overlap": {"grid": (2, 3), "tile_shape": (256, 256), "max_shift_px": 8.0},
        "2x low texture": {"grid": (4, 4), "tile_shape": (160, 160), "max_shift_px": 12.0},
        "many small tiles": {"grid": (6, 6), "tile_shape": (96, 96), "max_shift_px": 8.0},
    }
    return [scenario._replace(**smaller[scenario.name]) for scenario in scenarios]


def neighbour_pairs(grid: tuple[int, int]) -> np.ndarray:
    """(P, 2) indices of the left-right and top-bottom neighbours of a row-major grid."""
    index = np.arange(grid[0] * grid[1]).reshape(grid)
    across = np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1)
    down = np.stack([index[:-1].ravel(), index[1:].ravel()], axis=1)
    return np.concatenate([across, down])


def neighbour_error(grid: tuple[int, int], positions: np.ndarray, truth: np.ndarray) -> dict:
    """RMS, median and max over grid neighbours of |solved minus true relative position|, px."""
    pairs = neighbour_pairs(grid)
    solved = positions[pairs[:, 1]] - positions[pairs[:, 0]]
    true = truth[pairs[:, 1]] - truth[pairs[:, 0]]
    lengths = np.linalg.norm(solved - true, axis=1)
    return {
        "rms": float(np.sqrt(np.mean(lengths**2))),
        "median": float(np.median(lengths)),
        "max": float(lengths.max()),
    }


def baseline(tiles: np.ndarray, prior: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Phase correlation of each neighbour pair's nominal overlap, then unweighted least squares."""
    pairs = neighbour_pairs(grid)
    shape = np.array(tiles.shape[1:3])
    offsets = []
    for first, second in pairs:
        start = np.maximum(prior[first], prior[second])
        stop = np.minimum(prior[first] + shape, prior[second] + shape)
        a = tiles[first][_box(start - prior[first], stop - prior[first])]
        b = tiles[second][_box(start - prior[second], stop - prior[second])]
        size = np.minimum(a.shape, b.shape)
        shift, _, _ = phase_cross_correlation(a[: size[0], : size[1]], b[: size[0], : size[1]], upsample_factor=20)
        # b[v] ~ a[v + e] gives shift e (the shift that registers b onto a).
        offsets.append(prior[second] - prior[first] + shift)
    count = tiles.shape[0]
    design = np.zeros((len(pairs) + 1, count))
    design[np.arange(len(pairs)), pairs[:, 1]] = 1.0
    design[np.arange(len(pairs)), pairs[:, 0]] = -1.0
    design[-1] = 1.0 / count  # gauge: the mean correction is 0
    target = np.zeros((len(pairs) + 1, 2))
    target[:-1] = np.asarray(offsets) - (prior[pairs[:, 1]] - prior[pairs[:, 0]])
    correction, *_ = np.linalg.lstsq(design, target, rcond=None)
    return prior + correction


def _box(start: np.ndarray, stop: np.ndarray) -> tuple[slice, slice]:
    return tuple(slice(int(round(a)), int(round(b))) for a, b in zip(start, stop))


def run_placement(scenario: Scenario, repeats: int) -> dict:
    """Errors and times of ours and of the baseline on one scenario."""
    truth = scenario.tiles()
    tiles, prior = truth.tiles, truth.stage_px

    def ours():
        return place_tiles(list(tiles), prior, max_shift_px=scenario.max_shift_px, **(scenario.options or {}))

    ours_s, placement = best_of(repeats, ours)
    base_s, base_positions = best_of(repeats, lambda: baseline(tiles, prior, scenario.grid))
    ours = neighbour_error(scenario.grid, placement.positions_px, truth.positions_px)
    base = neighbour_error(scenario.grid, base_positions, truth.positions_px)
    stage = neighbour_error(scenario.grid, prior, truth.positions_px)
    return {
        "name": scenario.name,
        "tiles": int(tiles.shape[0]),
        "tile_shape": scenario.tile_shape,
        "links": len(placement.links),
        "accepted": placement.n_accepted,
        "fell_back": int(placement.fell_back.sum()),
        "stage_rms_px": stage["rms"],
        "ours_rms_px": ours["rms"],
        "ours_median_px": ours["median"],
        "ours_max_px": ours["max"],
        "baseline_rms_px": base["rms"],
        "baseline_median_px": base["median"],
        "baseline_max_px": base["max"],
        "ours_s": ours_s,
        "baseline_s": base_s,
        "error_ratio": ours["rms"] / max(base["rms"], 1e-12),
        "time_ratio": ours_s / max(base_s, 1e-12),
    }


def print_placement(rows: list[dict]) -> None:
    print("Tile placement: error of the relative position of grid neighbours (px), RMS / median / max")
    print(
        f"  {'scenario':<21}{'tiles':>6}{'stage':>7}   {'ours':<19}{'baseline':<20}{'error':>7}"
        f"{'ours s':>8}{'base s':>8}{'time':>7}  links"
    )
    for r in rows:
        ours = f"{r['ours_rms_px']:.3f}/{r['ours_median_px']:.3f}/{r['ours_max_px']:.2f}"
        base = f"{r['baseline_rms_px']:.3f}/{r['baseline_median_px']:.3f}/{r['baseline_max_px']:.2f}"
        print(
            f"  {r['name']:<21}{r['tiles']:>6}{r['stage_rms_px']:>7.2f}   {ours:<19}{base:<20}"
            f"{r['error_ratio']:>6.3f}x{r['ours_s']:>8.2f}{r['baseline_s']:>8.2f}{r['time_ratio']:>6.2f}x"
            f"  {r['accepted']}/{r['links']} used, {r['fell_back']} at prior"
        )
    print(
        "  error, time: ours (RMS, seconds) as a multiple of the baseline in this run; stage: RMS of the "
        "prior. Targets: RMS <= 0.35 px dense and sparse, <= 1 px at 5% overlap and on 2x low texture"
    )


# --------------------------------------------------------------------------
# Fusion: time against writing an image of the same size, and peak memory


def _fusion_input(directory: Path, mosaic_px: int, tile_px: int, seed: int = 0):
    """A converter-layout image whose tiles overlap by 10% and tile a mosaic of ~mosaic_px.

    Written tile by tile (never the whole array in memory): each tile is a
    crop of the mirrored retina, one channel, uint16. Returns the image url
    and the tile positions (full-resolution px) the fusion places them at.
    """
    import ngio

    step = int(tile_px * 0.9)
    per_side = max(2, math.ceil((mosaic_px - tile_px) / step) + 1)
    rng = np.random.default_rng(seed)
    nominal = np.array([(r * step, c * step) for r in range(per_side) for c in range(per_side)], float)
    positions = nominal + rng.uniform(-2, 2, nominal.shape)  # sub-pixel placement
    source = load_source("retina")[RETINA_INSIDE]
    source = (1000 + 40000 * source).astype(np.uint16)
    url = str(directory / "tiles.zarr")
    side = per_side * tile_px
    container = ngio.create_empty_ome_zarr(
        store=url, shape=(1, side, side), pixelsize=0.325, axes_names=("c", "y", "x"),
        chunks=(1, tile_px, tile_px), levels=3, dtype="uint16", overwrite=True,
    )
    array = container.get_image().zarr_array
    for index in range(per_side * per_side):
        r, c = divmod(index, per_side)
        y0, x0 = (int(v) % (source.shape[0] - tile_px) for v in positions[index])
        tile = source[y0 : y0 + tile_px, x0 : x0 + tile_px]
        if tile.shape != (tile_px, tile_px):
            tile = np.pad(tile, [(0, tile_px - tile.shape[0]), (0, tile_px - tile.shape[1])], mode="symmetric")
        array[0, r * tile_px : (r + 1) * tile_px, c * tile_px : (c + 1) * tile_px] = tile
    rois = [
        ngio.Roi.from_values(
            name=f"FOV_{i + 1}",
            slices={"y": (r * tile_px * 0.325, tile_px * 0.325), "x": (c * tile_px * 0.325, tile_px * 0.325)},
        )
        for i, (r, c) in enumerate(divmod(i, per_side) for i in range(per_side * per_side))
    ]
    container.add_table("FOV_ROI_table", ngio.RoiTable(rois=rois))
    return url, positions


def _fuse(url: str, positions: np.ndarray, target: str) -> None:
    import ngio

    from fractal_roi_tasks.io.stitch_output import build
    from fractal_roi_tasks.io.stitch_placement import StitchPlan
    from fractal_roi_tasks.io.tiles import read_tile_table

    ome_zarr = ngio.open_ome_zarr_container(url)
    tiles = read_tile_table(ome_zarr, "FOV_ROI_table", url, use_stage_positions=False)
    n = len(tiles.names)
    plan = StitchPlan(
        tiles=tiles, positions_px=positions, correction_px=np.zeros((n, 2)),
        fell_back=np.zeros(n, bool), tile_quality=np.ones(n), links=pd.DataFrame(),
        blending="linear", label_names=[], min_overlap=0.5,
    )
    build(url, ome_zarr, plan, "FOV_ROI_table", Path(target))


def _write_same_size(url: str, like: str, target: str) -> None:
    """The baseline: write an image of the fused image's shape, chunks and levels, block by block."""
    import ngio

    from fractal_roi_tasks.io.stitch_output import BLOCK_PX

    fused = ngio.open_ome_zarr_container(like).get_image()
    source = ngio.open_ome_zarr_container(url).get_image().zarr_array
    content = np.asarray(source[0, :BLOCK_PX, :BLOCK_PX])  # real pixels, compressing as real data does
    new = ngio.open_ome_zarr_container(url).derive_image(
        store=target, shape=fused.shape, chunks=fused.chunks, overwrite=True
    )
    image = new.get_image()
    array = image.zarr_array
    height, width = fused.shape[-2:]
    for y in range(0, height, BLOCK_PX):
        for x in range(0, width, BLOCK_PX):
            h, w = min(BLOCK_PX, height - y), min(BLOCK_PX, width - x)
            array[0, y : y + h, x : x + w] = content[:h, :w]
    image.consolidate(mode="dask")


def _child(kind: str, url: str, positions_file: str, target: str, like: str) -> None:
    """Run one timed step in this process and print its time and peak memory as JSON."""
    positions = np.load(positions_file)
    start = time.perf_counter()
    if kind == "fuse":
        _fuse(url, positions, target)
    else:
        _write_same_size(url, like, target)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # MiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def run_fusion(mosaic_px: int, tile_px: int) -> dict:
    """Fusion time as a ratio to writing the same-size image, and peak memory, each in a fresh process."""
    with tempfile.TemporaryDirectory() as directory:
        url, positions = _fusion_input(Path(directory), mosaic_px, tile_px)
        positions_file = str(Path(directory) / "positions.npy")
        np.save(positions_file, positions)
        fused = str(Path(directory) / "fused.zarr")
        results = {}
        for kind, target in (("fuse", fused), ("write", str(Path(directory) / "written.zarr"))):
            command = [sys.executable, __file__, "--child", kind, url, positions_file, target, fused]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[kind] = json.loads(output.strip().splitlines()[-1])
        import ngio

        shape = ngio.open_ome_zarr_container(fused).get_image().shape
    return {
        "tiles": len(positions),
        "mosaic": f"{shape[-2]} x {shape[-1]}",
        "fuse_s": results["fuse"]["seconds"],
        "write_s": results["write"]["seconds"],
        "ratio": results["fuse"]["seconds"] / results["write"]["seconds"],
        "fuse_peak_mib": results["fuse"]["peak_mib"],
        "write_peak_mib": results["write"]["peak_mib"],
    }


def print_fusion(row: dict) -> None:
    print(f"\nFusion: {row['tiles']} tiles of 1024 px into {row['mosaic']} pixels (1 channel, uint16)")
    print(
        f"  fuse {row['fuse_s']:.2f} s, write the same-size image {row['write_s']:.2f} s: "
        f"{row['ratio']:.2f}x the write (target <= 2x)"
    )
    print(
        f"  peak memory: fuse {row['fuse_peak_mib']:.0f} MiB, write {row['write_peak_mib']:.0f} MiB "
        "(whole process; target < 2048 MiB at 16k x 16k)"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids and tiles (a few seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="best of this many runs (3; quick: 1)")
    parser.add_argument(
        "--mosaic", type=int, default=None, help="fused mosaic side in pixels (16384; quick: 2048)"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    rows = [run_placement(scenario, repeats) for scenario in placement_scenarios(args.quick)]
    print_placement(rows)
    fusion = run_fusion(args.mosaic or (2048 if args.quick else 16384), 1024)
    print_fusion(fusion)
    return {"placement": {r["name"]: r for r in rows}, "fusion": fusion}


if __name__ == "__main__":
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        # Multithreaded BLAS on a busy machine is erratic: the baseline's
        # upsampled DFT (matrix products) took 0.015 s or 0.6 s for the same
        # 24 pairs. One BLAS thread for both sides, which numpy reads when it
        # loads: run again with it set.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    # anndata warns on every Zarr v2 table ngio writes; the figures are what matters here
    warnings.filterwarnings("ignore", message="Writing zarr v2 data")
    if sys.argv[1:2] == ["--child"]:
        _child(*sys.argv[2:])
    else:
        main()
