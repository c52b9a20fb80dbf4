"""The drift panels: the drift path (estimated against true) and kymographs before/after correction.

The path comes from the drift table Calculate Drift wrote (`io.drift_table`);
the true path from a table `DRIFT_TRUTH_TABLE` of the same columns when the
image has one (the demo writes it; a user's image has none, and the panel then
shows the estimate alone). A kymograph is one line through the field followed
over time: the maximum across a thin strip through the centre of the field,
one row per time point, read one time point's strip at a time at a level of at
most `KYMOGRAPH_LEVEL` pixels a side. Drift shows as slanted or jagged
streaks; after Apply Drift Correction the streaks run straight down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractal_roi_tasks.figures import panels
from fractal_roi_tasks.figures.read import FigureData, Panel, _open
from fractal_roi_tasks.names import (
    DRIFT_BLANK_COLUMN,
    DRIFT_INTERPOLATED_COLUMN,
    DRIFT_REFERENCE_COLUMN,
    DRIFT_SHIFT_PX_COLUMN,
    TIME_INDEX_COLUMN,
)

logger = logging.getLogger(__name__)

DRIFT_TRUTH_TABLE = "drift_truth"
"""Table of the true drift path (columns ``t``, ``shift_y_px``, ``shift_x_px``[, ``shift_z_px``])."""

KYMOGRAPH_LEVEL = 512
"""Largest side of the level the kymographs are read at."""

STRIP_FRACTION = 1 / 16
"""Thickness of the kymograph's strip, as a fraction of the field (at least `MIN_STRIP_PX`)."""

MIN_STRIP_PX = 4

KEYS = ("drift_path", "drift_kymograph_before", "drift_kymograph_after")
"""The drift panels' keys, in order."""


@dataclass(frozen=True)
class DriftPath:
    """What the drift path panel plots.

    Attributes:
        t: (T,) time indices.
        axes: the shift axes, ``("y", "x")`` or ``("z", "y", "x")``.
        shift_px: (T, D) estimated shift registering each frame onto the
            reference (the drift table's ``shift_*_px``), level-0 pixels.
        true_px: (T, D) the true shift in the same sign, or None when unknown.
        blank: (T,) frames found blank or out of focus.
        interpolated: (T,) frames whose shift was interpolated in time.
        reference: the reference frame's index.
    """

    t: np.ndarray
    axes: tuple[str, ...]
    shift_px: np.ndarray
    true_px: np.ndarray | None
    blank: np.ndarray
    interpolated: np.ndarray
    reference: int


@dataclass(frozen=True)
class Kymograph:
    """One line through the field over time, both ways.

    Attributes:
        along_x: (T, X) maximum over a strip of rows through the centre:
            x drift moves its streaks sideways.
        along_y: (T, Y) maximum over a strip of columns through the centre.
        level: the pyramid level read.
        strip_px: thickness of the strips at that level.
    """

    along_x: np.ndarray
    along_y: np.ndarray
    level: str
    strip_px: int


def drift_path(ome_zarr, drift_table: str | None = None) -> DriftPath:
    """The drift path of an open image: its drift table, and the truth when it has one."""
    from fractal_roi_tasks.io.drift_table import DRIFT_TABLE, read_drift_shifts

    shifts, frame = read_drift_shifts(ome_zarr, drift_table or DRIFT_TABLE)
    axes = tuple(a for a in "zyx" if DRIFT_SHIFT_PX_COLUMN.format(axis=a) in frame.columns)
    true_px = None
    if DRIFT_TRUTH_TABLE in ome_zarr.list_tables():
        truth, truth_frame = read_drift_shifts(ome_zarr, DRIFT_TRUTH_TABLE)
        if truth.shape == shifts.shape:
            true_px = truth
        else:
            logger.warning("Table %r has shape %s, the drift table %s: the true path is not drawn.",
                           DRIFT_TRUTH_TABLE, truth.shape, shifts.shape)

    def flag(name):
        if name not in frame.columns:
            return np.zeros(len(frame), bool)
        return frame[name].to_numpy(bool)

    reference = flag(DRIFT_REFERENCE_COLUMN)
    return DriftPath(
        t=frame[TIME_INDEX_COLUMN].to_numpy(np.int64),
        axes=axes,
        shift_px=shifts,
        true_px=true_px,
        blank=flag(DRIFT_BLANK_COLUMN),
        interpolated=flag(DRIFT_INTERPOLATED_COLUMN),
        reference=int(np.argmax(reference)) if reference.any() else 0,
    )


def read_kymograph(ome_zarr, *, channel: int = 0, strip_px: int | None = None) -> Kymograph:
    """The kymographs of an open image with a ``t`` axis (channel `channel`, middle z plane).

    Reads one time point's strip (rows, then columns) at a time, at the
    finest level of at most `KYMOGRAPH_LEVEL` pixels a side (else the coarsest).
    """
    from fractal_roi_tasks.errors import InvalidInputError

    for path in ome_zarr.level_paths:
        level = ome_zarr.get_image(path=path)
        shape = dict(zip(level.axes, level.shape))
        if max(shape["y"], shape["x"]) <= KYMOGRAPH_LEVEL:
            break
    if "t" not in shape:
        raise InvalidInputError(f"A kymograph needs a time axis; the image's axes are {tuple(level.axes)}.")
    if strip_px is None:
        strip_px = max(MIN_STRIP_PX, int(round(min(shape["y"], shape["x"]) * STRIP_FRACTION)))
    rows = _centred(shape["y"], strip_px)
    columns = _centred(shape["x"], strip_px)
    along_x = np.zeros((shape["t"], shape["x"]), np.float32)
    along_y = np.zeros((shape["t"], shape["y"]), np.float32)
    extra: dict = {"z": shape["z"] // 2} if "z" in shape else {}
    if "c" in shape:
        extra["channel_selection"] = channel
    for t in range(shape["t"]):
        strip = np.asarray(level.get_array(t=t, y=rows, **extra))
        along_x[t] = strip.reshape(-1, shape["x"]).max(axis=0)
        strip = np.asarray(level.get_array(t=t, x=columns, **extra))
        along_y[t] = strip.reshape(shape["y"], -1).max(axis=1)
    logger.debug("Kymograph of %d time points at level %s, strips of %d px.", shape["t"], path, strip_px)
    return Kymograph(along_x=along_x, along_y=along_y, level=path, strip_px=strip_px)


def _centred(n: int, width: int) -> slice:
    start = max(0, (n - width) // 2)
    return slice(start, min(n, start + width))


def _partner(url: str) -> tuple[str, str | None]:
    """(original, corrected or None) for a url that is either of the two."""
    from fractal_roi_tasks.tasks.apply_drift_correction import CORRECTED_IMAGE

    path = Path(url)
    suffix = CORRECTED_IMAGE.format(image="")
    if path.name.endswith(suffix):
        original = path.with_name(path.name.removesuffix(suffix))
        if original.exists():
            return str(original), url
    corrected = path.with_name(CORRECTED_IMAGE.format(image=path.name))
    return url, str(corrected) if corrected.exists() else None


def drift_panels(urls: list[str], data: FigureData) -> None:
    """The drift path and the kymographs before and after of the first image with a drift table."""
    from fractal_roi_tasks.io.drift_table import DRIFT_TABLE

    with_table = [url for url in urls if DRIFT_TABLE in _open(url).list_tables()]
    if not with_table:
        data.missing["drift"] = (
            f"no time-lapse image has a drift table ({DRIFT_TABLE!r}): run Calculate Drift "
            "(and Apply Drift Correction for the kymograph after)"
        )
        return
    original, corrected = _partner(with_table[0])
    container = _open(original)
    if DRIFT_TABLE not in container.list_tables():  # only the corrected image carries one
        container = _open(with_table[0])
    path = drift_path(container)
    name = f"{Path(original).parent.name}/{Path(original).name}"
    data.panels.append(Panel("drift_path", _path_title(path, name), rgb=None, plot=path))
    data.facts["drift_path"] = path  # type: ignore[assignment]
    before = read_kymograph(_open(original))
    limits = panels.grey_limits(np.concatenate([before.along_x.ravel(), before.along_y.ravel()]))
    flagged = path.blank | path.interpolated
    data.panels.append(Panel(
        "drift_kymograph_before",
        f"Kymograph before: {Path(original).name}\nx (left), y (right) across, t down",
        panels.kymograph_panel(before.along_x, before.along_y, limits=limits, flagged=flagged),
    ))
    data.facts["kymograph_before"] = before  # type: ignore[assignment]
    if corrected is None:
        data.missing["drift_kymograph_after"] = (
            f"no '{Path(original).name}_drift_corrected' image beside {original}: run Apply Drift "
            "Correction with overwrite_input=False"
        )
        return
    after = read_kymograph(_open(corrected))
    data.panels.append(Panel(
        "drift_kymograph_after",
        f"Kymograph after: {Path(corrected).name}\nstraight streaks: the drift is gone",
        panels.kymograph_panel(after.along_x, after.along_y, limits=limits, flagged=flagged),
    ))
    data.facts["kymograph_after"] = after  # type: ignore[assignment]


def _path_title(path: DriftPath, name: str) -> str:
    flagged = np.flatnonzero(path.blank | path.interpolated).tolist()
    text = f"Drift path of {name}\n"
    if path.true_px is not None:
        error = np.linalg.norm(path.shift_px - path.true_px, axis=1)
        measured = ~(path.blank | path.interpolated)
        worst = float(error[measured].max()) if measured.any() else float("nan")
        text += f"estimated (solid) vs true (dashed): within {worst:.2f} px"
    else:
        text += "estimated shift (no true path known)"
    if flagged:
        text += f"; interpolated: t = {', '.join(map(str, flagged))}"
    return text
