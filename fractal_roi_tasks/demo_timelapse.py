"""The demo's time-lapse: a real field drifting along a known path, and how well the drift was found.

The demo runs the drift tasks (`DEMO_TIMELAPSE_TASKS`) on this image alone:
Calculate Drift writes the drift table into it, Apply Drift Correction writes
the corrected movie beside it, and last Segment to ROIs turns the corrected
movie's nuclei into ROIs, every time point (`demo.DEMO_LAST_ARGS`).
Everything here returns data; nothing prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractal_roi_tasks.sample_data import NUCLEI_LABEL, SampleTimelapse, drift_path, make_timelapse

DEMO_TIMELAPSE_NAME = "timelapse"
"""Name of the demo's time-lapse image inside the demo directory."""

DEMO_TIMELAPSE_TASKS = ("Calculate Drift", "Apply Drift Correction")
"""Tasks the demo runs on the time-lapse (and on no other image)."""

DEMO_DRIFT_FIGURE_NAME = "demo_drift.png"
"""The demo's drift figure (drift path, kymographs before/after), in the demo directory."""

_FRAMES = 30

DEMO_TIMELAPSE_OPTIONS: dict = {
    "size": 256,
    # A random walk of 0.3 px a frame on a slow drift, the stage bumped at frame 20.
    "path": drift_path(_FRAMES, step_px=0.3, slow_px=(0.0, 0.15, -0.1), jump=(20, (6.0, -4.0)), seed=11),
    "blank_frames": (12,),
    "time_interval_s": 120.0,
    "seed": 11,
}
"""`make_timelapse` options of the demo time-lapse: 30 frames, one blank, a jump at frame 20."""


def timelapse_path(root) -> Path:
    """Where `build_demo_timelapse` writes the time-lapse under `root`."""
    return Path(root).expanduser().absolute() / DEMO_TIMELAPSE_NAME


def corrected_path(timelapse: SampleTimelapse) -> Path:
    """Where Apply Drift Correction (not in place) writes the corrected movie."""
    from fractal_roi_tasks.tasks.apply_drift_correction import CORRECTED_IMAGE

    source = Path(timelapse.zarr_url)
    return source.with_name(CORRECTED_IMAGE.format(image=source.name))


def build_demo_timelapse(root, *, overwrite: bool = False) -> SampleTimelapse:
    """Write the demo time-lapse into the folder `root`, its true drift path as a table in it."""
    timelapse = make_timelapse(str(timelapse_path(root)), **DEMO_TIMELAPSE_OPTIONS, overwrite=overwrite)
    write_true_drift(timelapse)
    return timelapse


def write_true_drift(timelapse: SampleTimelapse) -> None:
    """Store the truth as table `figures.drift.DRIFT_TRUTH_TABLE`, so `figure` draws it beside the estimate.

    Its columns are those of the drift table (``t``, ``shift_{axis}_px``), in the
    drift table's sign: the shift registering each frame onto frame 0, minus
    the displacement.
    """
    import ngio
    import pandas as pd

    from fractal_roi_tasks.figures.drift import DRIFT_TRUTH_TABLE
    from fractal_roi_tasks.names import DRIFT_SHIFT_PX_COLUMN, TIME_INDEX_COLUMN

    shift = -timelapse.displacement_px
    axes = ("z", "y", "x")[-shift.shape[1]:]
    frame = pd.DataFrame({TIME_INDEX_COLUMN: np.arange(len(shift), dtype=np.int64),
                          **{DRIFT_SHIFT_PX_COLUMN.format(axis=a): shift[:, k] for k, a in enumerate(axes)}})
    frame.index = frame.index.astype(str)
    container = ngio.open_ome_zarr_container(timelapse.zarr_url)
    container.add_table(DRIFT_TRUTH_TABLE, ngio.GenericTable(frame), overwrite=True)


@dataclass(frozen=True)
class DriftSummary:
    """How far the time-lapse drifted and how well Calculate Drift found it."""

    n_frames: int
    largest_drift_px: float
    max_error_px: float
    blank_frames: tuple[int, ...]
    flagged_frames: tuple[int, ...]
    corrected_url: str | None


def summarize_drift(timelapse: SampleTimelapse) -> DriftSummary | None:
    """The drift table against the truth; None when no drift table was written."""
    import ngio

    from fractal_roi_tasks.io.drift_table import DRIFT_TABLE, read_drift_shifts
    from fractal_roi_tasks.names import DRIFT_BLANK_COLUMN, TIME_INDEX_COLUMN

    container = ngio.open_ome_zarr_container(timelapse.zarr_url, mode="r")
    if DRIFT_TABLE not in container.list_tables():
        return None
    shifts, frame = read_drift_shifts(container)
    truth = -timelapse.displacement_px
    good = np.ones(len(truth), bool)
    good[list(timelapse.blank_frames)] = False  # their drift is interpolated, not measured
    errors = np.linalg.norm(shifts - truth, axis=1)
    corrected = corrected_path(timelapse)
    return DriftSummary(
        n_frames=len(truth),
        largest_drift_px=float(np.linalg.norm(truth, axis=1).max()),
        max_error_px=float(errors[good].max()),
        blank_frames=timelapse.blank_frames,
        flagged_frames=tuple(
            int(t) for t in frame[TIME_INDEX_COLUMN][frame[DRIFT_BLANK_COLUMN].to_numpy(bool)]
        ),
        corrected_url=str(corrected) if corrected.exists() else None,
    )


@dataclass(frozen=True)
class CorrectedRoiSummary:
    """What Segment to ROIs found on the drift-corrected movie.

    Attributes:
        label: the label image the ROIs were made from.
        per_time_point: number of objects at each time point (0 where none).
        largest_move_px: the largest range (y or x, pixels) of one object's
            centroid over the time points: 0 when every object of the
            corrected movie stays in place.
        roi_folder: where the ROI files are, None if none was written.
        n_files: how many ROI files are there.
    """

    label: str
    per_time_point: tuple[int, ...]
    largest_move_px: float
    roi_folder: str | None
    n_files: int


def summarize_corrected_rois(
    timelapse: SampleTimelapse, label: str = NUCLEI_LABEL
) -> CorrectedRoiSummary | None:
    """Objects per time point of ``label`` in the corrected movie; None before Segment to ROIs ran.

    The demo's nuclei keep their label id at every time point, so the range of
    one id's centroid over t says whether the correction holds them in place.
    """
    import ngio

    from fractal_roi_tasks.names import FEATURE_TABLE, ROI_EXPORT_DIR, TIME_INDEX_COLUMN

    corrected = corrected_path(timelapse)
    if not corrected.exists():
        return None
    container = ngio.open_ome_zarr_container(str(corrected), mode="r")
    table = FEATURE_TABLE.format(label_name=label)
    if table not in container.list_tables():
        return None
    frame = container.get_feature_table(table).dataframe
    n_times = int(container.get_image().dimensions.get("t"))
    counts = frame.groupby(TIME_INDEX_COLUMN).size().reindex(range(n_times), fill_value=0)
    # An object keeps its label id over t: how far does its centroid wander?
    ranges = frame.groupby("label")[["centroid_y_px", "centroid_x_px"]].agg(lambda c: c.max() - c.min())
    folder = corrected / ROI_EXPORT_DIR.format(label_name=label)
    files = [path for path in folder.glob("*") if path.is_file()]
    return CorrectedRoiSummary(
        label=label,
        per_time_point=tuple(int(n) for n in counts),
        largest_move_px=float(ranges.to_numpy().max(initial=0.0)),
        roi_folder=str(folder) if files else None,
        n_files=len(files),
    )
