"""Run the package's Fractal tasks without a Fractal server.

Reads the task list from the installed ``__FRACTAL_MANIFEST__.json`` and runs
each task exactly as a Fractal server does: one ``python -m
fractal_roi_tasks.tasks.<module> --args-json A --out-json B`` process per
image (several at once), the init part of a compound task first. Nothing here
prints or configures logging: results come back as dataclasses and progress
through a callback.

>>> task = find_task("segment_to_rois")
>>> task.name, task.type
('Segment to ROIs', 'parallel')
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.context import image_context

logger = logging.getLogger(__name__)

PACKAGE = "fractal_roi_tasks"
MANIFEST_FILE = "__FRACTAL_MANIFEST__.json"

TaskType = Literal["parallel", "non_parallel", "compound"]
Part = Literal["parallel", "non_parallel"]

# Arguments Fractal fills in itself, per part of a task.
MANAGED_PARALLEL = ("zarr_url", "init_args")
MANAGED_NON_PARALLEL = ("zarr_urls", "zarr_dir")
# Arguments a user may never give: the runner owns them.
FORBIDDEN_ARGS = ("zarr_url", "zarr_urls", "init_args")

STDERR_TAIL_LINES = 15


# --------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True)
class TaskSpec:
    """One task of the manifest.

    Attributes:
        name: the manifest name, e.g. ``"Segment to ROIs"``.
        type: ``"parallel"``, ``"non_parallel"`` or ``"compound"``.
        executable_parallel: e.g. ``"tasks/segment_to_rois.py"`` (None for a
            non-parallel task).
        executable_non_parallel: the init executable of a compound task, or
            the one executable of a non-parallel task.
        args_schema_parallel: JSON schema of the parallel part's arguments.
        args_schema_non_parallel: JSON schema of the non-parallel part's.
        package: the Python package the executables live in.
        entry: the whole manifest entry.
    """

    name: str
    type: TaskType
    executable_parallel: str | None = None
    executable_non_parallel: str | None = None
    args_schema_parallel: dict | None = None
    args_schema_non_parallel: dict | None = None
    package: str = PACKAGE
    entry: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_manifest_entry(cls, entry: Mapping, *, package: str = PACKAGE) -> TaskSpec:
        """Build a `TaskSpec` from one item of the manifest's ``task_list``."""
        parallel = entry.get("executable_parallel")
        non_parallel = entry.get("executable_non_parallel")
        task_type = entry.get("type")
        if task_type is None:  # older manifests do not say; infer it
            task_type = (
                "compound" if parallel and non_parallel
                else "parallel" if parallel else "non_parallel"
            )
        if task_type not in ("parallel", "non_parallel", "compound"):
            raise InvalidInputError(
                f"Task {entry.get('name')!r} has unknown type {task_type!r} in the manifest."
            )
        return cls(
            name=entry["name"],
            type=task_type,
            executable_parallel=parallel,
            executable_non_parallel=non_parallel,
            args_schema_parallel=entry.get("args_schema_parallel"),
            args_schema_non_parallel=entry.get("args_schema_non_parallel"),
            package=package,
            entry=dict(entry),
        )

    def module(self, part: Part) -> str:
        """The Python module of one part, e.g. ``fractal_roi_tasks.tasks.segment_to_rois``."""
        executable = (
            self.executable_parallel if part == "parallel" else self.executable_non_parallel
        )
        if executable is None:
            raise InvalidInputError(f"Task {self.name!r} has no {part} part.")
        dotted = executable.removesuffix(".py").replace("/", ".")
        return f"{self.package}.{dotted}"

    @property
    def parts(self) -> tuple[Part, ...]:
        """The parts this task runs, in order."""
        return {
            "parallel": ("parallel",),
            "non_parallel": ("non_parallel",),
            "compound": ("non_parallel", "parallel"),
        }[self.type]

    @property
    def module_names(self) -> tuple[str, ...]:
        """Short module names of the executables, e.g. ``("segment_to_rois",)``."""
        return tuple(self.module(part).rsplit(".", 1)[-1] for part in self.parts)

    def schema(self, part: Part) -> dict:
        """The argument schema of one part (empty if the manifest has none)."""
        schema = (
            self.args_schema_parallel if part == "parallel" else self.args_schema_non_parallel
        )
        return schema or {}


@lru_cache(maxsize=1)
def _manifest_text() -> str:
    return resources.files(PACKAGE).joinpath(MANIFEST_FILE).read_text(encoding="utf-8")


def load_manifest() -> dict:
    """The installed package's manifest, as a dict (a fresh copy each call)."""
    return json.loads(_manifest_text())


def list_tasks() -> list[TaskSpec]:
    """Every task of the manifest, in manifest order."""
    return [TaskSpec.from_manifest_entry(entry) for entry in load_manifest()["task_list"]]


def find_task(name: str) -> TaskSpec:
    """The task called `name`: its manifest name (any case) or a module name.

    Raises:
        NotFoundError: no such task; the message lists the available ones.
    """
    tasks = list_tasks()
    wanted = name.strip().casefold()
    for task in tasks:
        if wanted == task.name.casefold():
            return task
    for task in tasks:
        if wanted.removesuffix(".py") in task.module_names:
            return task
    available = "; ".join(
        f"{task.name!r} ({', '.join(task.module_names)})" for task in tasks
    )
    raise NotFoundError(f"Unknown task {name!r}. Available tasks: {available}.")


# --------------------------------------------------------------------------
# Task arguments, from the schemas


@dataclass(frozen=True)
class ArgumentInfo:
    """One argument a user can give to a task (Fractal-managed ones excluded).

    Attributes:
        name: dotted for fields of option groups, e.g. ``"segmentation.method"``.
        type: readable type, e.g. ``"string"``, ``"one of: otsu, li"``.
        default: JSON text of the default, None when the argument is required.
        required: whether it must be given (within its parent, if nested).
        description: the help text from the manifest.
        part: ``"parallel"``, ``"non_parallel"`` or ``"both"`` (compound tasks).
    """

    name: str
    type: str
    default: str | None
    required: bool
    description: str
    part: str


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    """Follow a local ``$ref`` (``#/$defs/Name``)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    target: Any = root
    for key in ref.removeprefix("#/").split("/"):
        target = target.get(key, {})
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def _options(schema: Mapping, root: Mapping) -> list[Mapping]:
    """The alternatives of a schema (its ``anyOf``/``oneOf``, or itself), resolved."""
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if not alternatives:
        return [schema]
    return [option for alt in alternatives for option in _options(alt, root)]


def _type_text(schema: Mapping, root: Mapping) -> str:
    texts = []
    for option in _options(schema, root):
        if "const" in option:
            text = json.dumps(option["const"])
        elif "enum" in option:
            text = "one of: " + ", ".join(str(value) for value in option["enum"])
        elif option.get("type") == "array":
            text = "list of " + _type_text(option.get("items", {}), root)
        elif option.get("type") == "object" or "properties" in option:
            text = option.get("title", "object")
        else:
            text = str(option.get("type", "any"))
        bounds = [
            f"{sign} {option[key]}"
            for key, sign in (
                ("minimum", ">="), ("exclusiveMinimum", ">"),
                ("maximum", "<="), ("exclusiveMaximum", "<"),
            )
            if key in option
        ]
        if bounds:
            text += f" ({', '.join(bounds)})"
        texts.append(text)
    return " | ".join(dict.fromkeys(texts))


def _object_option(schema: Mapping, root: Mapping) -> Mapping | None:
    for option in _options(schema, root):
        if "properties" in option:
            return option
    return None


def _walk_arguments(
    schema: Mapping, root: Mapping, *, prefix: str, skip: Sequence[str], depth: int
) -> Iterator[tuple[str, Mapping, bool]]:
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in skip:
            continue
        yield prefix + name, prop, name in required
        nested = _object_option(prop, root)
        if nested is not None and depth < 4:
            yield from _walk_arguments(
                nested, root, prefix=f"{prefix}{name}.", skip=(), depth=depth + 1
            )


def task_arguments(task: TaskSpec) -> list[ArgumentInfo]:
    """The arguments a user can give `task`, nested option fields included."""
    found: dict[str, ArgumentInfo] = {}
    for part in task.parts:
        schema = task.schema(part)
        managed = MANAGED_PARALLEL if part == "parallel" else MANAGED_NON_PARALLEL
        for name, prop, required in _walk_arguments(
            schema, schema, prefix="", skip=managed, depth=0
        ):
            if name in found:
                found[name] = replace(found[name], part="both")
                continue
            resolved = _resolve(prop, schema)
            found[name] = ArgumentInfo(
                name=name,
                type=_type_text(prop, schema),
                default=json.dumps(resolved["default"]) if "default" in resolved else None,
                required=required,
                description=" ".join(str(resolved.get("description", "")).split()),
                part=part if task.type == "compound" else task.type,
            )
    return list(found.values())


def argument_schema(task: TaskSpec, dotted_name: str) -> list[Mapping]:
    """The schema alternatives of an argument given by a dotted name ([] if unknown)."""
    for part in task.parts:
        schema = task.schema(part)
        current: list[Mapping] = [schema]
        for key in dotted_name.split("."):
            current = [
                option["properties"][key]
                for alternative in current
                for option in _options(alternative, schema)
                if key in option.get("properties", {})
            ]
            if not current:
                break
        if current:
            return [option for alt in current for option in _options(alt, schema)]
    return []


def _check_keys(value: Any, schema: Mapping, root: Mapping, path: str, what: str) -> None:
    """Reject keys a strict schema does not know, naming the known ones."""
    if not isinstance(value, Mapping):
        return
    objects = [option for option in _options(schema, root) if "properties" in option]
    if not objects:
        return
    known = {key for option in objects for key in option["properties"]}
    strict = all(option.get("additionalProperties") is False for option in objects)
    for key, item in value.items():
        if key not in known:
            if strict:
                where = f"in {path!r} " if path else ""
                raise InvalidInputError(
                    f"Unknown argument {key!r} {where}for {what}; its arguments are: "
                    f"{', '.join(sorted(known))}."
                )
            continue
        for option in objects:
            if key in option["properties"]:
                _check_keys(
                    item, option["properties"][key], root, f"{path}.{key}".lstrip("."), what
                )


def split_arguments(task: TaskSpec, args: Mapping | None) -> dict[Part, dict]:
    """Check a user's arguments and split them between the parts of `task`.

    An argument goes to every part whose schema names it. Giving an argument
    that Fractal manages (`zarr_url`, `zarr_urls`, `init_args`), an unknown
    one or none of a required one is an error.
    """
    args = copy.deepcopy(dict(args or {}))
    for key in FORBIDDEN_ARGS:
        if key in args:
            raise InvalidInputError(
                f"Do not give {key!r}: the runner sets it for every image. Give the "
                "image or plate to run on instead."
            )
    split: dict[Part, dict] = {}
    known: set[str] = set()
    for part in task.parts:
        schema = task.schema(part)
        managed = MANAGED_PARALLEL if part == "parallel" else MANAGED_NON_PARALLEL
        names = [name for name in schema.get("properties", {}) if name not in managed]
        known.update(names)
        split[part] = {key: value for key, value in args.items() if key in names}
    unknown = [key for key in args if key not in known]
    if unknown:
        raise InvalidInputError(
            f"Unknown argument(s) {', '.join(map(repr, unknown))} for task {task.name!r}; "
            f"its arguments are: {', '.join(sorted(known)) or '(none)'}."
        )
    for part in task.parts:
        schema = task.schema(part)
        managed = MANAGED_PARALLEL if part == "parallel" else MANAGED_NON_PARALLEL
        missing = [
            name for name in schema.get("required", ())
            if name not in managed and name not in split[part]
        ]
        if missing:
            raise InvalidInputError(
                f"Task {task.name!r} needs argument(s) {', '.join(map(repr, missing))} "
                f"(e.g. --set {missing[0]}=...)."
            )
        _check_keys(split[part], schema, schema, "", f"task {task.name!r}")
    return split


# --------------------------------------------------------------------------
# Images


def _is_remote(url: str) -> bool:
    return "://" in url


def normalize_url(url: str | os.PathLike[str]) -> str:
    """An absolute path without a trailing slash (remote URLs only lose the slash)."""
    text = os.fspath(url)
    if _is_remote(text):
        return text.rstrip("/")
    return str(Path(text).expanduser().absolute())


def image_urls(url: str | os.PathLike[str]) -> list[str]:
    """The image at `url`, or every image of the plate (or well) at `url`.

    Raises:
        NotFoundError: nothing at `url`, or a plate without images.
        InvalidInputError: `url` is a Zarr group but neither an image, a well
            nor a plate.
    """
    import ngio

    url = normalize_url(url)
    if not _is_remote(url) and not Path(url).exists():
        raise NotFoundError(f"No such OME-Zarr image or plate: {url!r} does not exist.")
    try:
        plate = ngio.open_ome_zarr_plate(url, mode="r")
        paths = plate.images_paths(max_workers="auto")
    except ngio.NgioFileNotFoundError as err:
        raise NotFoundError(f"{url!r} is not a Zarr group (no OME-Zarr there).") from err
    except ngio.NgioError:
        pass
    else:
        if not paths:
            raise NotFoundError(f"The plate {url!r} has no images.")
        return [f"{url}/{path}" for path in paths]
    try:
        well_paths = ngio.open_ome_zarr_well(url, mode="r").paths()
    except ngio.NgioError:
        pass
    else:
        if not well_paths:
            raise NotFoundError(f"The well {url!r} has no images.")
        return [f"{url}/{path}" for path in well_paths]
    try:
        ngio.open_ome_zarr_container(url, mode="r")
    except ngio.NgioError as err:
        raise InvalidInputError(
            f"{url!r} is neither an OME-Zarr image nor an HCS plate or well (no "
            "'multiscales', 'plate' or 'well' metadata could be read). Give the path "
            "of a plate (e.g. my_plate.zarr) or of an image (e.g. my_plate.zarr/B/03/0)."
        ) from err
    return [url]


def _plate_of(zarr_url: str) -> str | None:
    """The plate holding the image at `zarr_url` (local images only), else None."""
    if _is_remote(zarr_url) or image_context(zarr_url).well is None:
        return None
    return str(Path(zarr_url).parents[2])


def display_name(zarr_url: str) -> str:
    """Short name of an image: ``B/03/0`` in a plate, the folder name otherwise."""
    if _plate_of(zarr_url) is not None:
        return "/".join(Path(zarr_url).parts[-3:])
    return zarr_url.rstrip("/").rsplit("/", 1)[-1]


def default_zarr_dir(zarr_urls: Sequence[str]) -> str:
    """Where a Fractal server would let init tasks write: the plate's parent folder."""
    first = zarr_urls[0]
    plate = _plate_of(first)
    anchor = plate if plate is not None else first.rstrip("/")
    return anchor.rsplit("/", 1)[0] if _is_remote(anchor) else str(Path(anchor).parent)


# --------------------------------------------------------------------------
# Running


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
    """Sent to the progress callback after each job: `done` of `total` in `part`."""

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
