"""The regions of a registered ROI table: where each lies here and in the reference frame.

A registered ROI table (written by Find Registration Consensus) gives, per
ROI, the region in this acquisition (``x_micrometer``, ``len_x_micrometer``,
...) and where it lies in the reference (``x_micrometer_reference``, ...).
Applying the registration copies each region, whole pixels, to its reference
position in a new image of the same shape; everything else stays zero.

fractal-tasks-core's Find Registration Consensus writes the same table without
the reference columns: there, every acquisition's table holds its regions in
its own frame, and the reference acquisition's table holds where they lie in
the reference. For such a table the reference columns are taken, by ROI name,
from the reference acquisition's own table of the same name (`with_reference_rois`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.names import (
    FALLBACK_COLUMN,
    QUALITY_COLUMN,
    REFERENCE_COLUMN,
    REFERENCE_COLUMNS,
    ROI_LENGTH_COLUMN,
    ROI_START_COLUMN,
    TRANSLATION_COLUMNS,
)

logger = logging.getLogger(__name__)

AXES = ("z", "y", "x")
REGISTRATION_COLUMNS = (
    *TRANSLATION_COLUMNS, QUALITY_COLUMN, FALLBACK_COLUMN, *REFERENCE_COLUMNS,
)
_WHOLE = 1e-3  # pixels: micrometer round-off, not a sub-pixel bound
_SAME_UM = 1e-6  # micrometers: round-off between two tables' lengths
_READ_ATTEMPTS = 5
_READ_PAUSE_S = 0.5


@dataclass(frozen=True)
class RoiPair:
    """One ROI's region in this acquisition and in the reference, micrometers (z, y, x)."""

    name: str
    start_um: tuple[float, float, float]
    reference_start_um: tuple[float, float, float]
    length_um: tuple[float, float, float]


def roi_pairs(frame: pd.DataFrame, table_name: str) -> list[RoiPair]:
    """The ROI pairs of a registered table (indexed by ROI name), or a clear error."""
    missing = [c for c in REFERENCE_COLUMNS if c not in frame]
    if missing:
        raise InvalidInputError(
            f"Table {table_name!r} has no {missing} columns (where each ROI lies in the "
            "reference): add them from the reference's table with `with_reference_rois`."
        )
    if not frame.index.is_unique:
        raise InvalidInputError(f"Table {table_name!r} names a ROI twice: {list(frame.index)}.")
    pairs = []
    for name, row in frame.iterrows():
        def column(template, row=row):
            return tuple(float(row.get(template.format(axis=a), 0.0)) for a in AXES)

        pairs.append(RoiPair(
            name=str(name),
            start_um=column(ROI_START_COLUMN),
            reference_start_um=column(REFERENCE_COLUMN),
            length_um=tuple(
                float(row.get(ROI_LENGTH_COLUMN.format(axis=a), 1.0)) for a in AXES
            ),
        ))
    return pairs


def with_reference_rois(
    frame: pd.DataFrame, reference_frame: pd.DataFrame, *, table_name: str, where: str,
    reference_where: str,
) -> pd.DataFrame:
    """`frame` with the ``*_micrometer_reference`` columns from the reference's table.

    For a registered table without them (fractal-tasks-core's): the start of
    each ROI in the reference acquisition's table of the same name, matched
    by ROI name, is where that ROI lies in the reference. Both tables are
    indexed by ROI name; `where` and `reference_where` name them in errors.

    Raises:
        InvalidInputError: the two tables list other ROIs, a ROI twice, or a
            ROI with other lengths (its regions could not be paired).
    """
    names, reference_names = list(frame.index.astype(str)), list(reference_frame.index.astype(str))
    if len(set(reference_names)) != len(reference_names) or set(names) != set(reference_names):
        raise InvalidInputError(
            f"The ROIs of {table_name!r} in {where!r} ({sorted(names)}) do not match those "
            f"of the reference acquisition's {table_name!r} in {reference_where!r} "
            f"({sorted(reference_names)}): re-run Find Registration Consensus on the whole well."
        )
    reference = reference_frame.set_axis(reference_names).loc[names]
    unequal = set()
    for axis in AXES:
        length = ROI_LENGTH_COLUMN.format(axis=axis)
        if length in frame and length in reference:
            differ = ~np.isclose(frame[length].to_numpy(float), reference[length].to_numpy(float),
                                 rtol=0, atol=_SAME_UM)
            unequal.update(name for name, bad in zip(names, differ) if bad)
    if unequal:
        raise InvalidInputError(
            f"The ROIs {sorted(unequal)} of {table_name!r} have other lengths in {where!r} "
            f"than in the reference acquisition's table in {reference_where!r}: their regions "
            "cannot be paired. Re-run Find Registration Consensus on the whole well."
        )
    frame = frame.copy()
    for axis, column in zip(AXES, REFERENCE_COLUMNS):
        start = ROI_START_COLUMN.format(axis=axis)
        values = reference[start].to_numpy(float) if start in reference else np.zeros(len(names))
        frame[column] = values
    return frame


def read_reference_table(reference_url: str, table_name: str, *, for_url: str) -> pd.DataFrame:
    """The ROI table `table_name` of the reference image, indexed by ROI name.

    Every acquisition of a well may be registered at the same moment, the
    reference included, each replacing its image in place. The exchange swap
    keeps a complete image at the reference's path and registering the
    reference moves none of its regions, so either version gives the same
    ROIs; but a read spread over several files can straddle a swap (and the
    two-rename fallback leaves the path empty for an instant): a failed read
    is retried a few times.

    Raises:
        NotFoundError: the reference has no such table, or cannot be read.
    """
    import ngio

    failure: Exception | None = None
    for attempt in range(_READ_ATTEMPTS):
        if attempt:
            logger.debug("reading %s of %s again after: %s", table_name, reference_url, failure)
            time.sleep(_READ_PAUSE_S)
        try:
            ome_zarr = ngio.open_ome_zarr_container(reference_url)
            tables = ome_zarr.list_tables()
            found = ome_zarr.get_roi_table(table_name).dataframe.copy() if table_name in tables else None
        except (OSError, KeyError, ValueError, ngio.NgioError) as err:
            failure = err
            continue
        if found is not None:
            return found
        raise NotFoundError(
            f"Table {table_name!r} of {for_url!r} has no {list(REFERENCE_COLUMNS)} columns "
            "(as fractal-tasks-core's Find Registration Consensus writes it), so where its "
            f"ROIs lie in the reference is read from the reference image {reference_url!r}; "
            f"but that image has no table {table_name!r} (it has tables {tables}). Run Find "
            "Registration Consensus on the whole well: it writes the table into every "
            "acquisition, the reference included."
        )
    raise NotFoundError(
        f"Could not read table {table_name!r} of the reference image {reference_url!r}, "
        f"needed to apply {for_url!r}'s table (it has no {list(REFERENCE_COLUMNS)} "
        f"columns): {failure}"
    ) from failure


def pixel_boxes(
    pair: RoiPair, pixel_size: dict[str, float], shape: dict[str, int]
) -> tuple[dict[str, slice], dict[str, slice]]:
    """(source, target) slices of `pair` in an array with these pixel sizes and shape.

    Raises:
        InvalidInputError: a bound is not on a whole pixel, or a region leaves the image.
    """
    source, target = {}, {}
    for index, axis in enumerate(AXES):
        if axis not in shape:
            continue
        size = pixel_size[axis]
        start = _whole(pair.start_um[index] / size, pair, axis)
        reference = _whole(pair.reference_start_um[index] / size, pair, axis)
        length = _whole(pair.length_um[index] / size, pair, axis)
        if axis == "z" and shape["z"] == 1:
            start, reference, length = 0, 0, 1
        for what, first in (("region", start), ("reference region", reference)):
            if first < 0 or length < 1 or first + length > shape[axis]:
                raise InvalidInputError(
                    f"ROI {pair.name!r}: its {what} along {axis} ({first} to "
                    f"{first + length} px) leaves the image (0 to {shape[axis]} px). Re-run "
                    "Find Registration Consensus on this plate."
                )
        source[axis] = slice(start, start + length)
        target[axis] = slice(reference, reference + length)
    return source, target


def _whole(value: float, pair: RoiPair, axis: str) -> int:
    rounded = round(value)
    if abs(value - rounded) > _WHOLE:
        raise InvalidInputError(
            f"ROI {pair.name!r}: bound {value:.4f} px along {axis} is not on a whole pixel. "
            "Apply Registration copies whole pixels; write the table with this package's "
            "Find Registration Consensus (whole-pixel bounds)."
        )
    return int(rounded)


def check_pairs(image, pairs: list[RoiPair]) -> None:
    """Raise before anything is written if a pair cannot be copied in `image`."""
    size = image.pixel_size
    pixel_size = {a: float(getattr(size, a)) for a in AXES if a in image.axes}
    shape = {a: image.shape[image.axes.index(a)] for a in AXES if a in image.axes}
    for pair in pairs:
        pixel_boxes(pair, pixel_size, shape)


def in_reference_frame(frame: pd.DataFrame, *, registered: bool) -> pd.DataFrame:
    """A ROI table of the original image, as it holds for the registered one.

    The registered table's regions move to their reference position (the
    ``translation_*`` and ``*_reference`` columns stay, as a record of what
    was applied). Every other ROI table (fields of view, the well) describes
    the same grid in every acquisition's frame: its ROIs stay, without the
    registration columns, which described the unregistered image.
    """
    frame = frame.copy()
    if registered:
        for axis, reference in zip(AXES, REFERENCE_COLUMNS):
            if reference in frame:
                frame[ROI_START_COLUMN.format(axis=axis)] = frame[reference]
        return frame
    return frame.drop(columns=[c for c in REGISTRATION_COLUMNS if c in frame])


def masking_in_reference_frame(frame: pd.DataFrame, pairs: list[RoiPair]) -> pd.DataFrame:
    """A masking ROI table moved with its label image.

    Each object's box moves with the ROI region holding its centre and is cut
    to that region's reference position; objects outside every region (their
    pixels are not in the registered image) are dropped.
    """
    keep, rows = [], []
    for name, row in frame.iterrows():
        start = np.array([float(row.get(ROI_START_COLUMN.format(axis=a), 0.0)) for a in AXES])
        length = np.array([float(row.get(ROI_LENGTH_COLUMN.format(axis=a), 0.0)) for a in AXES])
        centre = start + length / 2
        for pair in pairs:
            low, size = np.array(pair.start_um), np.array(pair.length_um)
            if np.all(centre[1:] >= low[1:]) and np.all(centre[1:] < (low + size)[1:]):
                offset = np.array(pair.reference_start_um) - low
                lo = np.maximum(start + offset, pair.reference_start_um)
                hi = np.minimum(start + length + offset, np.array(pair.reference_start_um) + size)
                new = row.copy()
                for index, axis in enumerate(AXES):
                    if ROI_START_COLUMN.format(axis=axis) in frame:
                        new[ROI_START_COLUMN.format(axis=axis)] = lo[index]
                        new[ROI_LENGTH_COLUMN.format(axis=axis)] = hi[index] - lo[index]
                keep.append(name)
                rows.append(new)
                break
    dropped = len(frame) - len(keep)
    if dropped:
        logger.debug("%d objects outside every registered region dropped", dropped)
    return pd.DataFrame(rows, index=pd.Index(keep, name=frame.index.name), columns=frame.columns)


# --------------------------------------------------------------------------
# The image-level steps of the task
