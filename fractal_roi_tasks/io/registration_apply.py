"""Copy the regions of a registered ROI table into the reference frame.

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

import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.roi_tables import fingerprint
from fractal_roi_tasks.names import REFERENCE_COLUMNS

logger = logging.getLogger(__name__)

AXES = ("z", "y", "x")
REGISTRATION_COLUMNS = (
    "translation_z", "translation_y", "translation_x",
    "registration_quality", "registration_fallback", *REFERENCE_COLUMNS,
)
_WHOLE = 1e-3  # pixels: micrometer round-off, not a sub-pixel bound
_SAME_UM = 1e-6  # micrometers: round-off between two tables' lengths
_READ_ATTEMPTS = 5
_READ_PAUSE_S = 0.5
BLOCK_BYTES = 4 * 2**20
"""About how much of level 0 is assembled in memory at once."""
SHARED_READ_FACTOR = 2
"""A block's source regions are read in one piece if it spans at most this many blocks."""


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
            return tuple(float(row.get(template.format(a), 0.0)) for a in AXES)

        pairs.append(RoiPair(
            name=str(name),
            start_um=column("{}_micrometer"),
            reference_start_um=column("{}_micrometer_reference"),
            length_um=tuple(
                float(row.get(f"len_{a}_micrometer", 1.0)) for a in AXES
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
        length = f"len_{axis}_micrometer"
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
        start = f"{axis}_micrometer"
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


def copy_pairs(source, target, pairs: list[RoiPair], *, block_bytes: int | None = None) -> None:
    """Copy every pair's region of `source` (ngio Image or Label) into `target`.

    Block by block of `target`'s level 0 (whole chunks, about `block_bytes`
    each, default `BLOCK_BYTES`; every channel and plane): each block is
    assembled in memory from the pairs' regions that reach into it (later
    pairs over earlier ones, zero elsewhere) and written once, so memory is a
    few blocks whatever the image size. The source regions a block needs are
    read in one piece when they lie close together (the usual case: shifts
    are small), else pair by pair.
    """
    size = source.pixel_size
    pixel_size = {a: float(getattr(size, a)) for a in AXES if a in source.axes}
    shape = {a: source.shape[source.axes.index(a)] for a in AXES if a in source.axes}
    boxes = [pixel_boxes(pair, pixel_size, shape) for pair in pairs]
    axes = list(source.axes)
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    read_array, write_array = source.zarr_array, target.zarr_array
    for block in array_blocks(write_array, block_bytes):
        pieces = []  # (where in the block, where in the source)
        for read, write in boxes:
            piece = _piece(axes, block, read, write)
            if piece is not None:
                pieces.append(piece)
        out = np.zeros(tuple(s.stop - s.start for s in block), dtype=write_array.dtype)
        if pieces:
            _fill(out, pieces, read_array, block_bytes)
        write_array[block] = out


def copy_whole(source, target, *, block_bytes: int | None = None) -> None:
    """Copy level 0 of `source` (ngio Image or Label) into `target`, block by block."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    read_array, write_array = source.zarr_array, target.zarr_array
    for block in array_blocks(write_array, block_bytes):
        write_array[block] = read_array[block]


def array_blocks(array, block_bytes: int) -> list[tuple[slice, ...]]:
    """Blocks covering a zarr `array`: whole write units (shards or chunks), about `block_bytes`.

    Units are joined along the last axis first, then the next, as long as a
    block stays within `block_bytes` (a block is never less than one unit).
    """
    unit = [max(1, min(u, s)) for u, s in zip(array.shards or array.chunks, array.shape)]
    block = list(unit)
    itemsize = array.dtype.itemsize
    for axis in reversed(range(array.ndim)):
        others = itemsize * int(np.prod([b for i, b in enumerate(block) if i != axis]))
        fit = max(1, block_bytes // max(1, others * unit[axis]))
        block[axis] = min(array.shape[axis], unit[axis] * fit) if array.shape[axis] else 1
        if block[axis] < array.shape[axis]:
            break
    starts = [range(0, max(1, s), b) for s, b in zip(array.shape, block)]
    return [
        tuple(slice(start, min(start + b, s)) for start, b, s in zip(corner, block, array.shape))
        for corner in itertools.product(*starts)
    ]


def _piece(axes, block, read: dict, write: dict):
    """(slices in the block, slices in the source) of one pair inside `block`, or None."""
    in_block, in_source = [], []
    for axis, part in zip(axes, block):
        if axis not in write:
            in_block.append(slice(0, part.stop - part.start))
            in_source.append(part)
            continue
        low, high = max(part.start, write[axis].start), min(part.stop, write[axis].stop)
        if low >= high:
            return None
        offset = read[axis].start - write[axis].start
        in_block.append(slice(low - part.start, high - part.start))
        in_source.append(slice(low + offset, high + offset))
    return tuple(in_block), tuple(in_source)


def _fill(out: np.ndarray, pieces, read_array, block_bytes: int) -> None:
    """Copy the source `pieces` into `out`, in order (a later piece wins where two overlap)."""
    low = [min(p[1][i].start for p in pieces) for i in range(out.ndim)]
    high = [max(p[1][i].stop for p in pieces) for i in range(out.ndim)]
    span = int(np.prod([h - lo for lo, h in zip(low, high)])) * out.dtype.itemsize
    if span <= SHARED_READ_FACTOR * max(block_bytes, out.nbytes):
        region = read_array[tuple(slice(lo, h) for lo, h in zip(low, high))]
        for in_block, in_source in pieces:
            out[in_block] = region[tuple(
                slice(s.start - lo, s.stop - lo) for s, lo in zip(in_source, low)
            )]
        return
    for in_block, in_source in pieces:
        out[in_block] = read_array[in_source]


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
                frame[f"{axis}_micrometer"] = frame[reference]
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
        start = np.array([float(row.get(f"{a}_micrometer", 0.0)) for a in AXES])
        length = np.array([float(row.get(f"len_{a}_micrometer", 0.0)) for a in AXES])
        centre = start + length / 2
        for pair in pairs:
            low, size = np.array(pair.start_um), np.array(pair.length_um)
            if np.all(centre[1:] >= low[1:]) and np.all(centre[1:] < (low + size)[1:]):
                offset = np.array(pair.reference_start_um) - low
                lo = np.maximum(start + offset, pair.reference_start_um)
                hi = np.minimum(start + length + offset, np.array(pair.reference_start_um) + size)
                new = row.copy()
                for index, axis in enumerate(AXES):
                    if f"{axis}_micrometer" in frame:
                        new[f"{axis}_micrometer"] = lo[index]
                        new[f"len_{axis}_micrometer"] = hi[index] - lo[index]
                keep.append(name)
                rows.append(new)
                break
    dropped = len(frame) - len(keep)
    if dropped:
        logger.debug("%d objects outside every registered region dropped", dropped)
    return pd.DataFrame(rows, index=pd.Index(keep, name=frame.index.name), columns=frame.columns)


# --------------------------------------------------------------------------
# The image-level steps of the task


def open_checked(zarr_url: str, table_name: str, reference_acquisition: int):
    """(the image, its registered table indexed by ROI name, its acquisition id).

    Every check on the input runs here, before anything is written. A table
    without reference columns (fractal-tasks-core's) gets them here, from the
    reference image's table of the same name, read once.
    """
    from fractal_roi_tasks.io.open import open_image_container
    from fractal_roi_tasks.names import REGISTERED_TABLE

    ome_zarr = open_image_container(zarr_url)
    tables = ome_zarr.list_tables()
    if table_name not in tables:
        raise NotFoundError(
            f"Registered ROI table {table_name!r} not found in {zarr_url!r} (it has tables "
            f"{tables}): run Calculate Registration and Find Registration Consensus first."
        )
    frame = ome_zarr.get_roi_table(table_name).dataframe.copy()
    well, acquisition = _well_of(zarr_url, reference_acquisition)
    if any(column not in frame for column in REFERENCE_COLUMNS):
        frame = _add_reference_rois(zarr_url, frame, table_name, well, acquisition, reference_acquisition)
    pairs = roi_pairs(frame, table_name)
    source_name = table_name.removesuffix(REGISTERED_TABLE.format(roi_table=""))
    if source_name != table_name and source_name in tables:
        names = set(ome_zarr.get_roi_table(source_name).dataframe.index.astype(str))
        if names != {p.name for p in pairs}:
            raise InvalidInputError(
                f"The ROIs of {table_name!r} ({sorted(p.name for p in pairs)}) do not match "
                f"those of {source_name!r} ({sorted(names)}) in {zarr_url!r}: re-run Find "
                "Registration Consensus."
            )
    check_pairs(ome_zarr.get_image(), pairs)
    if acquisition == reference_acquisition:
        moved = [p.name for p in pairs if not np.allclose(p.start_um, p.reference_start_um)]
        if moved:
            raise InvalidInputError(
                f"{zarr_url!r} is reference acquisition {reference_acquisition}, but the "
                f"ROIs {moved} of {table_name!r} lie elsewhere in the reference: the consensus "
                "was computed against another reference. Check reference_acquisition."
            )
    return ome_zarr, frame, acquisition


def _well_of(zarr_url: str, reference_acquisition: int):
    """(the images of `zarr_url`'s well by acquisition, the acquisition of `zarr_url`)."""
    import warnings

    import ngio

    from fractal_roi_tasks.io.wells import WellImages, well_url_of

    well_url = well_url_of(zarr_url)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Path .* contains non-alphanumeric")
        try:
            well = ngio.open_ome_zarr_well(well_url, mode="r")
        except ngio.NgioError as err:
            raise InvalidInputError(
                f"{zarr_url!r} is not an image inside an HCS plate well: registration aligns "
                "the acquisitions of one well."
            ) from err
        acquisitions = {p: well.get_image_acquisition_id(p) for p in well.paths()}
    name = Path(zarr_url).name
    if name not in acquisitions:
        raise NotFoundError(f"{name!r} is not listed in well {well_url!r}; it lists {sorted(acquisitions)}.")
    if reference_acquisition not in set(acquisitions.values()):
        raise NotFoundError(
            f"Well {well_url!r} has no image of reference acquisition {reference_acquisition}; "
            f"its images have acquisitions {acquisitions}."
        )
    by_acquisition: dict = {}
    for path in sorted(acquisitions):
        by_acquisition.setdefault(acquisitions[path], []).append(str(Path(well_url) / path))
    return WellImages(well_url, by_acquisition), acquisitions[name]


def _add_reference_rois(
    zarr_url: str, frame: pd.DataFrame, table_name: str, well, acquisition, reference_acquisition: int
) -> pd.DataFrame:
    """`frame` with reference columns from the reference image's own `table_name`."""
    from fractal_roi_tasks.io.wells import reference_of

    if acquisition == reference_acquisition:  # the reference's table is in its own frame
        reference_url, reference_frame = zarr_url, frame
    else:
        reference_url = reference_of(zarr_url, well, reference_acquisition)
        reference_frame = read_reference_table(reference_url, table_name, for_url=zarr_url)
    logger.info(
        "%s has no reference columns (a fractal-tasks-core consensus table): where its ROIs "
        "lie in the reference is read from %s's %s", table_name, reference_url, table_name,
    )
    return with_reference_rois(
        frame, reference_frame, table_name=table_name, where=zarr_url, reference_where=reference_url
    )


def wanted_marker(table_name: str, frame: pd.DataFrame) -> dict:
    """What a registered image built from this table records about its input."""
    return {"registered_roi_table": table_name, "source": fingerprint(frame)}


def build(
    zarr_url: str, ome_zarr, frame: pd.DataFrame, table_name: str, path: Path, *, register_labels: bool
) -> str:
    """Write the registered image of `zarr_url` at `path`.

    Returns:
        The fingerprint of the registered table as written there.
    """
    import ngio

    pairs = roi_pairs(frame, table_name)
    new = ome_zarr.derive_image(store=str(path), copy_labels=False, copy_tables=True)
    # The tables are small but slow to write: one thread writes them meanwhile
    # (they live in their own group, so the two never touch the same file).
    with ThreadPoolExecutor(max_workers=1) as pool:
        tables = pool.submit(_write_tables, ome_zarr, new, table_name, frame, register_labels)
        _write_arrays(Path(zarr_url), ome_zarr, new, pairs, path, register_labels=register_labels)
        tables.result()  # re-raises what the table writer raised
    written = ngio.open_ome_zarr_container(str(path)).get_roi_table(table_name).dataframe
    return fingerprint(written)


def _write_arrays(source_url: Path, ome_zarr, new, pairs, path: Path, *, register_labels: bool) -> None:
    from fractal_roi_tasks.io.pyramid import build_pyramid
    from fractal_roi_tasks.io.swap import crash_point

    copy_pairs(ome_zarr.get_image(), new.get_image(), pairs)
    crash_point("registering")
    build_pyramid(new.get_image())
    labels = ome_zarr.list_labels()
    for label_name in labels:
        label = ome_zarr.get_label(label_name)
        new_label = new.derive_label(label_name, ref_image=label, dtype=str(label.dtype))
        if register_labels:
            copy_pairs(label, new_label, pairs)
        else:
            copy_whole(label, new_label)
        build_pyramid(new_label)
        _copy_label_metadata(source_url, path, label_name)
    if labels and not register_labels:
        logger.warning("labels %s copied unregistered (register_labels is unset)", labels)


def _write_tables(ome_zarr, new, table_name: str, frame: pd.DataFrame, register_labels: bool) -> None:
    """ROI tables into the reference frame; other tables stay as copied, with a warning.

    `frame` is the registered table as `open_checked` returned it (with its
    reference columns, even where the stored table had none).
    """
    pairs = roi_pairs(frame, table_name)
    others = []
    for name in ome_zarr.list_tables():
        table = ome_zarr.get_table(name)
        kind = table.table_type()
        if kind not in ("roi_table", "masking_roi_table"):
            others.append(name)
            continue
        original = table.dataframe
        if name == table_name:
            data = in_reference_frame(frame, registered=True)
        elif kind == "masking_roi_table":
            data = masking_in_reference_frame(original, pairs) if register_labels else original
        else:
            data = in_reference_frame(original, registered=False)
        if data.equals(original):
            continue  # copied with the other tables already
        table.set_table_data(data)
        new.add_table(name, table, overwrite=True)
    if others:
        logger.warning("tables %s copied as they were: their content was not transformed", others)


def _copy_label_metadata(source: Path, target: Path, label_name: str) -> None:
    """Carry ``colors``/``properties`` of ``image-label`` over (ngio writes only ``source``)."""
    import zarr

    def holder(attrs):
        return attrs["ome"] if "ome" in attrs else attrs

    old = holder(zarr.open_group(str(source / "labels" / label_name), mode="r").attrs.asdict())
    extra = {k: v for k, v in old.get("image-label", {}).items() if k in ("colors", "properties")}
    if not extra:
        return
    group = zarr.open_group(str(target / "labels" / label_name), mode="r+")
    attrs = group.attrs.asdict()
    new = holder(attrs)
    new["image-label"] = {**new.get("image-label", {}), **extra}
    if "ome" in attrs:
        group.attrs["ome"] = new
    else:
        group.attrs["image-label"] = new["image-label"]
