"""The drift table: one row per time point, written by Calculate Drift, read by Apply Drift Correction.

Columns (a generic ngio table, one row per time point ``t`` in order; the
names are the constants of `fractal_roi_tasks.names`):

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

What the drift was measured on (`DriftSource`: channel, pyramid level,
reference) is kept in the table group's attributes under ``drift_source``,
through ngio's table metadata, so it travels with the table (and with the
copies ngio makes of it) and needs no column repeated on every row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.names import (
    DRIFT_BLANK_COLUMN,
    DRIFT_FLAG_COLUMNS,
    DRIFT_INTERPOLATED_COLUMN,
    DRIFT_QUALITY_COLUMN,
    DRIFT_REFERENCE_COLUMN,
    DRIFT_SHIFT_PX_COLUMN,
    DRIFT_SHIFT_UM_COLUMN,
    DRIFT_SOURCE_ATTRS,
    DRIFT_TABLE,
    DRIFT_TIME_COLUMN,
    TIME_INDEX_COLUMN,
)

__all__ = ["DRIFT_TABLE", "DriftSource", "drift_frame", "read_drift_shifts", "read_drift_source",
           "write_drift_table"]

AXES = ("z", "y", "x")

REFERENCE_MODE = "time_point"
"""How Calculate Drift picks its reference: one time point (``reference_time_point``), the only mode."""


@dataclass(frozen=True)
class DriftSource:
    """What a drift table was measured on, as stored in the table's attributes.

    Attributes:
        channel_label: label of the channel the drift was measured on.
        wavelength_id: that channel's wavelength id ('' when it has none).
        level: the pyramid level measured (the shifts are in level-0 pixels
            whatever the level).
        reference_mode: how the reference was chosen; ``"time_point"``: one
            fixed time point, ``reference_time_point``.
        reference_time_point: the time point every shift is relative to.
        max_step: the largest time step between two time points compared directly.
        time_steps: the time steps compared (besides the reference).

    >>> source = DriftSource("DAPI", "A01_C01", "0", REFERENCE_MODE, 0, 8, (1, 2, 4, 8))
    >>> DriftSource.from_attrs(source.to_attrs()) == source
    True
    """

    channel_label: str
    wavelength_id: str
    level: str
    reference_mode: str
    reference_time_point: int
    max_step: int
    time_steps: tuple[int, ...]

    def describe(self) -> str:
        """One phrase for logs: what the drift was measured on."""
        return (
            f"measured on channel {self.channel_label!r} at level {self.level} against "
            f"time point {self.reference_time_point}"
        )

    def to_attrs(self) -> dict:
        """A JSON-ready dict (lists for tuples)."""
        attrs = asdict(self)
        attrs["time_steps"] = list(self.time_steps)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict) -> DriftSource:
        """Back from `to_attrs` (as read from JSON)."""
        values = dict(attrs)
        values["time_steps"] = tuple(int(s) for s in values.get("time_steps", ()))
        return cls(**values)


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
        TIME_INDEX_COLUMN: np.arange(n_frames, dtype=np.int64),
        DRIFT_TIME_COLUMN: np.arange(n_frames, dtype=np.float64) * float(time_step),
    }
    for k, axis in enumerate(axes):
        columns[DRIFT_SHIFT_PX_COLUMN.format(axis=axis)] = shift_px[:, k]
    for k, axis in enumerate(axes):
        columns[DRIFT_SHIFT_UM_COLUMN.format(axis=axis)] = shift_px[:, k] * float(spacing_um[k])
    columns[DRIFT_QUALITY_COLUMN] = np.asarray(quality, dtype=np.float64)
    columns[DRIFT_BLANK_COLUMN] = np.asarray(blank, dtype=bool)
    columns[DRIFT_INTERPOLATED_COLUMN] = np.asarray(interpolated, dtype=bool)
    columns[DRIFT_REFERENCE_COLUMN] = np.arange(n_frames) == reference
    frame = pd.DataFrame(columns)
    frame.index = frame.index.astype(str)
    return frame


def write_drift_table(
    ome_zarr,
    frame: pd.DataFrame,
    name: str = DRIFT_TABLE,
    *,
    source: DriftSource | None = None,
    overwrite: bool = True,
) -> None:
    """Write the drift table into an open ngio container, with `source` in its attributes."""
    import ngio
    from ngio.tables.backends import BackendMeta

    # ngio's table metadata keeps extra fields and writes them into the
    # group's attributes; type and version are those of ngio's generic table.
    extra = {DRIFT_SOURCE_ATTRS: source.to_attrs()} if source is not None else {}
    meta = BackendMeta(type="generic_table", table_version="1", **extra)
    ome_zarr.add_table(name, ngio.GenericTable(frame, meta=meta), overwrite=overwrite)


def _check_exists(ome_zarr, name: str) -> None:
    names = ome_zarr.list_tables()
    if name not in names:
        raise InvalidInputError(
            f"No drift table {name!r} in this image; its tables are {sorted(names)}. "
            "Run Calculate Drift first."
        )


def read_drift_source(ome_zarr, name: str = DRIFT_TABLE) -> DriftSource | None:
    """What the drift table `name` was measured on; None for a table that does not say.

    Raises:
        InvalidInputError: no table of that name (naming those that exist).
    """
    _check_exists(ome_zarr, name)
    extra = ome_zarr.get_table(name).meta.model_extra or {}
    attrs = extra.get(DRIFT_SOURCE_ATTRS)
    return DriftSource.from_attrs(attrs) if isinstance(attrs, dict) else None


def read_drift_shifts(ome_zarr, name: str = DRIFT_TABLE) -> tuple[np.ndarray, pd.DataFrame]:
    """(T, D) shifts in pixels (z, y, x or y, x) and the whole table, checked.

    Raises:
        InvalidInputError: no table of that name (naming those that exist),
            or one without the shift columns.
    """
    _check_exists(ome_zarr, name)
    frame = ome_zarr.get_table(name).dataframe
    columns = {a: DRIFT_SHIFT_PX_COLUMN.format(axis=a) for a in AXES}
    axes = [a for a in AXES if columns[a] in frame.columns]
    if axes[-2:] != ["y", "x"] or TIME_INDEX_COLUMN not in frame.columns:
        raise InvalidInputError(
            f"Table {name!r} is not a drift table: it needs columns {TIME_INDEX_COLUMN}, "
            f"{columns['y']} and {columns['x']}; it has {list(frame.columns)}."
        )
    frame = frame.sort_values(TIME_INDEX_COLUMN)
    for flag in DRIFT_FLAG_COLUMNS:
        if flag in frame.columns:  # anndata stores them as floats
            frame[flag] = frame[flag].astype(bool)
    return frame[[columns[a] for a in axes]].to_numpy(dtype=np.float64), frame
