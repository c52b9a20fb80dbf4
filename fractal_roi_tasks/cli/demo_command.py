"""The ``demo`` command: build the demo plates, run every task, say what was found and where."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from fractal_roi_tasks.cli.output import PROG, describe_args, out, progress_printer, report, warn


def demo_command(args: argparse.Namespace) -> int:
    from fractal_roi_tasks import demo, demo_timelapse
    from fractal_roi_tasks.runner import image_urls, run_task

    plate_path = demo.demo_plate_path(args.directory)
    if plate_path.exists() and any(plate_path.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"The demo plate {plate_path} already exists; pass --overwrite to rebuild it, "
            "or give another DIR."
        )
    plan = demo.demo_plan()
    options = demo.DEMO_PLATE_OPTIONS
    out(f"Building the demo plate {plate_path}")
    out(f"  wells {', '.join(options['wells'])}, {options['acquisitions']} cycles, "
         f"{options['fov_grid'][0]} x {options['fov_grid'][1]} fields of view of real nuclei "
         "(DAPI) and retina (GFP) images, label image 'nuclei'; cycle 1 is shifted by known "
         "sub-pixel amounts")
    start = time.perf_counter()
    plate = demo.build_demo_plate(args.directory, overwrite=args.overwrite)
    urls = image_urls(plate.plate_url)
    out(f"  {len(urls)} images written in {time.perf_counter() - start:.1f} s.")
    tile_options = demo.DEMO_TILE_OPTIONS
    out(f"Building the tile plate {demo.demo_plate_path(args.directory).with_name(demo.DEMO_TILES_NAME)}")
    out(f"  one well imaged as {tile_options['grid'][0]} x {tile_options['grid'][1]} tiles "
         f"overlapping by {tile_options['overlap']:.0%}, the stage off by "
         f"~{tile_options['jitter_px']:g} px per tile, labels segmented tile by tile")
    tiles = demo.build_demo_tiles(args.directory, overwrite=args.overwrite)
    out(f"Building the time-lapse {demo_timelapse.timelapse_path(args.directory)}")
    out(f"  one field of real nuclei and retina imaged {len(demo_timelapse.DEMO_TIMELAPSE_OPTIONS['path'])} "
         "times while the stage drifts (sub-pixel random walk, a jump, a blank frame)")
    timelapse = demo_timelapse.build_demo_timelapse(args.directory, overwrite=args.overwrite)

    for name in plan.skipped:
        warn(f"\nSKIPPED: task {name!r} has no demo arguments (add them to DEMO_ARGS in "
              "fractal_roi_tasks/demo.py); it was NOT run.")
    failed = []
    for number, step in enumerate(plan.steps, start=1):
        out(f"\nStep {number} of {len(plan.steps)}: {step.task.name}, "
             f"{describe_args(step.args)}")
        if step.target == demo.DRIFT_CORRECTED:
            targets = [str(demo_timelapse.corrected_path(timelapse))]
        elif step.task.name in demo.DEMO_TILE_TASKS:
            targets = [tiles.zarr_url]
        elif step.task.name in demo_timelapse.DEMO_TIMELAPSE_TASKS:
            targets = [timelapse.zarr_url]
        else:
            targets = urls
        summary = run_task(
            step.task, targets, step.args, workers=args.workers,
            progress=progress_printer(args.verbose),
        )
        if not report(summary):
            failed.append(f"step {number} ({step.task.name})")

    rows = demo.summarize(urls)
    _print_registration(demo.summarize_registration(plate))
    _print_stitching(demo.summarize_stitching(tiles))
    _print_drift(demo_timelapse.summarize_drift(timelapse))
    _print_corrected_rois(demo_timelapse.summarize_corrected_rois(timelapse))
    _print_findings(rows)
    _print_outputs(plate.plate_url, urls, rows)
    _demo_figure(args.directory, plate.plate_url, tiles.zarr_url, timelapse.zarr_url)
    if plan.skipped:
        warn(f"\nWARNING: {len(plan.skipped)} task(s) were skipped (no demo arguments): "
              f"{', '.join(plan.skipped)}.")
    if failed:
        warn(f"\nFAILED: {len(failed)} demo run(s) failed: {', '.join(failed)}.")
        return 1
    return 0


def _demo_figure(directory, plate_url: str, tiles_url: str, timelapse_url: str) -> None:
    from fractal_roi_tasks import demo, demo_timelapse
    from fractal_roi_tasks.figures import compose

    if not compose.have_matplotlib():
        out(f"\nOverview figure: not drawn (matplotlib is missing); {compose.INSTALL_HINT}, "
             f"then: {PROG} figure '{Path(directory).expanduser().absolute()}'")
        return
    from fractal_roi_tasks.figures.drift import KEYS as DRIFT_KEYS
    from fractal_roi_tasks.figures.read import FigureData, gather

    data = gather(plate_url, str(Path(tiles_url).parents[2]), timelapse_url)
    root = Path(directory).expanduser().absolute()
    # The plates' panels in the overview, the time-lapse's in a figure of their own.
    for name, picture, is_drift in (
        ("Overview figure", demo.DEMO_FIGURE_NAME, False),
        ("Drift figure", demo_timelapse.DEMO_DRIFT_FIGURE_NAME, True),
    ):
        part = FigureData(
            panels=[p for p in data.panels if (p.key in DRIFT_KEYS) == is_drift],
            missing={k: v for k, v in data.missing.items() if k.startswith("drift") == is_drift},
        )
        if not part.panels:
            out(f"\n{name}: not drawn, nothing to show ({'; '.join(part.missing.values())}).")
            continue
        path = compose.save_overview(part, root / picture)
        out(f"\n{name} ({len(part.panels)} panels): {path}")
        for key, reason in part.missing.items():
            out(f"  not drawn: {key}: {reason}")


def _print_registration(rows) -> None:
    if not rows:
        return
    out("\nRegistration against cycle 0 (the demo knows the true shifts)")
    for row in rows:
        out(f"  well {row.well} cycle {row.acquisition}: {row.n_rois} FOVs, shifts up to "
             f"{row.largest_shift_px:.1f} px recovered within {row.max_error_px:.3f} px, "
             f"median quality {row.median_quality:.2f}")


def _print_stitching(row) -> None:
    if row is None:
        return
    out("\nStitching (the demo knows where each tile really was)")
    fallback = f", {row.fell_back} left at the stage position" if row.fell_back else ""
    out(f"  {row.n_tiles} tiles placed{fallback}: neighbours within {row.rms_error_px:.2f} px "
         f"RMS of the truth (the stage alone: {row.stage_rms_error_px:.1f} px)")
    out(f"  {row.n_objects} nuclei after merging those cut by tile borders "
         f"({row.true_objects} true nuclei in the mosaic)")
    out(f"  image: {row.zarr_url}")


def _print_drift(row) -> None:
    if row is None:
        return
    out("\nDrift correction (the demo knows the true drift path)")
    out(f"  {row.n_frames} time points drifting up to {row.largest_drift_px:.1f} px: found within "
         f"{row.max_error_px:.3f} px on every measured frame")
    blank = ", ".join(map(str, row.blank_frames)) or "none"
    flagged = ", ".join(map(str, row.flagged_frames)) or "none"
    out(f"  blank frames {blank}; flagged and interpolated: {flagged}")
    if row.corrected_url:
        out(f"  corrected movie: {row.corrected_url}")


def _print_corrected_rois(row) -> None:
    if row is None:
        return
    low, high = min(row.per_time_point), max(row.per_time_point)
    count = str(low) if low == high else f"{low} to {high}"
    files = f"; {row.n_files} ROI files in {row.roi_folder}" if row.roi_folder else ""
    out(f"  ROIs of the corrected movie (label '{row.label}'): {count} objects at each of "
        f"{len(row.per_time_point)} time points, each moving at most "
        f"{row.largest_move_px:.2f} px over time{files}")


def _print_findings(rows) -> None:
    out("\nWhat the tasks found")
    if not rows:
        out("  nothing: no feature table was written.")
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
        out("  " + "  ".join(cells).rstrip())
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.label] = totals.get(row.label, 0) + row.n_objects
    out("  total: " + ", ".join(f"{n} objects in '{label}'" for label, n in totals.items()))


def _print_outputs(plate_url: str, urls: list[str], rows) -> None:
    from fractal_roi_tasks import demo
    from fractal_roi_tasks.names import FEATURE_TABLE, MASKING_ROI_TABLE

    first = urls[0]
    labels = list(dict.fromkeys(row.label for row in rows))
    files = [path for row in rows for path in row.roi_files]
    out("\nWhere the outputs are")
    out(f"  plate:  {plate_url}")
    out(f"  images: {', '.join(urls)}")
    if labels:
        tables = ", ".join(
            name.format(label_name=label)
            for label in labels for name in (MASKING_ROI_TABLE, FEATURE_TABLE)
        )
        out(f"  tables in each image (OME-Zarr, under tables/): {tables}")
        out("    in Python: ngio.open_ome_zarr_container(IMAGE)"
             f".get_feature_table({FEATURE_TABLE.format(label_name=labels[0])!r}).dataframe")
    if files:
        out(f"  ROI files ({len(files)}), next to each image under rois/<label>/, e.g.")
        for path in files[:2]:
            out(f"    {path}")

    formats = demo.roi_formats()
    folder = f"{first}/rois/{labels[0]}" if labels else f"{first}/rois"
    out("\nHow to open them")
    out(f"  napari: napari --plugin napari-ome-zarr {shlex.quote(first)}")
    out("          (pip install napari napari-ome-zarr; the labels open as layers)")
    if "json" in formats:
        out(f"          ROIs: napari {shlex.quote(folder)}  (this package's reader: shapes,")
        out("          points and masks with their measurements as features)")
    out("  Fiji:   File > Import > HDF5/N5/Zarr/OME-NGFF (the n5-ij plugin), then "
         "paste the image path;")
    if "imagej" in formats:
        out("          ROIs: drag the .roi.zip onto Fiji (the ROI Manager opens it; each ROI")
        out("          keeps its measurements as properties: ROI Manager > Properties)")
    if "geojson" in formats:
        out("  QuPath: open the image, then drag the .geojson onto it (or File > Import")
        out("          objects from file): detections with their measurements")
    if "ome_xml" in formats:
        out("  OMERO:  the .ome.xml holds OME ROIs (Polygon, Mask, Ellipse, Point, Polyline)")
        out("          with measurements as map annotations, for omero-cli-transfer or OME-TIFF")
    else:
        out('  OMERO:  pip install "fractal-roi-tasks[ome-xml]" to also write .ome.xml ROIs')
