"""Run one task the way a Fractal server does, in a child process, and measure its peak memory.

The child is `python -m fractal_roi_tasks.tasks.<module> --args-json A --out-json B`;
its peak resident set size is the kernel's high-water mark of the child's own
address space (`VmHWM`), so it counts everything the process touched: Python,
numpy, zarr's buffers, and nothing of the process that started it.
Optionally the child also runs under an address-space cap (`RLIMIT_AS`), so a
task that reads a whole image fails there instead of passing quietly.

Used by the memory tests and by `benchmarks/bench_memory.py` (Linux: /proc).
"""

from __future__ import annotations

import json
import os
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


# The child reports its own high-water mark (VmHWM of its address space, which
# exec starts afresh). wait4's ru_maxrss would not do: on Linux it also counts
# the memory of the parent at the fork, so a big parent inflates it.
_LAUNCHER = """
import atexit, resource, runpy, sys
report, cap_bytes, module, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def _report():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(report, "w") as out:
        out.write(kib)
atexit.register(_report)
if cap_bytes:
    resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
sys.argv = [module, *args]
if args:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
else:
    __import__(module)
"""


def _run_child(module: str, args: list[str], workdir: Path, cap_mib: int | None):
    """(exit code, peak RSS in MiB or nan, stderr) of one launcher child."""
    workdir.mkdir(parents=True, exist_ok=True)
    report = workdir / f"{module.rsplit('.', 1)[-1]}_vmhwm.txt"
    report.unlink(missing_ok=True)
    cap_bytes = 0 if cap_mib is None else int(cap_mib) * 2**20
    cmd = [sys.executable, "-c", _LAUNCHER, str(report), str(cap_bytes), module, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with open(workdir / f"{module.rsplit('.', 1)[-1]}_stderr.txt", "w+") as err:
        proc = subprocess.run(cmd, stderr=err, stdout=subprocess.DEVNULL, env=env)
        err.seek(0)
        stderr = err.read()
    peak = int(report.read_text()) / 1024 if report.exists() else float("nan")
    return proc.returncode, peak, stderr


def baseline_rss_mib(module: str, workdir: Path | None = None) -> float:
    """Peak RSS of a child that only imports the task module.

    Task modules import their heavy libraries (ngio, zarr, dask) when they
    run, so this is the interpreter and the light imports only; compare a
    task with itself on a small image to see what grows with the image.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        code, peak, stderr = _run_child(
            f"fractal_roi_tasks.tasks.{module}", [], Path(workdir or tmp), None
        )
    if code != 0:
        raise RuntimeError(f"importing {module} failed:\n{stderr[-2000:]}")
    return peak


def run_task(
    module: str, args: dict, tmp_path: Path, *, address_space_mib: int | None = None
) -> ChildRun:
    """Run `fractal_roi_tasks.tasks.<module>` with `args` in a child process.

    The child runs the module as `python -m` does, with `--args-json` and
    `--out-json`, exactly as a Fractal server calls it.

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
    code, peak, stderr = _run_child(
        f"fractal_roi_tasks.tasks.{module}",
        ["--args-json", str(args_json), "--out-json", str(out_json)],
        tmp_path,
        address_space_mib,
    )
    output = json.loads(out_json.read_text()) if out_json.exists() else None
    return ChildRun(returncode=code, peak_rss_mib=peak, output=output, stderr=stderr)
