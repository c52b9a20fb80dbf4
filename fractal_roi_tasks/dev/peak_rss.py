"""Run one task the way a Fractal server does, in a child process, and measure its peak memory.

The child is `python -m fractal_roi_tasks.tasks.<module> --args-json A --out-json B`;
its peak resident set size comes from the kernel (`os.wait4`'s `ru_maxrss`), so
it counts everything the process touched: Python, numpy, zarr's buffers.
Optionally the child also runs under an address-space cap (`RLIMIT_AS`), so a
task that reads a whole image fails there instead of passing quietly.

Used by the memory tests and by `benchmarks/bench_memory.py` (Linux: wait4).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChildRun:
    """What one task process did."""

    returncode: int
    peak_rss_mib: float
    output: dict | None
    stderr: str


def _reap(proc: subprocess.Popen):
    """Wait for `proc` with wait4 (which also gives its resource usage), telling Popen it ended."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # else Popen.__del__ thinks it still runs
    return status, usage


def baseline_rss_mib(module: str) -> float:
    """Peak RSS of a child that only imports the task module (interpreter + libraries)."""
    code = f"import fractal_roi_tasks.tasks.{module}"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    status, usage = _reap(proc)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"importing {module} failed")
    return usage.ru_maxrss / 1024


def run_task(
    module: str, args: dict, tmp_path: Path, *, address_space_mib: int | None = None
) -> ChildRun:
    """Run `fractal_roi_tasks.tasks.<module>` with `args` in a child process.

    Args:
        module: task module name, e.g. "apply_registration_to_image".
        args: the task's arguments, as a Fractal server passes them.
        tmp_path: where the args/out JSON files go.
        address_space_mib: if set, the child's virtual memory cap (RLIMIT_AS).
            Virtual memory counts thread stacks and allocator arenas too, so
            set it well above the expected RSS.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    args_json = tmp_path / f"{module}_args.json"
    out_json = tmp_path / f"{module}_out.json"
    args_json.write_text(json.dumps(args))
    out_json.unlink(missing_ok=True)

    def cap() -> None:
        if address_space_mib is not None:
            limit = int(address_space_mib) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    cmd = [
        sys.executable, "-m", f"fractal_roi_tasks.tasks.{module}",
        "--args-json", str(args_json), "--out-json", str(out_json),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(tmp_path / f"{module}_stderr.txt", "w+") as err:
        proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL, preexec_fn=cap, env=env)
        status, usage = _reap(proc)
        err.seek(0)
        stderr = err.read()
    output = json.loads(out_json.read_text()) if out_json.exists() else None
    return ChildRun(
        returncode=os.waitstatus_to_exitcode(status),
        peak_rss_mib=usage.ru_maxrss / 1024,
        output=output,
        stderr=stderr,
    )
