"""Make the docs pages' pictures (docs/images/*.png) from the demo's real outputs.

    python docs/make_figures.py [DEMO_DIR] [--out docs/images]

DEMO_DIR is a folder ``fractal-roi-tasks demo DIR`` wrote (both plates); when
it does not hold a demo yet (both plates and the time-lapse), the demo is run there first. Needs matplotlib
(``pip install "fractal-roi-tasks[figure]"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAGE_IMAGES = {
    "segment_to_rois": "segment_to_rois",
    "roi_files": "segment_to_rois",
    "calculate_registration": "registration",
    "find_registration_consensus": "registration",
    "apply_registration_to_image": "registration",
    "stitch_and_dedup": "stitch_and_dedup",
    "drift_correction": "drift_correction",
    "calculate_drift": "drift_correction",
}
"""Docs page (without .md) -> the picture it embeds (docs/images/{name}.png)."""

PAGES = {
    "segment_to_rois": ["segment_to_rois"],
    "registration": ["registration_before", "registration_after"],
    "stitch_and_dedup": [
        "stitch_mosaic", "stitch_seam_hard", "stitch_seam_blended",
        "stitch_labels_before", "stitch_labels_after",
    ],
    "drift_correction": ["drift_path", "drift_kymograph_before", "drift_kymograph_after"],
}
"""Picture name -> the panels it shows, in order."""

DOCS_DPI = 60
"""Resolution of the docs pictures (kept small: they are committed)."""


def make_figures(demo_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write each picture of `PAGES` into `out_dir`; returns name -> path."""
    from fractal_roi_tasks import demo, demo_timelapse
    from fractal_roi_tasks.figures import compose
    from fractal_roi_tasks.figures.read import gather

    demo_dir = Path(demo_dir)
    plates = [demo_dir / demo.DEMO_PLATE_NAME, demo_dir / demo.DEMO_TILES_NAME,
              demo_timelapse.timelapse_path(demo_dir)]
    if not all(plate.exists() for plate in plates):
        from fractal_roi_tasks.cli import main

        if main(["demo", str(demo_dir), "-j", "2"]) != 0:
            raise RuntimeError(f"the demo failed in {demo_dir}")
    data = gather(*map(str, plates))
    by_key = {panel.key: panel for panel in data.panels}
    written = {}
    for page, keys in PAGES.items():
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise RuntimeError(f"{page}: panels {missing} could not be made: {data.missing}")
        path = Path(out_dir) / f"{page}.png"
        compose.save_panels([by_key[key] for key in keys], path, columns=len(keys), dpi=DOCS_DPI)
        written[page] = path
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("demo_dir", nargs="?", default="fractal-roi-demo")
    parser.add_argument("--out", default=str(Path(__file__).with_name("images")))
    args = parser.parse_args(argv)
    for page, path in make_figures(args.demo_dir, args.out).items():
        print(f"{page}: {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
