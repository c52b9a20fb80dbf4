"""What the command prints: lines on stdout, notes and errors on stderr, progress and reports.

Every line the command prints goes through `out` (stdout) or `warn` (stderr).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap

PROG = "fractal-roi-tasks"
"""The command's name, as messages and help texts show it."""


def out(text: str = "") -> None:
    print(text, flush=True)


def warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def text_width() -> int:
    return min(shutil.get_terminal_size((100, 24)).columns, 100)


def one_line(err: BaseException) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors) and type(err).__name__ == "ValidationError":
        try:
            details = "; ".join(
                f"{'.'.join(map(str, e.get('loc', ()))) or 'value'}: {e.get('msg')}"
                for e in errors()
            )
            return f"invalid arguments: {details}"
        except Exception:  # noqa: BLE001 - fall back to the plain message
            pass
    return " ".join(str(err).split()) or type(err).__name__


def progress_printer(verbose: bool):
    def show(progress) -> None:
        result = progress.result
        width = len(str(progress.total))
        status = "ok    " if result.ok else "FAILED"
        line = (
            f"[{progress.done:>{width}}/{progress.total}] {status}  {result.name}  "
            f"{result.duration_s:.1f} s"
        )
        if not result.ok:
            error = re.sub(r"^[\w.]+\.(\w+: )", r"\1", result.error or "")
            line += f"  {textwrap.shorten(error, 100)}"
        out(line)
        if verbose and result.log.strip():
            out(textwrap.indent(result.log.rstrip(), "      | "))

    return show


def report(summary) -> bool:
    """Print the end of a run: counts, then every failure. True if all went well."""
    if summary.ok:
        images = summary.image_results
        if summary.task.type == "non_parallel":
            n = len(summary.zarr_urls)
            done = f"ok on {n} image{'' if n == 1 else 's'} at once"
        else:
            done = f"{len(images)} of {len(images)} image{'' if len(images) == 1 else 's'} ok"
        out(f"Done: {summary.task.name}, {done} in {summary.duration_s:.1f} s.")
        return True
    failures = summary.failures
    out(f"FAILED: {summary.task.name}, {len(failures)} of {len(summary.results)} "
         f"job(s) failed (in {summary.duration_s:.1f} s):")
    for result in failures:
        out(f"  {result.name}: exit {result.returncode}: {result.error}")
    first = failures[0]
    if first.log.strip():
        out(f"Last lines of the log of {first.name}:")
        out(textwrap.indent(first.log_tail, "  | "))
    init_failed = any(result.part == "non_parallel" for result in failures)
    if init_failed and summary.task.type == "compound":
        out("The init part failed, so no image was processed.")
    return False


def describe_args(args: dict) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in args.items()) or "defaults"
