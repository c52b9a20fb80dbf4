"""The ``fractal-roi-tasks`` command: list the tasks, run one, or run the demo.

Tasks run exactly as a Fractal server runs them (one ``python -m
fractal_roi_tasks.tasks.<module>`` process per image), through
`fractal_roi_tasks.runner`; this module only parses, prints and sets up logging.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import shutil
import sys
import textwrap
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from fractal_roi_tasks import __version__
from fractal_roi_tasks.errors import FractalRoiTasksError, InvalidInputError

logger = logging.getLogger(__name__)

PROG = "fractal-roi-tasks"

# Known third-party warnings that say nothing to a user of the command.
_QUIET_WARNINGS = (
    # anndata 0.12 warns on every Zarr v2 (NGFF 0.4) table that ngio writes.
    "Writing zarr v2 data will no longer be the default",
    # zarr 3 warns when anndata consolidates a Zarr v3 (NGFF 0.5) table's metadata.
    "Consolidated metadata is currently not part in the Zarr format 3 specification",
)

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


# --------------------------------------------------------------------------
# Parsing


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _formatter(prog: str) -> argparse.HelpFormatter:
    width = min(shutil.get_terminal_size((100, 24)).columns, 100)
    return argparse.RawDescriptionHelpFormatter(prog, width=width)


def _add_common(parser: argparse.ArgumentParser, *, run: bool) -> None:
    parser.add_argument(
        "-j", "--workers", type=_workers, default=2, metavar="N",
        help="images to run at once (default: 2)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="show the log of every task process" if run else "more detail",
    )


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

    listing = commands.add_parser(
        "list", help="the tasks and their arguments",
        description="List the tasks of the manifest with their arguments\n"
        "(name, type, default, description).",
        epilog=_LIST_EPILOG, formatter_class=_formatter,
    )
    listing.add_argument(
        "task", nargs="?", metavar="TASK", help="show only this task (manifest or module name)"
    )
    listing.set_defaults(func=_cmd_list)

    run = commands.add_parser(
        "run", help="run one task over an image or a whole plate",
        description="Run one task over one OME-Zarr image or every image of a plate,\n"
        "several images at once, the init part of a compound task first.",
        epilog=_RUN_EPILOG, formatter_class=_formatter,
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
    run.set_defaults(func=_cmd_run)

    demo = commands.add_parser(
        "demo", help="build a demo plate and run every task on it",
        description="Build a demo HCS plate from bundled real images, run every task\n"
        "on it, and show what was found and how to open the results.",
        epilog=_DEMO_EPILOG, formatter_class=_formatter,
    )
    demo.add_argument(
        "directory", nargs="?", default="fractal-roi-demo", metavar="DIR",
        help="where to write the demo (default: ./fractal-roi-demo)",
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="replace a demo plate already in DIR"
    )
    _add_common(demo, run=True)
    demo.set_defaults(func=_cmd_demo)

    figure = commands.add_parser(
        "figure", help="draw an overview PNG of what the tasks did on a plate or image",
        description="Draw one panel per operation (ROI outlines, registration overlay,\n"
        "stitched mosaic, seam, labels before/after de-duplication) from a plate\n"
        "or image the tasks have run on. Needs matplotlib "
        '(pip install "fractal-roi-tasks[figure]").',
        formatter_class=_formatter,
    )
    figure.add_argument("paths", nargs="+", metavar="IMAGE_OR_PLATE", help="OME-Zarr plate(s) or image(s)")
    figure.add_argument("-o", "--output", default="overview.png", help="PNG to write (default: overview.png)")
    figure.add_argument("-v", "--verbose", action="store_true", help="log what is read")
    figure.set_defaults(func=_cmd_figure)
    return parser


def _load_args(text: str | None) -> dict:
    if text is None:
        return {}
    source = "--args"
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"--args file {str(path)!r} does not exist.") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidInputError(f"{source} is not valid JSON ({err}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{source} must be a JSON object, got {text[:80]!r}.")
    return value


_JSON_TYPES = {
    str: "string", bool: "boolean", int: "integer", float: "number",
    type(None): "null", list: "array", dict: "object",
}


def _fits(value: object, options: Sequence[dict]) -> bool:
    """Whether a parsed JSON value matches one of the schema options' types."""
    kind = _JSON_TYPES.get(type(value))
    for option in options:
        if "enum" in option or "const" in option:
            if value in option.get("enum", [option.get("const")]):
                return True
            continue
        allowed = option.get("type")
        if allowed is None or allowed == kind or (allowed == "number" and kind == "integer"):
            return True
    return False


def parse_assignments(
    items: Sequence[str], base: dict | None = None, *, task=None
) -> dict:
    """Apply ``key=value`` items onto a copy of `base`.

    Values are read as JSON when they parse, else kept as text. With a `task`,
    a value whose JSON reading does not fit the argument's type while the text
    does (``level=0`` for a string argument) stays text. Dotted keys set
    nested fields.
    """
    from fractal_roi_tasks.runner import argument_schema

    result = json.loads(json.dumps(base or {}))
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise InvalidInputError(
                f"--set expects key=value (e.g. label_name=nuclei), got {item!r}."
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if task is not None and not isinstance(value, str):
            options = argument_schema(task, key)
            if options and not _fits(value, options) and _fits(raw, options):
                value = raw
        target = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            nested = target.setdefault(part, {})
            if nested is None:
                nested = target[part] = {}
            if not isinstance(nested, dict):
                raise InvalidInputError(
                    f"--set {item!r}: {'.'.join(parts[: depth + 1])!r} is already "
                    f"{json.dumps(nested)}, not an object."
                )
            target = nested
        target[parts[-1]] = value
    return result


# --------------------------------------------------------------------------
# Printing


def _out(text: str = "") -> None:
    print(text, flush=True)


def _warn(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _width() -> int:
    return min(shutil.get_terminal_size((100, 24)).columns, 100)


def _one_line(err: BaseException) -> str:
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


def _progress_printer(verbose: bool):
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
        _out(line)
        if verbose and result.log.strip():
            _out(textwrap.indent(result.log.rstrip(), "      | "))

    return show


def _report(summary) -> bool:
    """Print the end of a run: counts, then every failure. True if all went well."""
    if summary.ok:
        images = summary.image_results
        if summary.task.type == "non_parallel":
            n = len(summary.zarr_urls)
            done = f"ok on {n} image{'' if n == 1 else 's'} at once"
        else:
            done = f"{len(images)} of {len(images)} image{'' if len(images) == 1 else 's'} ok"
        _out(f"Done: {summary.task.name}, {done} in {summary.duration_s:.1f} s.")
        return True
    failures = summary.failures
    _out(f"FAILED: {summary.task.name}, {len(failures)} of {len(summary.results)} "
         f"job(s) failed (in {summary.duration_s:.1f} s):")
    for result in failures:
        _out(f"  {result.name}: exit {result.returncode}: {result.error}")
    first = failures[0]
    if first.log.strip():
        _out(f"Last lines of the log of {first.name}:")
        _out(textwrap.indent(first.log_tail, "  | "))
    init_failed = any(result.part == "non_parallel" for result in failures)
    if init_failed and summary.task.type == "compound":
        _out("The init part failed, so no image was processed.")
    return False


def _describe_args(args: dict) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in args.items()) or "defaults"


# --------------------------------------------------------------------------
# Commands


def _cmd_list(args: argparse.Namespace) -> int:
    from fractal_roi_tasks.runner import find_task, list_tasks, task_arguments

    tasks = [find_task(args.task)] if args.task else list_tasks()
    width = _width()
    for index, task in enumerate(tasks):
        if index:
            _out()
        modules = ", ".join(task.module_names)
        _out(f"{task.name}  ({task.type} task; module {modules})")
        arguments = task_arguments(task)
        if not arguments:
            _out("  (no arguments besides the Fractal-managed ones)")
        for arg in arguments:
            depth = arg.name.count(".")
            indent = "  " + "  " * depth
            default = "required" if arg.default is None and arg.required else (
                f"default {arg.default}" if arg.default is not None else "optional"
            )
            part = f", {arg.part} part" if task.type == "compound" and arg.part != "both" else ""
            _out(f"{indent}{arg.name}: {arg.type} ({default}{part})")
            if arg.description:
                _out(textwrap.fill(
                    arg.description, width=width,
                    initial_indent=indent + "    ", subsequent_indent=indent + "    ",
                ))
    if not args.task:
        _out()
        _out(f"Run one with: {PROG} run TASK URL --set key=value  (see {PROG} run --help)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from fractal_roi_tasks.runner import find_task, image_urls, run_task, split_arguments

    task = find_task(args.task)
    if args.zarr_dir is not None and task.type == "parallel":
        _warn(f"{PROG}: note: --zarr-dir is ignored: {task.name!r} has no init part.")
    task_args = parse_assignments(args.assignments, _load_args(args.args_json), task=task)
    # Check the arguments before looking at any image (zarr_dir may also come from them).
    split_arguments(task, {key: value for key, value in task_args.items() if key != "zarr_dir"})
    urls = image_urls(args.url)
    where = (
        f"image {urls[0]}" if len(urls) == 1
        else f"{len(urls)} images of {args.url} ({min(args.workers, len(urls))} at a time)"
    )
    _out(f"{task.name} on {where}; arguments: {_describe_args(task_args)}")
    summary = run_task(
        task, urls, task_args, zarr_dir=args.zarr_dir, workers=args.workers,
        progress=_progress_printer(args.verbose),
    )
    return 0 if _report(summary) else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from fractal_roi_tasks import demo
    from fractal_roi_tasks.runner import image_urls, run_task

    plate_path = demo.demo_plate_path(args.directory)
    if plate_path.exists() and any(plate_path.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"The demo plate {plate_path} already exists; pass --overwrite to rebuild it, "
            "or give another DIR."
        )
    plan = demo.demo_plan()
    options = demo.DEMO_PLATE_OPTIONS
    _out(f"Building the demo plate {plate_path}")
    _out(f"  wells {', '.join(options['wells'])}, {options['acquisitions']} cycles, "
         f"{options['fov_grid'][0]} x {options['fov_grid'][1]} fields of view of real nuclei "
         "(DAPI) and retina (GFP) images, label image 'nuclei'; cycle 1 is shifted by known "
         "sub-pixel amounts")
    start = time.perf_counter()
    plate = demo.build_demo_plate(args.directory, overwrite=args.overwrite)
    urls = image_urls(plate.plate_url)
    _out(f"  {len(urls)} images written in {time.perf_counter() - start:.1f} s.")
    tile_options = demo.DEMO_TILE_OPTIONS
    _out(f"Building the tile plate {demo.demo_plate_path(args.directory).with_name(demo.DEMO_TILES_NAME)}")
    _out(f"  one well imaged as {tile_options['grid'][0]} x {tile_options['grid'][1]} tiles "
         f"overlapping by {tile_options['overlap']:.0%}, the stage off by "
         f"~{tile_options['jitter_px']:g} px per tile, labels segmented tile by tile")
    tiles = demo.build_demo_tiles(args.directory, overwrite=args.overwrite)

    for name in plan.skipped:
        _warn(f"\nSKIPPED: task {name!r} has no demo arguments (add them to DEMO_ARGS in "
              "fractal_roi_tasks/demo.py); it was NOT run.")
    failed = []
    for number, step in enumerate(plan.steps, start=1):
        _out(f"\nStep {number} of {len(plan.steps)}: {step.task.name}, "
             f"{_describe_args(step.args)}")
        targets = [tiles.zarr_url] if step.task.name in demo.DEMO_TILE_TASKS else urls
        summary = run_task(
            step.task, targets, step.args, workers=args.workers,
            progress=_progress_printer(args.verbose),
        )
        if not _report(summary):
            failed.append(f"step {number} ({step.task.name})")

    rows = demo.summarize(urls)
    _print_registration(demo.summarize_registration(plate))
    _print_stitching(demo.summarize_stitching(tiles))
    _print_findings(rows)
    _print_outputs(plate.plate_url, urls, rows)
    _demo_figure(args.directory, plate.plate_url, tiles.zarr_url)
    if plan.skipped:
        _warn(f"\nWARNING: {len(plan.skipped)} task(s) were skipped (no demo arguments): "
              f"{', '.join(plan.skipped)}.")
    if failed:
        _warn(f"\nFAILED: {len(failed)} demo run(s) failed: {', '.join(failed)}.")
        return 1
    return 0


def _demo_figure(directory, plate_url: str, tiles_url: str) -> None:
    from fractal_roi_tasks import demo
    from fractal_roi_tasks.figures import compose

    if not compose.have_matplotlib():
        _out(f"\nOverview figure: not drawn (matplotlib is missing); {compose.INSTALL_HINT}, "
             f"then: {PROG} figure '{plate_url}' '{Path(tiles_url).parents[2]}'")
        return
    from fractal_roi_tasks.figures.read import gather

    data = gather(plate_url, str(Path(tiles_url).parents[2]))
    if not data.panels:
        _out(f"\nOverview figure: not drawn, nothing to show ({'; '.join(data.missing.values())}).")
        return
    path = compose.save_overview(data, Path(directory).expanduser().absolute() / demo.DEMO_FIGURE_NAME)
    _out(f"\nOverview figure ({len(data.panels)} panels): {path}")
    for key, reason in data.missing.items():
        _out(f"  not drawn: {key}: {reason}")


def _cmd_figure(args: argparse.Namespace) -> int:
    from fractal_roi_tasks.figures import compose

    if not compose.have_matplotlib():
        _warn(f"{PROG}: error: the figure needs matplotlib: {compose.INSTALL_HINT}")
        return 1
    path, data = compose.write_figure(args.paths, args.output)
    _out(f"Wrote {path} ({len(data.panels)} panels: {', '.join(p.key for p in data.panels)})")
    for key, reason in data.missing.items():
        _out(f"  not drawn: {key}: {reason}")
    return 0


def _print_registration(rows) -> None:
    if not rows:
        return
    _out("\nRegistration against cycle 0 (the demo knows the true shifts)")
    for row in rows:
        _out(f"  well {row.well} cycle {row.acquisition}: {row.n_rois} FOVs, shifts up to "
             f"{row.largest_shift_px:.1f} px recovered within {row.max_error_px:.3f} px, "
             f"median quality {row.median_quality:.2f}")


def _print_stitching(row) -> None:
    if row is None:
        return
    _out("\nStitching (the demo knows where each tile really was)")
    fallback = f", {row.fell_back} left at the stage position" if row.fell_back else ""
    _out(f"  {row.n_tiles} tiles placed{fallback}: neighbours within {row.rms_error_px:.2f} px "
         f"RMS of the truth (the stage alone: {row.stage_rms_error_px:.1f} px)")
    _out(f"  {row.n_objects} nuclei after merging those cut by tile borders "
         f"({row.true_objects} true nuclei in the mosaic)")
    _out(f"  image: {row.zarr_url}")


def _print_findings(rows) -> None:
    _out("\nWhat the tasks found")
    if not rows:
        _out("  nothing: no feature table was written.")
        return
    header = ("well", "image", "label image", "objects", "median size", "mean intensity")
    table = [header]
    for row in rows:
        unit = {"area_um2": "um²", "volume_um3": "um³"}.get(row.size_column, "")
        size = f"{row.median_size:.1f} {unit}" if row.median_size is not None else "-"
        intensity = (
            f"{row.mean_intensity:.0f} ({row.intensity_channel or 'segmented channel'})"
            if row.mean_intensity is not None else "-"
        )
        table.append((row.well or "-", row.image, row.label, str(row.n_objects), size, intensity))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        cells = [
            cell.rjust(width) if i == 3 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        ]
        _out("  " + "  ".join(cells).rstrip())
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.label] = totals.get(row.label, 0) + row.n_objects
    _out("  total: " + ", ".join(f"{n} objects in '{label}'" for label, n in totals.items()))


def _print_outputs(plate_url: str, urls: list[str], rows) -> None:
    from fractal_roi_tasks import demo
    from fractal_roi_tasks.names import FEATURE_TABLE, MASKING_ROI_TABLE

    first = urls[0]
    labels = list(dict.fromkeys(row.label for row in rows))
    files = [path for row in rows for path in row.roi_files]
    _out("\nWhere the outputs are")
    _out(f"  plate:  {plate_url}")
    _out(f"  images: {', '.join(urls)}")
    if labels:
        tables = ", ".join(
            name.format(label_name=label)
            for label in labels for name in (MASKING_ROI_TABLE, FEATURE_TABLE)
        )
        _out(f"  tables in each image (OME-Zarr, under tables/): {tables}")
        _out("    in Python: ngio.open_ome_zarr_container(IMAGE)"
             f".get_feature_table({FEATURE_TABLE.format(label_name=labels[0])!r}).dataframe")
    if files:
        _out(f"  ROI files ({len(files)}), next to each image under rois/<label>/, e.g.")
        for path in files[:2]:
            _out(f"    {path}")

    formats = demo.roi_formats()
    folder = f"{first}/rois/{labels[0]}" if labels else f"{first}/rois"
    _out("\nHow to open them")
    _out(f"  napari: napari --plugin napari-ome-zarr {shlex.quote(first)}")
    _out("          (pip install napari napari-ome-zarr; the labels open as layers)")
    if "json" in formats:
        _out(f"          ROIs: napari {shlex.quote(folder)}  (this package's reader: shapes,")
        _out("          points and masks with their measurements as features)")
    _out("  Fiji:   File > Import > HDF5/N5/Zarr/OME-NGFF (the n5-ij plugin), then "
         "paste the image path;")
    if "imagej" in formats:
        _out("          ROIs: drag the .roi.zip onto Fiji (the ROI Manager opens it; each ROI")
        _out("          keeps its measurements as properties: ROI Manager > Properties)")
    if "geojson" in formats:
        _out("  QuPath: open the image, then drag the .geojson onto it (or File > Import")
        _out("          objects from file): detections with their measurements")
    if "ome_xml" in formats:
        _out("  OMERO:  the .ome.xml holds OME ROIs (Polygon, Mask, Ellipse, Point, Polyline)")
        _out("          with measurements as map annotations, for omero-cli-transfer or OME-TIFF")
    else:
        _out('  OMERO:  pip install "fractal-roi-tasks[ome-xml]" to also write .ome.xml ROIs')


# --------------------------------------------------------------------------
# Entry point


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(getattr(args, "verbose", False))
    with warnings.catch_warnings():
        for message in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        try:
            return args.func(args)
        except KeyboardInterrupt:
            _warn(f"{PROG}: interrupted.")
            return 130
        except (FractalRoiTasksError, ValueError, LookupError, OSError) as err:
            _warn(f"{PROG}: error: {_one_line(err)}")
            logger.debug("Details:", exc_info=True)
            return 1


if __name__ == "__main__":
    sys.exit(main())
