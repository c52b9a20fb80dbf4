"""Tile placement: ours against ASHLAR and multiview-stitcher, on the same tiles.

    python benchmarks/bench_stitch_others.py            # the 5 scenarios of bench_stitch.py
    python benchmarks/bench_stitch_others.py --quick    # smaller grids

Run it in an environment that has the other tools besides this package, kept
apart from the package's own (they bring a JVM binding, dask, xarray...)::

    python3.11 -m venv /tmp/venv-others
    /tmp/venv-others/bin/pip install -e . ashlar multiview-stitcher
    /tmp/venv-others/bin/python benchmarks/bench_stitch_others.py

A tool that is missing is reported as such and the others still run.

Data and error: the placement scenarios of ``bench_stitch.py``
(`bench_stitch.placement_scenarios`: tiles cut from bundled real images at
known sub-pixel positions, stage error, vignetting, camera noise) and its
figure (`bench_stitch.neighbour_error`: RMS / median / max over grid
neighbours of the error of their relative position, px). Every tool gets the
same float32 tiles, the same stage positions (px) and the same largest
expected stage error (``Scenario.max_shift_px``). Time: best of
``--repeats`` (1), tiles already in memory, the tool's own set-up included
(wrapping the arrays in its data structures); a first run of every tool on
the convention check below has already paid for imports and JIT. Ours and
ASHLAR run on one thread; multiview-stitcher runs its pairwise registrations
on dask's thread pool (all cores).

How each tool is driven (its Python API, in memory, no files):

- ours: `fractal_roi_tasks.stitching.solve.place_tiles(tiles, stage,
  max_shift_px=...)`, as ``bench_stitch.py`` runs it.
- ASHLAR: ``ashlar.reg.EdgeAligner`` over a small in-memory
  ``Reader``/``Metadata`` pair (`_ashlar_reader`: tile positions in px with
  a pixel size of 1, so its ``max_shift``, in microns, is in px),
  ``max_shift=max_shift_px``, ``do_make_thumbnail=False`` (as its own
  script does for a single cycle: the thumbnail only serves the alignment of
  later cycles), then ``run()``; its other defaults (``alpha`` 0.01 for the
  error threshold from non-overlapping strips). Two rows: ``filter_sigma`` 0
  (its default: Laplacian whitening) and 1 (the value of the ASHLAR options
  in MCMICRO's documentation). Positions: ``aligner.positions``, (y, x) of
  each tile's top-left pixel in px, the mosaic moved so that its minimum is
  0 (a global offset, which the error ignores).
- multiview-stitcher: each tile wrapped by
  ``spatial_image_utils.get_sim_from_array(tile, dims=["y", "x"], scale=1,
  translation=stage)`` and ``msi_utils.get_msim_from_sim(..., scale_factors=[])``,
  then ``registration.register(..., reg_channel_index=0)`` with its defaults
  (pairwise phase correlation, checkerboard pruning of the grid graph to
  the 4 neighbours, global optimisation of translations), inside
  ``dask.config.set(scheduler="threads")`` as its docstring suggests (left
  unset, it builds the overlap graph in freshly spawned processes on every
  call). It has no maximum shift: the search is bounded by the overlap
  window, which ``overlap_tolerance`` grows on every side. Two rows:
  ``overlap_tolerance`` 0 (its default: the nominal overlap) and
  ``max_shift_px`` (the window ours searches). Positions: each returned
  affine (a matrix over (y, x, 1) mapping the stage frame to the registered
  one) applied to the tile's stage position.

Conventions, checked in every run before the scenarios (`known_offsets`,
`check_conventions`): a noise-free 2 x 2 grid of 160 px tiles sliced from the
retina at known whole-pixel offsets from their stage places (no
interpolation, no vignetting), run through every tool and converted as
above. The printed line gives each tool's neighbour error, the error the
same output would have with the correction's sign flipped or y and x
swapped (several pixels), and where it puts tile 1 relative to tile 0,
against the truth. With ASHLAR 1.20.0 and multiview-stitcher 0.1.62, ASHLAR
and multiview-stitcher with ``overlap_tolerance`` 0 recover (3, 134) exactly
(ASHLAR with ``filter_sigma`` 1: (3, 133.9)), so the conversions have the
right sign and axis order. multiview-stitcher with ``overlap_tolerance`` > 0
returns the stage offsets there (its grown windows are padded with NaN, and
its phase correlation then settles on the padding), which is a property of
that option, not of the conversion.

Fallbacks are reported, not hidden: ours counts tiles left at their prior.
For ASHLAR the note counts the groups of tiles joined by accepted edges and
the tiles outside the largest group: ASHLAR places those where the linear
model it fits from stage to solved positions maps their stage positions (a
lone tile exactly there, which the note checks; a group by its centroid),
and warns only when that model cannot be fitted (the largest group a single
tile or a line); it is then the identity, and with no edge accepted at all
every tile keeps its stage position. For
multiview-stitcher the note gives the edges its global optimisation kept
and the pairwise results that are exactly the stage offset.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import sys
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path (the smoke tests) rather than run as a script
    sys.path.insert(0, _HERE)

import bench_stitch  # noqa: E402  (needs the path above)

from fractal_roi_tasks.sample_data import load_source  # noqa: E402
from fractal_roi_tasks.stitching.solve import place_tiles  # noqa: E402


class Solved(NamedTuple):
    """What one tool returns on one grid: positions in our convention and a note."""

    positions_px: np.ndarray
    note: str
    details: dict


class Tool(NamedTuple):
    """One row of the table: a tool, one configuration of it, and how to run it."""

    label: str
    module: str | None
    install: str
    place: Callable[[np.ndarray, np.ndarray, float, dict | None], Solved]


# --------------------------------------------------------------------------
# Ours


def place_ours(tiles: np.ndarray, stage_px: np.ndarray, max_shift_px: float, options: dict | None) -> Solved:
    placement = place_tiles(list(tiles), stage_px, max_shift_px=max_shift_px, **(options or {}))
    fell_back = int(placement.fell_back.sum())
    note = f"{placement.n_accepted}/{len(placement.links)} links used, {fell_back} at prior"
    return Solved(placement.positions_px, note, {"links": len(placement.links), "fell_back": fell_back})


# --------------------------------------------------------------------------
# ASHLAR


def _ashlar_reader(tiles: np.ndarray, stage_px: np.ndarray):
    """An in-memory ASHLAR reader: tile ``i`` is ``tiles[i]`` at ``stage_px[i]`` (y, x), 1 px = 1 um."""
    from ashlar import reg

    class ArrayMetadata(reg.Metadata):
        def __init__(self) -> None:
            self._tile_shape = np.array(tiles.shape[1:3], dtype=int)

        @property
        def _num_images(self) -> int:
            return int(tiles.shape[0])

        @property
        def num_channels(self) -> int:
            return 1

        @property
        def pixel_size(self) -> float:
            return 1.0

        @property
        def pixel_dtype(self) -> np.dtype:
            return tiles.dtype

        def tile_position(self, i: int) -> np.ndarray:
            return np.asarray(stage_px[i], dtype=float)

        def tile_size(self, i: int) -> np.ndarray:
            return self._tile_shape

    class ArrayReader(reg.Reader):
        def __init__(self) -> None:
            self.metadata = ArrayMetadata()

        def read(self, series: int, c: int) -> np.ndarray:
            return tiles[series]

    return ArrayReader()


def place_ashlar(
    tiles: np.ndarray, stage_px: np.ndarray, max_shift_px: float, options: dict | None, *, filter_sigma: float
) -> Solved:
    import networkx as nx
    from ashlar import reg

    aligner = reg.EdgeAligner(
        _ashlar_reader(tiles, stage_px),
        max_shift=max_shift_px,
        filter_sigma=filter_sigma,
        do_make_thumbnail=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aligner.run()
    positions = np.asarray(aligner.positions, dtype=float)
    edges = aligner.neighbors_graph.number_of_edges()
    accepted = sum(bool(np.isfinite(error)) for _, error in aligner._cache.values())
    # Groups of tiles joined by accepted edges; all but the largest are placed where the linear model
    # ASHLAR fits (stage -> solved positions of the largest) maps their stage positions (a lone tile
    # exactly there, a group by its centroid).
    groups = sorted(nx.connected_components(aligner.spanning_tree), key=len, reverse=True)
    largest = groups[0] if len(groups[0]) > 1 else set()  # no accepted edge at all: every tile
    by_model = [tile for tile in range(len(positions)) if tile not in largest]
    alone = sorted(next(iter(group)) for group in groups if len(group) == 1)
    model = aligner.lr.predict(np.asarray(stage_px, dtype=float))
    gap = float(np.abs(positions[alone] - model[alone]).max()) if alone else 0.0
    data_warnings = sorted({str(w.message) for w in caught if issubclass(w.category, reg.DataWarning)})
    note = f"{accepted}/{edges} edges accepted, {len(groups)} groups, {len(by_model)} tiles placed by model(stage)"
    if alone:
        note += f" ({len(alone)} alone: output - model(stage) <= {gap:.0e} px)"
    if data_warnings:
        note += "; warned: " + " | ".join(data_warnings)
    return Solved(
        positions,
        note,
        {
            "edges": edges,
            "accepted": accepted,
            "groups": len(groups),
            "placed_from_stage": len(by_model),
            "alone": len(alone),
            "threshold": float(aligner.max_error),
            "warnings": data_warnings,
        },
    )


# --------------------------------------------------------------------------
# multiview-stitcher


def place_multiview_stitcher(
    tiles: np.ndarray, stage_px: np.ndarray, max_shift_px: float, options: dict | None, *, grow_by_max_shift: bool
) -> Solved:
    import dask
    from multiview_stitcher import msi_utils, registration
    from multiview_stitcher import spatial_image_utils as si_utils

    msims = []
    for tile, (y, x) in zip(tiles, stage_px, strict=True):
        sim = si_utils.get_sim_from_array(
            tile,
            dims=["y", "x"],
            scale={"y": 1.0, "x": 1.0},
            translation={"y": float(y), "x": float(x)},
            transform_key="stage",
        )
        msims.append(msi_utils.get_msim_from_sim(sim, scale_factors=[]))
    # Threads, as its docstring suggests: left unset, it builds the overlap graph in spawned processes.
    with dask.config.set(scheduler="threads"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = registration.register(
            msims,
            transform_key="stage",
            reg_channel_index=0,  # get_sim_from_array adds a channel axis
            overlap_tolerance=max_shift_px if grow_by_max_shift else 0.0,
            return_dict=True,
        )
    positions = []
    for param, (y, x) in zip(result["params"], stage_px, strict=True):
        order = [str(v) for v in param.coords["x_in"].values]
        if order != ["y", "x", "1"]:
            raise RuntimeError(f"multiview-stitcher returned an affine over {order}, expected ['y', 'x', '1'].")
        affine = np.asarray(param.data, dtype=float).reshape(3, 3)
        positions.append((affine @ np.array([y, x, 1.0]))[:2])
    graph = result["pairwise_registration"]["graph"]
    used = result["groupwise_resolution"]["metrics"].get("used_edges", {})
    kept = len(next(iter(used.values()))) if used else 0
    unmoved = sum(
        bool(np.allclose(np.asarray(data["transform"].data).reshape(3, 3), np.eye(3)))
        for _, _, data in graph.edges(data=True)
    )
    note = f"{kept}/{graph.number_of_edges()} edges kept"
    if unmoved:
        note += f", {unmoved} pairwise results exactly the stage offset"
    warned = sorted({str(w.message) for w in caught if "multiview_stitcher" in w.filename})
    if warned:
        note += "; warned: " + " | ".join(warned)
    return Solved(np.array(positions), note, {"edges": graph.number_of_edges(), "kept": kept, "unmoved": unmoved})


TOOLS = (
    Tool("ours", None, "", place_ours),
    Tool("ASHLAR (filter_sigma 0)", "ashlar.reg", "pip install ashlar", partial(place_ashlar, filter_sigma=0.0)),
    Tool("ASHLAR (filter_sigma 1)", "ashlar.reg", "pip install ashlar", partial(place_ashlar, filter_sigma=1.0)),
    Tool(
        "multiview-stitcher (tol 0)",
        "multiview_stitcher.registration",
        "pip install multiview-stitcher",
        partial(place_multiview_stitcher, grow_by_max_shift=False),
    ),
    Tool(
        "multiview-stitcher (tol max)",
        "multiview_stitcher.registration",
        "pip install multiview-stitcher",
        partial(place_multiview_stitcher, grow_by_max_shift=True),
    ),
)
"""Rows of the table; ``tol``: multiview-stitcher's ``overlap_tolerance``, 0 or ``max_shift_px``."""


def unavailable(tool: Tool) -> str | None:
    """Why ``tool`` cannot run here, or None."""
    if tool.module is None:
        return None
    if importlib.util.find_spec(tool.module.split(".")[0]) is None:
        return f"not installed ({tool.install})"
    try:
        importlib.import_module(tool.module)
    except Exception as err:  # e.g. a missing dependency, or no JVM for ASHLAR's Bio-Formats binding
        return f"not importable: {type(err).__name__}: {err}"
    return None


def versions() -> dict:
    found = {}
    for name in ("fractal-roi-tasks", "ashlar", "multiview-stitcher", "numpy", "scikit-image"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# --------------------------------------------------------------------------
# Convention check and scenarios


KNOWN_OFFSETS_PX = np.array([[0, 0], [3, -2], [-2, 1], [1, 3]], dtype=float)
"""True position minus stage position of the 4 tiles of `known_offsets`, (y, x) px."""


def known_offsets() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """A noise-free 2 x 2 grid sliced from the retina: tiles, stage, truth (px), grid."""
    image = load_source("retina")[bench_stitch.RETINA_INSIDE]
    tile, step, origin = 160, 136, np.array([100, 100])
    stage = np.array([[r * step, c * step] for r in range(2) for c in range(2)], dtype=float)
    truth = stage + KNOWN_OFFSETS_PX
    tiles = np.stack(
        [image[origin[0] + int(y) : origin[0] + int(y) + tile, origin[1] + int(x) : origin[1] + int(x) + tile] for y, x in truth]
    ).astype(np.float32)
    return tiles, stage, truth, (2, 2)


def run_tool(tool: Tool, tiles, stage_px, grid, truth_px, max_shift_px, options, repeats) -> dict:
    try:
        seconds, solved = bench_stitch.best_of(repeats, lambda: tool.place(tiles, stage_px, max_shift_px, options))
    except Exception as err:  # a failure is a result here, not the end of the run
        return {"failed": f"{type(err).__name__}: {err}"}
    error = bench_stitch.neighbour_error(grid, solved.positions_px, truth_px)
    return {
        "rms_px": error["rms"],
        "median_px": error["median"],
        "max_px": error["max"],
        "seconds": seconds,
        "note": solved.note,
        "positions_px": solved.positions_px,
        **solved.details,
    }


def check_conventions(tools: list[Tool]) -> dict:
    tiles, stage, truth, grid = known_offsets()
    stage_error = bench_stitch.neighbour_error(grid, stage, truth)["rms"]
    true_step, stage_step = truth[1] - truth[0], stage[1] - stage[0]
    print(
        "Convention check: noise-free 2 x 2 grid of 160 px tiles sliced at known whole-pixel offsets "
        f"(stage prior {stage_error:.2f} px RMS). Truth: tile 1 at ({true_step[0]:.2f}, {true_step[1]:.2f}) "
        f"from tile 0, (y, x); stage ({stage_step[0]:.2f}, {stage_step[1]:.2f})"
    )
    rows = {}
    for tool in tools:
        row = run_tool(tool, tiles, stage, grid, truth, 8.0, None, 1)
        rows[tool.label] = row
        if "failed" in row:
            print(f"  {tool.label:<30} failed: {row['failed']}")
            continue
        positions = row["positions_px"]
        offset = positions[1] - positions[0]
        # What the same output would score converted wrongly: correction sign flipped, or y and x swapped.
        flipped = bench_stitch.neighbour_error(grid, 2 * stage - positions, truth)["rms"]
        swapped = bench_stitch.neighbour_error(grid, stage + (positions - stage)[:, ::-1], truth)["rms"]
        print(
            f"  {tool.label:<30} neighbour RMS {row['rms_px']:.3f} px (sign flipped {flipped:.2f}, "
            f"y/x swapped {swapped:.2f}); tile 1 at ({offset[0]:.2f}, {offset[1]:.2f}) from tile 0"
        )
    return rows


def print_table(rows: dict) -> None:
    print("\nTile placement: error of the relative position of grid neighbours (px), on the same tiles")
    print(
        f"  {'scenario':<21}{'tiles':>6}{'stage':>7}  {'tool':<30}{'RMS / median / max':<21}"
        f"{'s':>8}{'RMS/ours':>10}{'s/ours':>8}  notes"
    )
    for name, scenario_rows in rows.items():
        ours = scenario_rows["tools"].get("ours", {})
        first = True
        for label, r in scenario_rows["tools"].items():
            lead = (
                f"  {name:<21}{scenario_rows['tiles']:>6}{scenario_rows['stage_rms_px']:>7.2f}  "
                if first
                else " " * 36
            )
            first = False
            if "unavailable" in r or "failed" in r:
                print(f"{lead}{label:<30}{r.get('unavailable') or 'failed: ' + r['failed']}")
                continue
            figures = f"{r['rms_px']:.3f} / {r['median_px']:.3f} / {r['max_px']:.2f}"
            ratios = f"{'':>10}{'':>8}"
            if label != "ours" and "rms_px" in ours:
                ratios = (
                    f"{r['rms_px'] / max(ours['rms_px'], 1e-12):>9.2f}x"
                    f"{r['seconds'] / max(ours['seconds'], 1e-12):>7.1f}x"
                )
            print(f"{lead}{label:<30}{figures:<21}{r['seconds']:>8.2f}{ratios}  {r['note']}")
    print(
        "  RMS/ours, s/ours: the tool's RMS error and time as multiples of ours in this run (above 1: ours "
        "is more accurate / faster); stage: RMS of the prior; tol: multiview-stitcher's overlap_tolerance.\n"
        "  model(stage): where ASHLAR puts tiles, or groups of tiles, that no accepted edge joins to its "
        "largest group: its linear model (stage -> solved) applied to their stage positions."
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller grids and tiles")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs per tool (1)")
    args = parser.parse_args(argv)

    found = versions()
    print("Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in found.items()))
    reasons = {tool.label: unavailable(tool) for tool in TOOLS}
    runnable = [tool for tool in TOOLS if reasons[tool.label] is None]
    check = check_conventions(runnable)  # also warms up imports, JIT and thread pools

    rows = {}
    for scenario in bench_stitch.placement_scenarios(args.quick):
        truth = scenario.tiles()
        stage_rms = bench_stitch.neighbour_error(scenario.grid, truth.stage_px, truth.positions_px)["rms"]
        results = {}
        for tool in TOOLS:
            if reasons[tool.label] is not None:
                results[tool.label] = {"unavailable": reasons[tool.label]}
                continue
            results[tool.label] = run_tool(
                tool,
                truth.tiles,
                truth.stage_px,
                scenario.grid,
                truth.positions_px,
                scenario.max_shift_px,
                scenario.options,
                args.repeats,
            )
        ours = results["ours"]
        for label, r in results.items():
            if label != "ours" and "rms_px" in r and "rms_px" in ours:
                r["rms_ratio"] = r["rms_px"] / max(ours["rms_px"], 1e-12)
                r["time_ratio"] = r["seconds"] / max(ours["seconds"], 1e-12)
        rows[scenario.name] = {"tiles": int(truth.tiles.shape[0]), "stage_rms_px": stage_rms, "tools": results}
    print_table(rows)
    for scenario_rows in rows.values():
        for r in scenario_rows["tools"].values():
            r.pop("positions_px", None)
    for r in check.values():
        r.pop("positions_px", None)
    return {"versions": found, "check": check, "placement": rows}


if __name__ == "__main__":
    main()
