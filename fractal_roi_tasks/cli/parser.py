"""The command-line parser: the subcommands, their options and their help texts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from fractal_roi_tasks import __version__
from fractal_roi_tasks.cli.commands import figure_command, list_command, run_command
from fractal_roi_tasks.cli.demo_command import demo_command
from fractal_roi_tasks.cli.output import PROG, text_width

_MAIN_EPILOG = f"""\
examples:
  {PROG} demo                       build a demo plate and run every task on it
  {PROG} list                       the tasks and their arguments
  {PROG} run segment_to_rois my_plate.zarr --set label_name=nuclei
  {PROG} <command> --help           more about one command
"""

_LIST_EPILOG = f"""\
examples:
  {PROG} list
  {PROG} list segment_to_rois
  {PROG} list "Segment to ROIs"
"""

_RUN_EPILOG = f"""\
TASK is a name from `{PROG} list`, e.g. "Segment to ROIs" (any case) or its
module name segment_to_rois. URL is an OME-Zarr plate (every image runs), a
well, or one image (e.g. my_plate.zarr/B/03/0). Every image runs in its own
process, as on a Fractal server; the Fractal-managed arguments (zarr_url,
zarr_urls, zarr_dir, init_args) are filled in for you.

--set key=value sets one argument: the value is read as JSON when it parses
(numbers, true/false, null, lists, objects), else kept as text; a dotted key
sets a field of an option group. --set is applied after --args.

examples:
  {PROG} run segment_to_rois my_plate.zarr --set label_name=nuclei
  {PROG} run "Segment to ROIs" my_plate.zarr/B/03/0 \\
      --set label_name=nuclei --set 'exports=["json"]' --set shape=ellipse
  {PROG} run segment_to_rois my_plate.zarr -j 4 \\
      --set label_name=nuclei_seg --set segmentation.channel.label=DAPI
  {PROG} run segment_to_rois my_plate.zarr --args '{{"label_name": "nuclei"}}'
  {PROG} run segment_to_rois my_plate.zarr --args @args.json

exit status: 0 if every image succeeded, 1 if any failed or on error.
"""

_DEMO_EPILOG = f"""\
The demo writes an OME-Zarr plate (2 wells, 2 x 2 fields of view, channels
DAPI and GFP, real nuclei labels) made from images bundled with the installed
packages (no download), runs every task on it the way a Fractal server does,
and tells you what was found and how to open the results.

examples:
  {PROG} demo
  {PROG} demo /tmp/roi-demo --overwrite -j 4
"""


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, width=text_width())


def _add_common(parser: argparse.ArgumentParser, *, run: bool) -> None:
    parser.add_argument(
        "-j", "--workers", type=_workers, default=2, metavar="N",
        help="images to run at once (default: 2)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="show the log of every task process" if run else "more detail",
    )


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "task", nargs="?", metavar="TASK", help="show only this task (manifest or module name)"
    )


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="task name or module name")
    parser.add_argument("url", metavar="URL", help="OME-Zarr plate, well or image")
    parser.add_argument(
        "--args", dest="args_json", metavar="JSON",
        help="the task's arguments as a JSON object, or @file.json",
    )
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="set one argument (repeatable); dotted keys set nested fields",
    )
    parser.add_argument(
        "--zarr-dir", metavar="DIR",
        help="folder for the init/non-parallel part of a task (default: the plate's parent)",
    )
    _add_common(parser, run=True)


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", nargs="?", default="fractal-roi-demo", metavar="DIR",
        help="where to write the demo (default: ./fractal-roi-demo)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a demo plate already in DIR"
    )
    _add_common(parser, run=True)


def _figure_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="IMAGE_OR_PLATE", help="OME-Zarr plate(s) or image(s)"
    )
    parser.add_argument(
        "-o", "--output", default="overview.png", help="PNG to write (default: overview.png)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is read")


@dataclass(frozen=True)
class _Subcommand:
    """One subcommand: the function it runs, its help texts and its own arguments."""

    name: str
    func: Callable[[argparse.Namespace], int]
    summary: str
    """The line beside the name in the main help."""
    description: str
    epilog: str | None
    add_arguments: Callable[[argparse.ArgumentParser], None]


_LIST_DESCRIPTION = """\
List the tasks of the manifest with their arguments
(name, type, default, description)."""

_RUN_DESCRIPTION = """\
Run one task over one OME-Zarr image or every image of a plate,
several images at once, the init part of a compound task first."""

_DEMO_DESCRIPTION = """\
Build a demo HCS plate from bundled real images, run every task
on it, and show what was found and how to open the results."""

_FIGURE_DESCRIPTION = """\
Draw one panel per operation (ROI outlines, registration overlay,
stitched mosaic, seam, labels before/after de-duplication; for a time-lapse
the drift path and kymographs before/after correction) from a plate, image
or folder the tasks have run on. Needs matplotlib (pip install "fractal-roi-tasks[figure]")."""

# The subcommands, in the order the main help lists them.
_SUBCOMMANDS = (
    _Subcommand(
        "list", list_command, "the tasks and their arguments",
        _LIST_DESCRIPTION, _LIST_EPILOG, _list_arguments,
    ),
    _Subcommand(
        "run", run_command, "run one task over an image or a whole plate",
        _RUN_DESCRIPTION, _RUN_EPILOG, _run_arguments,
    ),
    _Subcommand(
        "demo", demo_command, "build a demo plate and run every task on it",
        _DEMO_DESCRIPTION, _DEMO_EPILOG, _demo_arguments,
    ),
    _Subcommand(
        "figure", figure_command, "draw an overview PNG of what the tasks did on a plate or image",
        _FIGURE_DESCRIPTION, None, _figure_arguments,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (subcommands `list`, `run`, `demo`, `figure`)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fractal tasks for OME-Zarr (ROIs, registration, stitching), run\n"
        "from the command line exactly as a Fractal server runs them.",
        epilog=_MAIN_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _SUBCOMMANDS:
        subparser = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=command.epilog,
            formatter_class=_formatter,
        )
        subparser.set_defaults(func=command.func)
        command.add_arguments(subparser)
    return parser
