"""The demo: a plate from bundled real images, the arguments every task runs
with on it, and a summary of what the tasks found.

``fractal-roi-tasks demo`` (see `fractal_roi_tasks.cli`) builds the plate with
`build_demo_plate`, runs every task of the manifest with its `DEMO_ARGS`
through `fractal_roi_tasks.runner` and prints `summarize`'s result. Everything
here returns data; nothing prints.

A task added to the manifest needs an entry in `DEMO_ARGS` (a test checks),
otherwise the demo skips it and says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fractal_roi_tasks.names import (
    FEATURE_TABLE,
    FOV_ROI_TABLE,
    QUALITY_COLUMN,
    REGISTERED_TABLE,
    ROI_EXPORT_DIR,
    TRANSLATION_COLUMN,
)
from fractal_roi_tasks.runner import TaskSpec, list_tasks
from fractal_roi_tasks.sample_data import (
    NUCLEI_LABEL,
    SamplePlate,
    TileGrid,
    make_plate,
    random_shifts,
)

logger = logging.getLogger(__name__)

DEMO_PLATE_NAME = "demo.zarr"
"""Name of the demo plate's folder inside the demo directory."""

DEMO_PLATE_OPTIONS: dict = {
    "plate_name": DEMO_PLATE_NAME,
    "wells": ("B03", "B04"),
    "acquisitions": 2,
    "fov_grid": (2, 2),
    "z_planes": 1,
    "ngff_version": "0.4",
    # The second cycle's FOVs land up to 25 px off the first, each its own way.
    "shifts": random_shifts(acquisitions=2, n_fovs=4, max_shift_px=25.0, seed=7),
    "noise": 150.0,
}
"""`make_plate` options of the demo plate (NGFF 0.4: what Fiji and napari read best)."""

DEMO_TILES_NAME = "tiles.zarr"
"""Name of the demo's second plate: one well imaged as a grid of overlapping tiles."""

DEMO_TILE_OPTIONS: dict = {
    "grid": (3, 3),
    "tile_shape": (200, 200),
    "overlap": 0.15,
    "jitter_px": 4.0,
    "noise": 0.01,
    "vignetting": 0.2,
    "seed": 5,
}
"""`tile_grid` options of the tile plate: the real nuclei cut into 3 x 3 tiles, 4 px stage error."""

STITCH_TASK = "Stitch and Deduplicate"
DEMO_TILE_TASKS = (STITCH_TASK,)
"""Tasks the demo runs on the tile plate (and on no other image)."""

DEMO_FIGURE_NAME = "demo_overview.png"
"""The demo's overview figure (one panel per operation), in the demo directory."""

SEGMENTED_LABEL = "nuclei_segmented"
"""Label image the demo segments from the DAPI channel."""

def _exports() -> list[str]:
    """Every ROI format usable here (OME-XML only with the `ome-xml` extra)."""
    from fractal_roi_tasks.errors import FractalRoiTasksError
    from fractal_roi_tasks.formats import FORMATS, get_format

    usable = []
    for name in FORMATS:
        try:
            get_format(name)
        except FractalRoiTasksError:
            continue
        usable.append(name)
    return usable


DEMO_EXPORTS = _exports()

DEMO_ARGS: dict[str, list[dict]] = {
    "Calculate Registration (image-based)": [{"channel": {"label": "DAPI"}}],
    "Find Registration Consensus": [{}],
    "Apply Registration to Image": [
        {"registered_roi_table": REGISTERED_TABLE.format(roi_table=FOV_ROI_TABLE), "overwrite_input": False}
    ],
    STITCH_TASK: [{"channel": {"label": "DAPI"}}],
    "Segment to ROIs": [
        # The nuclei labels that came with the images.
        {"label_name": NUCLEI_LABEL, "exports": DEMO_EXPORTS},
        # Segment DAPI ourselves (li threshold, touching nuclei split).
        {
            "label_name": SEGMENTED_LABEL,
            "segmentation": {"channel": {"label": "DAPI"}},
            "exports": DEMO_EXPORTS,
        },
    ],
    # On the time-lapse (demo_timelapse): the drift table, then the corrected movie beside it.
    "Calculate Drift": [{"channel": {"label": "DAPI"}}],
    "Apply Drift Correction": [{"overwrite_input": False}],
}
"""Manifest task name -> the argument sets the demo runs it with, in order."""

DRIFT_CORRECTED = "drift_corrected"
"""Target of a `DEMO_LAST_ARGS` step: the movie Apply Drift Correction wrote."""

DEMO_LAST_ARGS: list[tuple[str, str, dict]] = [
    # The corrected movie's nuclei, every time point, as ROIs (runs after the correction).
    ("Segment to ROIs", DRIFT_CORRECTED, {"label_name": NUCLEI_LABEL, "exports": DEMO_EXPORTS}),
]
"""(task name, target, arguments) run after every manifest task, in order."""


@dataclass(frozen=True)
class DemoStep:
    """One run of the demo: a task with one argument set (`target`: see `DEMO_LAST_ARGS`)."""

    task: TaskSpec
    args: dict
    target: str | None = None


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs (`steps`, in manifest order) and skips (task names)."""

    steps: list[DemoStep]
    skipped: list[str]


def demo_plan(tasks: list[TaskSpec] | None = None) -> DemoPlan:
    """Every manifest task with its demo arguments; tasks without any are skipped."""
    tasks = list_tasks() if tasks is None else tasks
    steps, skipped = [], []
    for task in tasks:
        arg_sets = DEMO_ARGS.get(task.name)
        if not arg_sets:
            logger.debug("Task %r has no demo arguments; the demo skips it.", task.name)
            skipped.append(task.name)
            continue
        steps.extend(DemoStep(task=task, args=dict(args)) for args in arg_sets)
    by_name = {task.name: task for task in tasks}
    for name, target, args in DEMO_LAST_ARGS:
        if name in by_name and DEMO_ARGS.get(name):  # a skipped task is skipped here too
            steps.append(DemoStep(task=by_name[name], args=dict(args), target=target))
    return DemoPlan(steps=steps, skipped=skipped)


def demo_plate_path(root: str | os.PathLike[str]) -> Path:
    """Where `build_demo_plate` writes the plate under `root`."""
    return Path(root).expanduser().absolute() / DEMO_PLATE_NAME


def build_demo_plate(root: str | os.PathLike[str], *, overwrite: bool = False) -> SamplePlate:
    """Write the demo plate into the folder `root` (see `DEMO_PLATE_OPTIONS`)."""
    return make_plate(root, **DEMO_PLATE_OPTIONS, overwrite=overwrite)


@dataclass(frozen=True)
class DemoTiles:
    """The demo's tile plate: its image and the truth the tiles were cut with."""

    zarr_url: str
    grid: TileGrid


def build_demo_tiles(root: str | os.PathLike[str], *, overwrite: bool = False) -> DemoTiles:
    """Write the tile plate into `root` (see `DEMO_TILE_OPTIONS`); label ids unique per image."""
    from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei
    from fractal_roi_tasks.sample_data import make_tiled_plate, tile_grid

    raw, nuclei = load_cardiomyocyte_nuclei()
    grid = tile_grid(raw / 65535.0, object_labels=nuclei, **DEMO_TILE_OPTIONS)
    root = Path(root).expanduser().absolute()
    url = make_tiled_plate(
        root, grid, plate_name=DEMO_TILES_NAME, overwrite=overwrite, label_name=NUCLEI_LABEL,
        unique_label_ids=True,
    )
    return DemoTiles(zarr_url=url, grid=grid)


# --------------------------------------------------------------------------
# Summary


@dataclass(frozen=True)
class LabelSummary:
    """The measurements of one label image of one image.

    Attributes:
        zarr_url: the image.
        well: e.g. ``"B03"`` (None outside a plate).
        image: the image's path in its well, e.g. ``"0"``.
        label: the label image's name.
        n_objects: rows of its feature table.
        size_column: ``"area_um2"`` (2D) or ``"volume_um3"`` (3D), None if absent.
        median_size: median of that column.
        mean_intensity: mean over objects of their mean intensity, None when
            the table has none (only segmentation measures intensity).
        intensity_channel: the channel that intensity was measured in, if known.
        roi_files: files written under ``rois/{label}/``.
    """

    zarr_url: str
    well: str | None
    image: str
    label: str
    n_objects: int
    size_column: str | None
    median_size: float | None
    mean_intensity: float | None
    intensity_channel: str | None
    roi_files: list[str]


def _intensity_channels() -> dict[str, str]:
    """label name -> channel label/wavelength the demo segments it from."""
    channels = {}
    for arg_sets in DEMO_ARGS.values():
        for args in arg_sets:
            channel = (args.get("segmentation") or {}).get("channel") or {}
            name = channel.get("label") or channel.get("wavelength_id")
            if name and "label_name" in args:
                channels[args["label_name"]] = name
    return channels


def summarize(zarr_urls: list[str]) -> list[LabelSummary]:
    """What the tasks found in each image: one row per image and measured label image.

    A label image counts as measured when its feature table
    (``{label}_features``) exists.
    """
    import ngio

    from fractal_roi_tasks.io.context import image_context

    channels = _intensity_channels()
    rows = []
    for zarr_url in zarr_urls:
        container = ngio.open_ome_zarr_container(zarr_url, mode="r")
        tables = set(container.list_tables())
        context = image_context(zarr_url)
        for label in container.list_labels():
            table_name = FEATURE_TABLE.format(label_name=label)
            if table_name not in tables:
                continue
            frame = container.get_feature_table(table_name).dataframe
            size_column = next(
                (name for name in ("area_um2", "volume_um3") if name in frame), None
            )
            has_intensity = "mean_intensity" in frame and len(frame) > 0
            folder = Path(zarr_url) / ROI_EXPORT_DIR.format(label_name=label)
            rows.append(
                LabelSummary(
                    zarr_url=zarr_url,
                    well=context.well,
                    image=context.image,
                    label=label,
                    n_objects=len(frame),
                    size_column=size_column,
                    median_size=(
                        float(frame[size_column].median())
                        if size_column and len(frame) else None
                    ),
                    mean_intensity=(
                        float(frame["mean_intensity"].mean()) if has_intensity else None
                    ),
                    intensity_channel=channels.get(label) if has_intensity else None,
                    roi_files=sorted(str(path) for path in folder.glob("*") if path.is_file()),
                )
            )
    return rows


@dataclass(frozen=True)
class RegistrationSummary:
    """How well registration recovered one cycle's known shifts."""

    well: str
    acquisition: int
    n_rois: int
    largest_shift_px: float
    max_error_px: float
    median_quality: float


def summarize_registration(plate: SamplePlate) -> list[RegistrationSummary]:
    """Measured translations against the shifts the demo plate was built with."""
    import ngio

    rows = []
    for image in plate.images:
        if image.acquisition == 0:
            continue
        container = ngio.open_ome_zarr_container(image.zarr_url, mode="r")
        frame = container.get_roi_table(FOV_ROI_TABLE).dataframe
        if TRANSLATION_COLUMN.format(axis="x") not in frame:
            continue
        errors, shifts = [], []
        for fov, row in frame.iterrows():
            truth = plate.truth[(image.well, image.acquisition, fov)]
            measured = [row[TRANSLATION_COLUMN.format(axis=axis)] for axis in "yx"]
            errors += [abs(m - t) / plate.pixel_size_um for m, t in zip(measured, truth.translation_um[1:])]
            shifts += [abs(t) for t in truth.translation_px[1:]]
        rows.append(
            RegistrationSummary(
                well=image.well,
                acquisition=image.acquisition,
                n_rois=len(frame),
                largest_shift_px=max(shifts),
                max_error_px=max(errors),
                median_quality=float(frame[QUALITY_COLUMN].median()),
            )
        )
    return rows


def roi_formats() -> list[str]:
    """Names of the ROI file formats the demo wrote."""
    return list(DEMO_EXPORTS)


@dataclass(frozen=True)
class StitchSummary:
    """How well stitching recovered the tile plate's known geometry and objects."""

    zarr_url: str
    n_tiles: int
    fell_back: int
    rms_error_px: float
    stage_rms_error_px: float
    n_objects: int
    true_objects: int


def summarize_stitching(tiles: DemoTiles) -> StitchSummary | None:
    """Placement error between neighbours and object count of the stitched tile image."""
    import ngio
    import numpy as np

    from fractal_roi_tasks.names import (
        MASKING_ROI_TABLE,
        STITCH_CORRECTION_COLUMNS,
        STITCH_FALLBACK_COLUMN,
        STITCHED_IMAGE,
    )

    url = str(Path(tiles.zarr_url).with_name(STITCHED_IMAGE.format(image=Path(tiles.zarr_url).name)))
    if not Path(url).exists():
        return None
    container = ngio.open_ome_zarr_container(url, mode="r")
    frame = container.get_roi_table(FOV_ROI_TABLE).dataframe
    pixel = float(container.get_image().pixel_size.x)
    grid = tiles.grid
    correction = frame[list(STITCH_CORRECTION_COLUMNS)].to_numpy(float) / pixel
    placed = grid.stage_px + correction
    rows, columns = grid.grid
    pairs = [(i, i + 1) for i in range(rows * columns) if (i + 1) % columns]
    pairs += [(i, i + columns) for i in range(rows * columns - columns)]

    def rms(positions):
        errors = [
            (positions[j] - positions[i]) - (grid.positions_px[j] - grid.positions_px[i])
            for i, j in pairs
        ]
        return float(np.sqrt(np.mean(np.square(errors))))

    height, width = grid.tile_shape[-2:]
    covered = np.zeros(grid.object_labels.shape[-2:], bool)
    for y, x in grid.label_positions_px:
        covered[y : y + height, x : x + width] = True
    masking = container.get_table(MASKING_ROI_TABLE.format(label_name=NUCLEI_LABEL)).dataframe
    return StitchSummary(
        zarr_url=url,
        n_tiles=len(frame),
        fell_back=int(frame[STITCH_FALLBACK_COLUMN].sum()),
        rms_error_px=rms(placed),
        stage_rms_error_px=rms(grid.stage_px),
        n_objects=len(masking),
        true_objects=len(np.unique(grid.object_labels[covered])) - 1,
    )
