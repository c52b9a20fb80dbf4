"""Import time of every task module, as a ratio to importing ngio alone.

    python benchmarks/bench_imports.py [--repeats 5]

A Fractal server starts one process per image, so a task module's import is
paid thousands of times per plate. ngio is the floor every task pays; a ratio
well above 1 means a task module imports something it does not need up front.
Each import runs in a fresh interpreter; the best of `--repeats` is kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from importlib.resources import files


def import_seconds(statement: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def task_modules() -> list[str]:
    manifest = json.loads(files("fractal_roi_tasks").joinpath("__FRACTAL_MANIFEST__.json").read_text())
    modules = []
    for task in manifest["task_list"]:
        for kind in ("non_parallel", "parallel"):
            executable = task.get(f"executable_{kind}")
            if executable:
                modules.append("fractal_roi_tasks." + executable.removesuffix(".py").replace("/", "."))
    return modules


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    args = parser.parse_args(argv)
    baseline = import_seconds("import ngio", args.repeats)
    print(f"import ngio (baseline): {baseline:.3f} s = 1.00x")
    ratios = {}
    for module in task_modules():
        seconds = import_seconds(f"import {module}", args.repeats)
        ratios[module] = seconds / baseline
        print(f"import {module}: {seconds:.3f} s = {ratios[module]:.2f}x")
    return ratios


if __name__ == "__main__":
    main()
