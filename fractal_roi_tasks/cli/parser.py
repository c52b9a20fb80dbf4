"""The command-line parser: the subcommands, their options and their help texts."""

from __future__ import annotations

import argparse

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


def _add_command(commands, name: str, func, **texts) -> argparse.ArgumentParser:
    """A subcommand running `func`, its help laid out like every other's."""
    parser = commands.add_parser(name, formatter_class=_formatter, **texts)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (subcommands `list`, `run`, `demo`)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fractal tasks for OME-Zarr (ROIs, registration, stitching), run\n"
        "from the command line exactly as a Fractal server runs them.",
        epilog=_MAIN_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = _add_command(
        commands, "list", list_command, help="the tasks and their arguments",
        description="List the tasks of the manifest with their arguments\n"
        "(name, type, default, description).",
        epilog=_LIST_EPILOG,
    )
    listing.add_argument(
        "task", nargs="?", metavar="TASK", help="show only this task (manifest or module name)"
    )

    run = _add_command(
        commands, "run", run_command, help="run one task over an image or a whole plate",
        description="Run one task over one OME-Zarr image or every image of a plate,\n"
        "several images at once, the init part of a compound task first.",
        epilog=_RUN_EPILOG,
    )
    run.add_argument("task", metavar="TASK", help="task name or module name")
    run.add_argument("url", metavar="URL", help="OME-Zarr plate, well or image")
    run.add_argument(
        "--args", dest="args_json", metavar="JSON",
        help="the task's arguments as a JSON object, or @file.json",
    )
    run.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="set one argument (repeatable); dotted keys set nested fields",
    )
    run.add_argument(
        "--zarr-dir", metavar="DIR",
        help="folder for the init/non-parallel part of a task (default: the plate's parent)",
    )
    _add_common(run, run=True)

    demo = _add_command(
        commands, "demo", demo_command, help="build a demo plate and run every task on it",
        description="Build a demo HCS plate from bundled real images, run every task\n"
        "on it, and show what was found and how to open the results.",
        epilog=_DEMO_EPILOG,
    )
    demo.add_argument(
        "directory", nargs="?", default="fractal-roi-demo", metavar="DIR",
        help="where to write the demo (default: ./fractal-roi-demo)",
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="replace a demo plate already in DIR"
    )
    _add_common(demo, run=True)

    figure = _add_command(
        commands, "figure", figure_command, help="draw an overview PNG of what the tasks did on a plate or image",
        description="Draw one panel per operation (ROI outlines, registration overlay,\n"
        "stitched mosaic, seam, labels before/after de-duplication; for a time-lapse\n"
        "the drift path and kymographs before/after correction) from a plate, image\n"
        "or folder the tasks have run on. Needs matplotlib "
        '(pip install "fractal-roi-tasks[figure]").',
    )
    figure.add_argument("paths", nargs="+", metavar="IMAGE_OR_PLATE", help="OME-Zarr plate(s) or image(s)")
    figure.add_argument("-o", "--output", default="overview.png", help="PNG to write (default: overview.png)")
    figure.add_argument("-v", "--verbose", action="store_true", help="log what is read")
    return parser
