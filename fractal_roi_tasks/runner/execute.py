"""Running a task: one ``python -m`` process per job (the init part, then each
image, several at once), with the results as `JobResult` and `RunSummary`.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.runner.arguments import split_arguments
from fractal_roi_tasks.runner.images import (
    default_zarr_dir,
    display_name,
    image_urls,
    normalize_url,
)
from fractal_roi_tasks.runner.manifest import Part, TaskSpec, find_task

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 15


@dataclass(frozen=True)
class JobResult:
    """One run of one executable (one image, or the init/non-parallel part).

    Attributes:
        part: ``"parallel"`` (one image) or ``"non_parallel"`` (all images).
        name: short name for progress lines (``B/03/0``, ``init (8 images)``).
        zarr_url: the image of a parallel job, None for a non-parallel one.
        args: the full arguments the task got.
        output: what the task returned (its out-json), None if it failed.
        returncode: the process's exit code (negative: killed by that signal).
        duration_s: wall time in seconds.
        log: everything the process wrote (stderr and stdout).
        problem: why a job with return code 0 still failed, else None.
    """

    part: Part
    name: str
    zarr_url: str | None
    args: dict
    output: Any
    returncode: int
    duration_s: float
    log: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.problem is None

    @property
    def log_tail(self) -> str:
        """The last lines of the log."""
        return "\n".join(self.log.rstrip().splitlines()[-STDERR_TAIL_LINES:])

    @property
    def error(self) -> str | None:
        """A short account of the failure (the exception raised), None if ok."""
        if self.ok:
            return None
        if self.problem is not None:
            return self.problem
        if self.returncode < 0:
            try:
                signame = signal.Signals(-self.returncode).name
            except ValueError:
                signame = str(-self.returncode)
            hint = " (out of memory?)" if signame == "SIGKILL" else ""
            return f"killed by {signame}{hint}"
        lines = self.log.rstrip().splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (")]
        if starts:
            for i in range(starts[-1] + 1, len(lines)):
                if lines[i] and not lines[i][0].isspace():
                    return " ".join(" ".join(lines[i:]).split())
        tail = [line for line in lines if line.strip()][-1:]
        return tail[0].strip() if tail else f"exit code {self.returncode}, no output"


@dataclass(frozen=True)
class Progress:
    """Sent to the progress callback after each job: `done` of `total` in `result.part`."""

    done: int
    total: int
    result: JobResult


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class RunSummary:
    """What `run_task` did.

    Attributes:
        task: the task.
        zarr_urls: the images it was asked to run on.
        zarr_dir: the folder given to the init/non-parallel part (None for a
            parallel task).
        results: every job, the non-parallel part first, then per image in
            the order of `zarr_urls` (or of the parallelization list).
        duration_s: wall time in seconds.
    """

    task: TaskSpec
    zarr_urls: list[str]
    zarr_dir: str | None
    results: list[JobResult]
    duration_s: float

    @property
    def failures(self) -> list[JobResult]:
        return [result for result in self.results if not result.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def image_results(self) -> list[JobResult]:
        """The per-image (parallel) jobs."""
        return [result for result in self.results if result.part == "parallel"]

    @property
    def image_list_updates(self) -> list[dict]:
        """Every ``image_list_updates`` item the task returned."""
        updates = []
        for result in self.results:
            if isinstance(result.output, Mapping):
                updates.extend(result.output.get("image_list_updates") or [])
        return updates


@dataclass(frozen=True)
class _Job:
    part: Part
    name: str
    zarr_url: str | None
    args: dict


class _Processes:
    """The task processes running now, so an interrupted run can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self.stopping = False

    def start(self, command: list[str]) -> subprocess.Popen:
        with self._lock:
            if self.stopping:
                raise InterruptedError("the run was interrupted")
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace",
            )
            self._live.add(process)
            return process

    def done(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._live.discard(process)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            for process in self._live:
                process.terminate()


def _run_one(
    task: TaskSpec, job: _Job, folder: Path, index: int, processes: _Processes
) -> JobResult:
    args_path = folder / f"{job.part}-{index:05d}.args.json"
    out_path = folder / f"{job.part}-{index:05d}.out.json"
    args_path.write_text(json.dumps(job.args, indent=2), encoding="utf-8")
    command = [
        sys.executable, "-m", task.module(job.part),
        "--args-json", str(args_path), "--out-json", str(out_path),
    ]
    logger.debug("Running %s", " ".join(command))
    start = time.perf_counter()
    process = processes.start(command)
    try:
        log, _ = process.communicate()
    finally:
        processes.done(process)
    duration = time.perf_counter() - start
    output, problem = None, None
    if process.returncode == 0:
        try:
            output = json.loads(out_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problem = "the task wrote no output file"
        except ValueError as err:
            problem = f"the task's output is not valid JSON: {err}"
    return JobResult(
        part=job.part, name=job.name, zarr_url=job.zarr_url, args=job.args,
        output=output, returncode=process.returncode, duration_s=duration,
        log=log, problem=problem,
    )


def _run_jobs(
    task: TaskSpec,
    jobs: Sequence[_Job],
    folder: Path,
    *,
    workers: int,
    progress: ProgressCallback | None,
) -> list[JobResult]:
    results: list[JobResult | None] = [None] * len(jobs)
    processes = _Processes()
    executor = ThreadPoolExecutor(max_workers=min(workers, max(len(jobs), 1)))
    try:
        futures = {
            executor.submit(_run_one, task, job, folder, index, processes): index
            for index, job in enumerate(jobs)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            results[futures[future]] = result
            if progress is not None:
                progress(Progress(done=done, total=len(jobs), result=result))
    except BaseException:
        # Interrupted (Ctrl-C) or a progress callback failed: start nothing
        # more and stop what runs, rather than leave orphan task processes.
        processes.stop_all()
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return [result for result in results if result is not None]


def _parallelization_list(result: JobResult) -> tuple[list[dict], str | None]:
    output = result.output
    items = output.get("parallelization_list") if isinstance(output, Mapping) else None
    if not isinstance(items, list) or not all(
        isinstance(item, Mapping) and "zarr_url" in item for item in items
    ):
        return [], (
            "the init part returned no valid 'parallelization_list' "
            f"(a list of {{'zarr_url', 'init_args'}}), got {output!r:.200}"
        )
    return [dict(item) for item in items], None


def run_task(
    task: TaskSpec | str,
    urls: str | os.PathLike[str] | Sequence[str],
    args: Mapping | None = None,
    *,
    zarr_dir: str | os.PathLike[str] | None = None,
    workers: int = 2,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Run `task` over images as a Fractal server would, each part in subprocesses.

    Args:
        task: a `TaskSpec`, or a task's manifest or module name.
        urls: image urls, or one url of an image, well or plate (expanded
            with `image_urls`).
        args: the task's arguments; Fractal-managed ones are added per image.
            For a compound task each argument goes to the part(s) whose
            schema names it.
        zarr_dir: folder given to the init / non-parallel part (default: the
            plate's parent folder).
        workers: how many images run at once.
        progress: called with a `Progress` after every job.

    Returns:
        A `RunSummary`; failed images are in its `failures`, never raised.

    Raises:
        NotFoundError, InvalidInputError: unknown task, bad arguments or no
            images, before anything runs.
    """
    if isinstance(task, str):
        task = find_task(task)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}.")
    user_args = dict(args or {})
    if "zarr_dir" in user_args:
        given = user_args.pop("zarr_dir")
        if zarr_dir is not None and normalize_url(zarr_dir) != normalize_url(given):
            raise InvalidInputError("zarr_dir is given twice, with different values.")
        zarr_dir = given
    split = split_arguments(task, user_args)
    if isinstance(urls, (str, os.PathLike)):
        zarr_urls = image_urls(urls)
    else:
        zarr_urls = [normalize_url(url) for url in urls]
    if not zarr_urls:
        raise InvalidInputError("No images to run on.")
    resolved_dir = None
    if "non_parallel" in task.parts:
        resolved_dir = (
            normalize_url(zarr_dir) if zarr_dir is not None else default_zarr_dir(zarr_urls)
        )

    start = time.perf_counter()
    results: list[JobResult] = []
    with tempfile.TemporaryDirectory(prefix="fractal-roi-tasks-") as tmp:
        folder = Path(tmp)
        items = [{"zarr_url": url} for url in zarr_urls]
        if "non_parallel" in task.parts:
            init = _Job(
                part="non_parallel",
                name=f"{'init' if task.type == 'compound' else 'all'} "
                f"({len(zarr_urls)} image{'s' if len(zarr_urls) != 1 else ''})",
                zarr_url=None,
                args={**split["non_parallel"], "zarr_urls": zarr_urls, "zarr_dir": resolved_dir},
            )
            (result,) = _run_jobs(task, [init], folder, workers=1, progress=progress)
            if result.ok and task.type == "compound":
                items, problem = _parallelization_list(result)
                if problem is not None:
                    result = replace(result, problem=problem)
            results.append(result)
            if not result.ok:
                items = []
        if "parallel" in task.parts and items:
            jobs = [
                _Job(
                    part="parallel",
                    name=display_name(item["zarr_url"]),
                    zarr_url=item["zarr_url"],
                    args={**copy.deepcopy(split["parallel"]), **item},
                )
                for item in items
            ]
            results.extend(
                _run_jobs(task, jobs, folder, workers=workers, progress=progress)
            )
    return RunSummary(
        task=task,
        zarr_urls=zarr_urls,
        zarr_dir=resolved_dir,
        results=results,
        duration_s=time.perf_counter() - start,
    )
