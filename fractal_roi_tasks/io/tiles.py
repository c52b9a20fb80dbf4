"""The tiles of a converter-written image: where they are in the array, where the stage put them.

A Fractal converter writes the fields of view of a well side by side in one
array, one ROI per field in the FOV table, with the stage position of each in
``x_micrometer_original``/``y_micrometer_original``. Stitching needs both:
the ROI says where to *read* a tile, the stage position where to *place* it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.ngio_tables import roi_slices
from fractal_roi_tasks.names import ROI_START_COLUMN, STAGE_COLUMN

logger = logging.getLogger(__name__)

STAGE_COLUMNS = tuple(STAGE_COLUMN.format(axis=a) for a in "yx")
ROI_COLUMNS = tuple(ROI_START_COLUMN.format(axis=a) for a in "yx")


@dataclass(frozen=True)
class TileTable:
    """The tiles of one image, in the order of its ROI table.

    Attributes:
        names: ROI name of every tile.
        prior_um: (N, 2) prior (y, x) of each tile's top-left corner, in
            micrometers, in the frame the stage (or the ROI table) uses.
        prior_source: ``"stage positions"`` or ``"ROI positions"``.
        frame: the ROI table as read (indexed by ROI name).
        rois: the ngio ROIs, same order.
    """

    names: list[str]
    prior_um: np.ndarray
    prior_source: str
    frame: pd.DataFrame
    rois: list

    def boxes(self, image) -> list[tuple[slice, slice]]:
        """(y, x) slices of every tile in ``image`` (any pyramid level)."""
        return [roi_slices(image, roi, ("y", "x")) for roi in self.rois]

    def prior_px(self, image) -> np.ndarray:
        """(N, 2) prior positions in pixels of ``image``, the smallest at 0."""
        spacing = np.array([image.pixel_size.y, image.pixel_size.x], dtype=np.float64)
        relative = self.prior_um - self.prior_um.min(axis=0)
        return relative / spacing


def read_tile_table(ome_zarr, roi_table: str, zarr_url: str, *, use_stage_positions: bool) -> TileTable:
    """The tiles of ``roi_table``, or a clear error when there is nothing to stitch."""
    tables = ome_zarr.list_tables()
    if roi_table not in tables:
        raise NotFoundError(
            f"ROI table {roi_table!r} not found in {zarr_url!r}; it has tables {tables}. "
            "Stitching needs the table of the fields of view a converter writes (FOV_ROI_table)."
        )
    table = ome_zarr.get_roi_table(roi_table)
    rois = list(table.rois())
    if len(rois) < 2:
        raise InvalidInputError(
            f"{roi_table!r} in {zarr_url!r} has {len(rois)} ROI: there is nothing to stitch "
            "(stitching needs at least two overlapping fields of view)."
        )
    frame = table.dataframe
    names = [roi.name for roi in rois]
    frame = frame.loc[names] if frame.index.astype(str).tolist() != names else frame
    has_stage = all(c in frame.columns for c in STAGE_COLUMNS)
    if use_stage_positions and has_stage and frame[list(STAGE_COLUMNS)].notna().all().all():
        columns, source = STAGE_COLUMNS, "stage positions"
    else:
        if use_stage_positions:
            logger.warning(
                "%s: %r has no %s columns: tiles are placed from their ROI positions instead",
                zarr_url, roi_table, " / ".join(STAGE_COLUMNS),
            )
        columns, source = ROI_COLUMNS, "ROI positions"
    prior = frame[list(columns)].to_numpy(dtype=np.float64)
    return TileTable(names=names, prior_um=prior, prior_source=source, frame=frame, rois=rois)


def time_points(image_like) -> int:
    """How many time points ``image_like`` has (1 without a ``t`` axis)."""
    return int(image_like.dimensions.get("t", default=1))


def check_time_point(t: int, n_times: int, *, what: str, where: str) -> int:
    """``t`` when it indexes one of ``n_times`` time points, else a clear error."""
    if not 0 <= t < n_times:
        has = f"has {n_times} time points (0 to {n_times - 1})" if n_times > 1 else "has one time point (0)"
        raise InvalidInputError(f"{what} is {t}, but {where} {has}.")
    return t


class TilePixels:
    """Reads parts of tiles from one pyramid level of an image or label.

    ``read(tile, (ys, xs), c=..., z=..., t=...)`` returns the tile's pixels
    in the window (tile coordinates), axes in the array's order with y and x
    last and without t; ``c``/``z`` given select one channel/plane, None
    keeps the axis. ``t`` selects the time point (0 by default, and the only
    one without a ``t`` axis): one time point is read at a time.
    """

    def __init__(self, image_like, boxes: list[tuple[slice, slice]]):
        self.array = image_like.zarr_array
        self.axes = tuple(image_like.axes)
        self.boxes = boxes
        self.n_times = time_points(image_like)

    def read(
        self,
        tile: int,
        window: tuple[slice, slice],
        *,
        c: int | None = None,
        z: int | None = None,
        t: int = 0,
    ):
        if not 0 <= t < self.n_times:  # callers check user input; this guards their loops
            raise InvalidInputError(f"Time point {t} asked for; the array has {self.n_times}.")
        ys, xs = self.boxes[tile]
        index = []
        for axis in self.axes:
            if axis == "y":
                index.append(slice(ys.start + window[0].start, ys.start + window[0].stop))
            elif axis == "x":
                index.append(slice(xs.start + window[1].start, xs.start + window[1].stop))
            elif axis == "c":
                index.append(slice(None) if c is None else c)
            elif axis == "z":
                index.append(slice(None) if z is None else z)
            else:  # t
                index.append(t)
        return np.asarray(self.array[tuple(index)])

    def read_projected(self, tile: int, window: tuple[slice, slice], *, c: int, t: int = 0) -> np.ndarray:
        """A 2D (h, w) float32 window of time point ``t``: the maximum over z for a stack."""
        pixels = self.read(tile, window, c=c, t=t)
        if pixels.ndim == 3:
            pixels = pixels.max(axis=0)
        return pixels.astype(np.float32, copy=False)
