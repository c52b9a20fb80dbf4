"""The tasks of the installed ``__FRACTAL_MANIFEST__.json``: `TaskSpec`, and
loading, listing and finding them by name.

>>> task = find_task("segment_to_rois")
>>> task.name, task.type
('Segment to ROIs', 'parallel')
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Literal

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)

PACKAGE = "fractal_roi_tasks"
MANIFEST_FILE = "__FRACTAL_MANIFEST__.json"

TaskType = Literal["parallel", "non_parallel", "compound"]
Part = Literal["parallel", "non_parallel"]


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
