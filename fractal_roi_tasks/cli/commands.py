"""The ``list``, ``run`` and ``figure`` commands."""

from __future__ import annotations

import argparse
import textwrap

from fractal_roi_tasks.cli.assignments import load_args, parse_assignments
from fractal_roi_tasks.cli.output import (
    PROG,
    describe_args,
    out,
    progress_printer,
    report,
    text_width,
    warn,
)


def list_command(args: argparse.Namespace) -> int:
    from fractal_roi_tasks.runner import find_task, list_tasks, task_arguments

    tasks = [find_task(args.task)] if args.task else list_tasks()
    width = text_width()
    for index, task in enumerate(tasks):
        if index:
            out()
        modules = ", ".join(task.module_names)
        out(f"{task.name}  ({task.type} task; module {modules})")
        arguments = task_arguments(task)
        if not arguments:
            out("  (no arguments besides the Fractal-managed ones)")
        for arg in arguments:
            depth = arg.name.count(".")
            indent = "  " + "  " * depth
            default = "required" if arg.default is None and arg.required else (
                f"default {arg.default}" if arg.default is not None else "optional"
            )
            part = f", {arg.part} part" if task.type == "compound" and arg.part != "both" else ""
            out(f"{indent}{arg.name}: {arg.type} ({default}{part})")
            if arg.description:
                out(textwrap.fill(
                    arg.description, width=width,
                    initial_indent=indent + "    ", subsequent_indent=indent + "    ",
                ))
    if not args.task:
        out()
        out(f"Run one with: {PROG} run TASK URL --set key=value  (see {PROG} run --help)")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from fractal_roi_tasks.runner import find_task, image_urls, run_task, split_arguments

    task = find_task(args.task)
    if args.zarr_dir is not None and task.type == "parallel":
        warn(f"{PROG}: note: --zarr-dir is ignored: {task.name!r} has no init part.")
    task_args = parse_assignments(args.assignments, load_args(args.args_json), task=task)
    # Check the arguments before looking at any image (zarr_dir may also come from them).
    split_arguments(task, {key: value for key, value in task_args.items() if key != "zarr_dir"})
    urls = image_urls(args.url)
    where = (
        f"image {urls[0]}" if len(urls) == 1
        else f"{len(urls)} images of {args.url} ({min(args.workers, len(urls))} at a time)"
    )
    out(f"{task.name} on {where}; arguments: {describe_args(task_args)}")
    summary = run_task(
        task, urls, task_args, zarr_dir=args.zarr_dir, workers=args.workers,
        progress=progress_printer(args.verbose),
    )
    return 0 if report(summary) else 1


def figure_command(args: argparse.Namespace) -> int:
    from fractal_roi_tasks.figures import compose

    if not compose.have_matplotlib():
        warn(f"{PROG}: error: the figure needs matplotlib: {compose.INSTALL_HINT}")
        return 1
    path, data = compose.write_figure(args.paths, args.output)
    out(f"Wrote {path} ({len(data.panels)} panels: {', '.join(p.key for p in data.panels)})")
    for key, reason in data.missing.items():
        out(f"  not drawn: {key}: {reason}")
    return 0
