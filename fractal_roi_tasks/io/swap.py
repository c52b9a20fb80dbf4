"""Replace a directory by a new one so that a kill at any moment loses nothing.

A new version of the directory `target` is built beside it and published in
steps, each of which a re-run can recognise and finish without a journal:

1. ``{parent}/.{name}.building``: being written; a leftover is deleted.
2. ``{parent}/.{name}.complete``: renamed from (1) once everything is on disk
   (an atomic rename, so a complete build is never confused with a partial one).
3. publish: if `target` exists, ``renameat2(RENAME_EXCHANGE)`` swaps (2) and
   `target` atomically (Linux), so `target` always holds a complete directory;
   the old one, now at (2), is renamed to ``{parent}/.{name}.trash`` and
   deleted. Without the exchange (another OS, a filesystem refusing it):
   `target` -> (4) ``{parent}/.{name}.old``, then (2) -> `target`, then (4) ->
   trash. Recovery rule: `target` missing and (4) present means "finish the
   swap" if (2) is there, else "put (4) back".

`plan_output` and `build_once` are the whole cycle for a task that writes a
new version of an image (Apply Registration, Stitch and Deduplicate): recover,
name the output, then build, mark complete and publish only if the output does
not already hold what the task would write.

A test-only hook: with ``FRACTAL_ROI_TASKS_CRASH_AT=<point>`` in the
environment the process exits at once (``os._exit``) when it reaches
`crash_point(<point>)`, to test recovery from a kill at every step.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fractal_roi_tasks.errors import AlreadyExistsError

logger = logging.getLogger(__name__)

CRASH_ENV = "FRACTAL_ROI_TASKS_CRASH_AT"
NO_EXCHANGE_ENV = "FRACTAL_ROI_TASKS_NO_EXCHANGE"
MARKER = ".fractal_roi_tasks_build.json"
"""A file inside a built image saying what it was built from (zarr ignores it)."""

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def crash_point(name: str) -> None:
    """Exit the process here if the test hook asks for it (see the module docstring)."""
    if os.environ.get(CRASH_ENV) == name:
        logger.debug("crash point %s reached: exiting", name)
        os._exit(1)


class _Sibling:
    """``{parent}/.{name}.{suffix}`` beside a `Staging`'s target, the suffix
    being the attribute's own name (``staging.old`` -> ``.{name}.old``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.suffix = name

    def __get__(self, staging: Staging | None, owner: type | None = None) -> Path | _Sibling:
        if staging is None:
            return self
        return staging.target.parent / f".{staging.target.name}.{self.suffix}"


@dataclass(frozen=True)
class Staging:
    """The sibling paths used to replace the directory `target` (module docstring)."""

    target: Path
    building = _Sibling()
    complete = _Sibling()
    old = _Sibling()
    trash = _Sibling()

    @classmethod
    def of(cls, target: str | os.PathLike[str]) -> Staging:
        return cls(Path(os.path.abspath(os.fspath(target).rstrip("/"))))


def recover(staging: Staging) -> None:
    """Finish an interrupted two-rename swap and delete leftovers that are safe to delete.

    After this, `target` exists if it existed before the interrupted run; a
    complete build at ``.complete`` is kept (the caller decides whether it is
    still wanted), a partial one at ``.building`` and the ``.trash`` go.
    """
    if not staging.target.exists() and staging.old.exists():
        if staging.complete.exists():
            os.rename(staging.complete, staging.target)
            logger.warning("%s: finished an interrupted swap", staging.target)
        else:
            os.rename(staging.old, staging.target)
            logger.warning("%s: put back the original after an interrupted swap", staging.target)
    if staging.old.exists():  # target exists: the swap was finished
        os.rename(staging.old, staging.trash)
    for leftover in (staging.trash, staging.building):
        if leftover.exists():
            shutil.rmtree(leftover)


def discard_complete(staging: Staging) -> None:
    """Delete a complete build that is no longer wanted (e.g. built from other input)."""
    if staging.complete.exists():
        os.rename(staging.complete, staging.trash)
        shutil.rmtree(staging.trash)


def start_building(staging: Staging) -> Path:
    """An empty place to build into (a partial build left by a kill is deleted)."""
    if staging.building.exists():
        shutil.rmtree(staging.building)
    discard_complete(staging)
    return staging.building


def mark_complete(staging: Staging, marker: dict) -> None:
    """Write `marker` into the build, then declare it complete (atomic rename)."""
    _write_json(staging.building / MARKER, marker)
    crash_point("built")
    _fsync_dir(staging.building)
    os.rename(staging.building, staging.complete)
    _fsync_dir(staging.target.parent)
    crash_point("completed")


def publish(staging: Staging) -> None:
    """Put the complete build at `target`; the previous `target`, if any, is deleted."""
    if not staging.target.exists():
        os.rename(staging.complete, staging.target)
        _fsync_dir(staging.target.parent)
        crash_point("published")
        return
    if _exchange(staging.complete, staging.target):
        crash_point("exchanged")
        os.rename(staging.complete, staging.trash)
    else:
        os.rename(staging.target, staging.old)
        crash_point("moved_away")
        os.rename(staging.complete, staging.target)
        crash_point("exchanged")
        os.rename(staging.old, staging.trash)
    _fsync_dir(staging.target.parent)
    crash_point("trashed")
    shutil.rmtree(staging.trash)


@dataclass(frozen=True)
class Output:
    """Where a task writes the new version of the image `source`."""

    source: Path
    target: Path
    """`source` itself (the task replaces it) or a new image beside it."""
    staging: Staging

    @property
    def in_place(self) -> bool:
        return self.target == self.source


def plan_output(zarr_url: str, *, new_name: str, overwrite_input: bool) -> Output:
    """Name the output of a task on `zarr_url` and recover what a kill left there.

    `new_name` is the template of the output's name beside the input
    (``"{image}_registered"``), used unless `overwrite_input`.
    """
    source = Path(os.path.abspath(zarr_url.rstrip("/")))
    target = source if overwrite_input else source.with_name(new_name.format(image=source.name))
    recover(Staging.of(source))  # a kill in a two-rename swap can leave the input missing
    staging = Staging.of(target)
    recover(staging)
    return Output(source=source, target=target, staging=staging)


def build_once(
    output: Output,
    wanted: dict,
    build: Callable[[Path], dict],
    *,
    source_key: str,
    task: str,
) -> bool:
    """Build, mark complete and publish `output`, unless it already holds `wanted`.

    `wanted` is what the output's marker records about its input; its entry
    `source_key` is the input's fingerprint. An image built in place becomes
    its own input, so there the marker's ``"output"`` entry (the fingerprint of
    what the build wrote) is compared with it instead. `build(path)` writes the
    new image at `path` and returns the entries to add to the marker (at least
    ``"output"``); if it raises, the partial build is deleted. A complete
    build left by a killed run is published without building again when it
    was built from the same input.

    Returns:
        False when the output already held `wanted` (nothing was written).

    Raises:
        AlreadyExistsError: `output.target` is a new name but something this
            package did not write is there.
    """
    staging = output.staging
    marker = read_marker(output.target)
    if not output.in_place and output.target.exists() and marker is None:
        raise AlreadyExistsError(
            f"{output.target} exists and was not written by {task}; move it away or set "
            "overwrite_input."
        )
    if marker is not None and _holds(marker, wanted, source_key, in_place=output.in_place):
        discard_complete(staging)
        return False
    complete = read_marker(staging.complete) if staging.complete.exists() else None
    if complete is None or any(complete.get(key) != value for key, value in wanted.items()):
        building = start_building(staging)
        try:
            entries = build(building)
        except BaseException:  # a failed build is never published: don't leave it lying about
            shutil.rmtree(building, ignore_errors=True)
            raise
        mark_complete(staging, {**wanted, **entries})
    publish(staging)
    return True


def _holds(marker: dict, wanted: dict, source_key: str, *, in_place: bool) -> bool:
    """Whether an image with `marker` is what a build from `wanted` would write."""
    if any(marker.get(key) != value for key, value in wanted.items() if key != source_key):
        return False
    return marker.get("output" if in_place else source_key) == wanted[source_key]


def read_marker(directory: str | os.PathLike[str]) -> dict | None:
    """The marker of a built directory, or None."""
    try:
        return json.loads((Path(directory) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, content: dict) -> None:
    with open(path, "w") as handle:
        json.dump(content, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exchange(first: Path, second: Path) -> bool:
    """Atomically exchange two paths; False when the OS or filesystem cannot."""
    if os.environ.get(NO_EXCHANGE_ENV):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        logger.debug("renameat2 exchange not supported here (%s): two renames", os.strerror(code))
        return False
    raise OSError(code, os.strerror(code), os.fspath(first), None, os.fspath(second))
