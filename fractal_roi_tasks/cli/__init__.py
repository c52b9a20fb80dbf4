"""The ``fractal-roi-tasks`` command: list the tasks, run one, run the demo, draw a figure.

Tasks run exactly as a Fractal server runs them (one ``python -m
fractal_roi_tasks.tasks.<module>`` process per image), through
`fractal_roi_tasks.runner`; the command only parses, prints and sets up
logging. Its modules: ``parser`` (the argparse subcommands and their help),
``assignments`` (task arguments from ``--args`` and ``--set``), ``output``
(progress lines, reports, one-line errors), ``commands`` (``list``, ``run``,
``figure``) and ``demo_command`` (``demo`` and what it prints).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

from fractal_roi_tasks.cli.assignments import parse_assignments
from fractal_roi_tasks.cli.output import PROG, one_line, warn
from fractal_roi_tasks.cli.parser import build_parser
from fractal_roi_tasks.errors import FractalRoiTasksError

__all__ = ["PROG", "build_parser", "main", "parse_assignments"]

logger = logging.getLogger(__name__)

# Known third-party warnings that say nothing to a user of the command.
_QUIET_WARNINGS = (
    # anndata 0.12 warns on every Zarr v2 (NGFF 0.4) table that ngio writes.
    "Writing zarr v2 data will no longer be the default",
    # zarr 3 warns when anndata consolidates a Zarr v3 (NGFF 0.5) table's metadata.
    "Consolidated metadata is currently not part in the Zarr format 3 specification",
)


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
            warn(f"{PROG}: interrupted.")
            return 130
        except (FractalRoiTasksError, ValueError, LookupError, OSError) as err:
            warn(f"{PROG}: error: {one_line(err)}")
            logger.debug("Details:", exc_info=True)
            return 1

