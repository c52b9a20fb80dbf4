"""The drift table: one row per time point, written by Calculate Drift, read by Apply Drift Correction.

Columns (a generic ngio table, one row per time point ``t`` in order):

- ``t``: time index (0-based);
- ``time``: the time point in the image's time unit (``t`` x the NGFF scale of ``t``);
- ``shift_z_px`` (3D only), ``shift_y_px``, ``shift_x_px``: the shift to
  apply to the frame to register it onto the reference frame, in pixels (z in
  planes; the sign of `fractal_roi_tasks.registration.shift.estimate_shift`);
- ``shift_z_um`` (3D only), ``shift_y_um``, ``shift_x_um``: the same in micrometers;
- ``quality``: median quality of the frame pairs touching the frame, in [-1, 1];
- ``blank``: the frame was found blank or out of focus and not measured;
- ``interpolated``: its shift was interpolated in time;
- ``reference``: True on the reference frame's row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError

DRIFT_TABLE = "drift_table"
"""Default name of the drift table."""

AXES = ("z", "y", "x")


def drift_frame(
    shift_px: np.ndarray,
    *,
    spacing_um: tuple[float, ...],
    time_step: float,
    quality: np.ndarray,
    blank: np.ndarray,
    interpolated: np.ndarray,
    reference: int,
) -> pd.DataFrame:
    """The drift table as a DataFrame.

    Args:
        shift_px: (T, D) shifts, D = 2 (y, x) or 3 (z, y, x), pixels.
        spacing_um: pixel spacing of the D axes, micrometers.
        time_step: the NGFF scale of ``t``.
        quality, blank, interpolated: (T,) per frame.
        reference: the reference frame's index.

    >>> frame = drift_frame(np.array([[0.0, 0.0], [1.0, -2.0]]), spacing_um=(0.5, 0.5),
    ...     time_step=60.0, quality=np.ones(2), blank=np.zeros(2, bool),
    ...     interpolated=np.zeros(2, bool), reference=0)
    >>> frame[["t", "time", "shift_y_px", "shift_x_um"]].values.tolist()
    [[0.0, 0.0, 0.0, 0.0], [1.0, 60.0, 1.0, -1.0]]
    """
    shift_px = np.asarray(shift_px, dtype=np.float64)
    n_frames, dims = shift_px.shape
    axes = AXES[-dims:]
    columns: dict[str, np.ndarray] = {
        "t": np.arange(n_frames, dtype=np.int64),
        "time": np.arange(n_frames, dtype=np.float64) * float(time_step),
    }
    for k, axis in enumerate(axes):
        columns[f"shift_{axis}_px"] = shift_px[:, k]
    for k, axis in enumerate(axes):
        columns[f"shift_{axis}_um"] = shift_px[:, k] * float(spacing_um[k])
    columns["quality"] = np.asarray(quality, dtype=np.float64)
    columns["blank"] = np.asarray(blank, dtype=bool)
    columns["interpolated"] = np.asarray(interpolated, dtype=bool)
    columns["reference"] = np.arange(n_frames) == reference
    frame = pd.DataFrame(columns)
    frame.index = frame.index.astype(str)
    return frame


def write_drift_table(ome_zarr, frame: pd.DataFrame, name: str = DRIFT_TABLE, *, overwrite: bool = True) -> None:
    """Write the drift table into an open ngio container."""
    import ngio

    ome_zarr.add_table(name, ngio.GenericTable(frame), overwrite=overwrite)


def read_drift_shifts(ome_zarr, name: str = DRIFT_TABLE) -> tuple[np.ndarray, pd.DataFrame]:
    """(T, D) shifts in pixels (z, y, x or y, x) and the whole table, checked.

    Raises:
        InvalidInputError: no table of that name (naming those that exist),
            or one without the shift columns.
    """
    names = ome_zarr.list_tables()
    if name not in names:
        raise InvalidInputError(
            f"No drift table {name!r} in this image; its tables are {sorted(names)}. "
            "Run Calculate Drift first."
        )
    frame = ome_zarr.get_table(name).dataframe
    axes = [a for a in AXES if f"shift_{a}_px" in frame.columns]
    if axes[-2:] != ["y", "x"] or "t" not in frame.columns:
        raise InvalidInputError(
            f"Table {name!r} is not a drift table: it needs columns t, shift_y_px and shift_x_px; "
            f"it has {list(frame.columns)}."
        )
    frame = frame.sort_values("t")
    for flag in ("blank", "interpolated", "reference"):
        if flag in frame.columns:  # anndata stores them as floats
            frame[flag] = frame[flag].astype(bool)
    return frame[[f"shift_{a}_px" for a in axes]].to_numpy(dtype=np.float64), frame
