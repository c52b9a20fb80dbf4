"""Read what registering the ROIs of one image needs, level by level, and hand it to the core.

Per ROI the coarse step needs the ROI at a pyramid level about 4x coarser,
and the sub-pixel step one small window of each image at the requested
level. At these sizes reading costs more than computing: a zarr read costs
about 0.6 ms whatever its size (and a window still decompresses its whole
chunk). So:

- the coarse level of each image is read once, as the box around all its
  ROIs when that box is small (`_COARSE_BOX_BYTES`) and mostly ROIs, and
  each ROI is cut from it in memory;
- the windows are read straight from the level's zarr array (ngio's public
  `Image.zarr_array`, skipping the per-call ROI handling of ngio's
  `get_roi`), several at once: the ROIs go in batches (coarse step and
  window placement for the batch, then all its windows read concurrently
  through zarr's asynchronous arrays, then the sub-pixel steps), which
  costs about 0.45 ms a window instead of 0.75 ms one after the other.

Kept apart from the task so the benchmark times exactly these reads.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from fractal_roi_tasks.arguments import ChannelChoice
from fractal_roi_tasks.io.ngio_tables import roi_slices, spacing_um
from fractal_roi_tasks.io.tiles import check_time_point, time_points
from fractal_roi_tasks.registration import (
    RefinementWindows,
    ShiftEstimate,
    coarse_shift,
    refine_shift,
    refinement_windows,
)
from fractal_roi_tasks.registration.coarse import default_coarse_factor
from fractal_roi_tasks.translation.intensity import block_mean

try:  # zarr's own bridge to its event loop, which its stores are bound to
    from zarr.core.sync import sync as _zarr_sync
except ImportError:  # pragma: no cover - another zarr layout: read one by one
    _zarr_sync = None

logger = logging.getLogger(__name__)

_COARSE_BOX_BYTES = 64 * 2**20
"""The coarse level is read in one piece when the box around the ROIs is at most this big."""

_MIN_COARSE_PX = 32
"""A ROI narrower than this at the coarse level is read at the requested level and binned."""

ROI_READ_BYTES = 64 * 2**20
"""A ROI whose coarse step would read more than this (float32; a whole-well ROI
of a large 3D well) is measured on its central part of this size: content
that moved moves there too, and memory stays bounded whatever the ROI."""

_BATCH_ROIS = 8
"""ROIs whose windows are read together (memory: two windows of all planes per ROI)."""

_IN_FLIGHT_BYTES = 256 * 2**20
"""Concurrent reads are grouped so that the chunks they decode at once stay under this."""


@dataclass(frozen=True)
class LevelPair:
    """One acquisition's channel at the requested level and at a coarser level.

    Attributes:
        image: the image at the requested level.
        coarse: the image at the level ``factor`` times coarser in y and x,
            or None when the pyramid has none (the requested level is read
            whole and binned).
        factor: coarse pixel size over the requested one.
        channel: index of the registration channel.
        time_point: the time point every read takes (0 without a ``t`` axis).
    """

    image: object
    coarse: object | None
    factor: int
    channel: int
    time_point: int = 0

    def read(self, image, box: Mapping[str, slice]) -> BoxRead:
        """Read `box` of `image` (this level or its coarse one): this channel and time point."""
        return BoxRead(image, self.channel, box, self.time_point)


def open_levels(
    ome_zarr, level: str, channel: ChannelChoice, axes: tuple[str, ...], *, time_point: int = 0, where: str = ""
) -> LevelPair:
    """The requested level and the one about 4x coarser in y and x (2x to 8x, whole ratios).

    Every read takes the one time point ``time_point``: an error (naming
    the image by ``where``) when the image has no such time point (without
    a ``t`` axis only 0 exists).
    """
    image = ome_zarr.get_image(path=level)
    check_time_point(time_point, time_points(image), what="time_point", where=where or "the image")
    index = channel.index_in(image.channel_labels, image.wavelength_ids)
    best = None
    for path in ome_zarr.level_paths:
        other = ome_zarr.get_image(path=path)
        ratios = [s / p for s, p in zip(spacing_um(other, ("y", "x")), spacing_um(image, ("y", "x")))]
        factor = round(ratios[0])
        if 2 <= factor <= 8 and all(abs(r - factor) < 1e-3 * factor for r in ratios):
            if best is None or abs(math.log(factor / 4)) < abs(math.log(best[1] / 4)):
                best = (other, factor)
    if best is None:
        logger.debug("no pyramid level 2x to 8x coarser than %s: binning level %s", level, level)
        return LevelPair(image, None, 0, index, time_point)
    return LevelPair(image, best[0], best[1], index, time_point)


@dataclass(frozen=True)
class BoxRead:
    """What to read: one channel of an ngio image inside a box.

    Attributes:
        image: an ngio image (one pyramid level).
        channel: channel index (ignored when the image has no ``c`` axis).
        box: pixel slices by axis name; an axis not named is read whole.
        time_point: time point index (ignored when the image has no ``t`` axis).
    """

    image: object
    channel: int
    box: Mapping[str, slice]
    time_point: int = 0


def read_boxes(reads: Sequence[BoxRead], axes: tuple[str, ...]) -> list[np.ndarray]:
    """The pixels of several `BoxRead`, read concurrently, axes in ``axes`` order.

    Each box is read straight from the image's zarr array; several boxes
    are read at once through zarr's asynchronous arrays (one event-loop run
    per group), in groups whose chunks being decoded at the same time stay
    under `_IN_FLIGHT_BYTES`. Each read takes one channel and one time
    point. An image with other axes than ``t``, ``c`` and ``axes`` is read
    through ngio instead, one box at a time.

    Args:
        reads: the boxes to read.
        axes: the spatial axes to return, e.g. ``("z", "y", "x")``.

    Returns:
        One array per read, in the image's dtype.
    """
    plans = [_index(read, axes) for read in reads]
    arrays = [None if plan is None else read.image.zarr_array for read, plan in zip(reads, plans)]
    out: list = [None] * len(reads)
    if _zarr_sync is not None:
        for group in _groups([k for k, a in enumerate(arrays) if hasattr(a, "async_array")], arrays, plans):
            if len(group) < 2:
                continue

            async def gather(group=group):
                return await asyncio.gather(*(arrays[k].async_array.getitem(plans[k][0]) for k in group))

            for k, pixels in zip(group, _zarr_sync(gather())):
                out[k] = pixels
    for k, (read, plan) in enumerate(zip(reads, plans)):
        if plan is None:
            when = {"t": read.time_point} if "t" in read.image.axes else {}
            out[k] = np.asarray(read.image.get_array(axes_order=list(axes), c=read.channel, **when, **read.box))
            continue
        pixels = np.asarray(arrays[k][plan[0]] if out[k] is None else out[k])
        out[k] = pixels if plan[1] is None else pixels.transpose(plan[1])
    return out


def _groups(indices: list[int], arrays: list, plans: list) -> list[list[int]]:
    """Consecutive groups of reads whose chunks decoded at once fit in `_IN_FLIGHT_BYTES`.

    zarr decodes up to ``async.concurrency`` (10) chunks of one read at a time.
    """
    groups, current, budget = [], [], 0
    for k in indices:
        array, index = arrays[k], plans[k][0]
        try:
            chunks = array.chunks
        except NotImplementedError:  # not a regular chunk grid: count the array as one chunk
            chunks = array.shape
        touched = 1
        for selection, size, chunk in zip(index, array.shape, chunks):
            if isinstance(selection, slice):
                start, stop, _ = selection.indices(size)
                touched *= max(1, -(-stop // chunk) - start // chunk)
        cost = min(touched, 10) * math.prod(chunks) * array.dtype.itemsize
        if current and budget + cost > _IN_FLIGHT_BYTES:
            groups.append(current)
            current, budget = [], 0
        current.append(k)
        budget += cost
    return groups + [current] if current else groups


def _index(read: BoxRead, axes: tuple[str, ...]) -> tuple[tuple, list[int] | None] | None:
    """(zarr index, transpose to ``axes`` or None) of a read, or None when ngio must read it."""
    on_disk = tuple(read.image.axes)
    if not set(on_disk) <= {"t", "c", *axes}:
        return None
    index, kept = [], []
    for axis in on_disk:
        if axis in ("t", "c"):  # one of each: the index drops the axis
            index.append(read.channel if axis == "c" else read.time_point)
        else:
            index.append(read.box.get(axis, slice(None)))
            kept.append(axis)
    order = [kept.index(axis) for axis in axes]
    return tuple(index), None if order == sorted(order) else order


class _CoarseLevel:
    """The ROIs of one image at its coarse level: from one box around them all, or one read each.

    The box is used when it is at most `_COARSE_BOX_BYTES` and the ROIs
    cover at least half of it (a grid of FOVs covers all of it).
    """

    def __init__(self, level: LevelPair, rois: Sequence, axes: tuple[str, ...], cuts: Sequence):
        self.level, self.axes = level, axes
        geometry = _geometry(level.coarse)
        self.slices = [
            _cut(roi_slices(geometry, roi, axes), cut, level.factor) for roi, cut in zip(rois, cuts)
        ]
        self.pixels, self.origin = None, ()
        starts = [min(s[i].start for s in self.slices) for i in range(len(axes))]
        stops = [max(s[i].stop for s in self.slices) for i in range(len(axes))]
        box_px = math.prod(b - a for a, b in zip(starts, stops))
        covered_px = sum(math.prod(w.stop - w.start for w in s) for s in self.slices)
        nbytes = box_px * np.dtype(level.coarse.zarr_array.dtype).itemsize
        self.box = None
        if nbytes <= _COARSE_BOX_BYTES and 2 * covered_px >= box_px:
            self.box = level.read(level.coarse, {a: slice(b, e) for a, b, e in zip(axes, starts, stops)})
            self.origin = starts
        else:
            logger.debug("coarse level: %d bytes around %d ROIs, one read per ROI", nbytes, len(rois))

    def read(self, index: int) -> BoxRead:
        return self.level.read(self.level.coarse, dict(zip(self.axes, self.slices[index])))

    def cut(self, index: int) -> np.ndarray:
        window = self.slices[index]
        return self.pixels[tuple(slice(w.start - o, w.stop - o) for w, o in zip(window, self.origin))]


@dataclass
class _Placed:
    """A ROI after the coarse step, waiting for its windows."""

    found: ShiftEstimate
    windows: RefinementWindows
    reads: list  # two BoxRead, or two arrays already in memory


def image_shifts(
    reference: LevelPair, moving: LevelPair, roi_pairs: Sequence[tuple], *, quantiles
) -> list[ShiftEstimate]:
    """The shift of every ``(reference_roi, moving_roi)`` pair of two images, in their order.

    Reads each image's coarse level once (see `_CoarseLevel`); then, per
    batch of ROIs: `coarse_shift` and `refinement_windows` for each, their
    windows at the requested level read together, and `refine_shift`.
    """
    levels = (reference, moving)
    axes = tuple(a for a in ("z", "y", "x") if a in reference.image.axes)
    pairs = [tuple(p) for p in roi_pairs]
    geometries = [_geometry(level.image) for level in levels]
    pyramid = reference.coarse is not None and moving.coarse is not None and moving.factor == reference.factor
    step = reference.factor if pyramid else 1
    cuts = []
    for pair in pairs:
        cut = central_cut([roi_slices(g, roi, axes) for g, roi in zip(geometries, pair)], ROI_READ_BYTES // 4, step)
        if cut is not None:
            logger.info("ROI %s is large: its shift is measured on its central %d x %d px", pair[0].name,
                        cut[0][1], cut[1][1])
        cuts.append(cut)
    coarse = None
    if pairs and pyramid:
        coarse = [_CoarseLevel(level, [p[i] for p in pairs], axes, cuts) for i, level in enumerate(levels)]
        boxes = [c for c in coarse if c.box is not None]
        for c, pixels in zip(boxes, read_boxes([c.box for c in boxes], axes)):
            c.pixels = pixels
    results: list = [None] * len(pairs)
    for first in range(0, len(pairs), _BATCH_ROIS):
        batch = range(first, min(first + _BATCH_ROIS, len(pairs)))
        coarse_arrays = {k: [None, None] for k in batch}
        if coarse is not None:
            wanted = [(k, i) for k in batch for i, c in enumerate(coarse) if c.pixels is None]
            for (k, i), pixels in zip(wanted, read_boxes([coarse[i].read(k) for k, i in wanted], axes)):
                coarse_arrays[k][i] = pixels
            for k in batch:
                coarse_arrays[k] = [a if a is not None else c.cut(k) for a, c in zip(coarse_arrays[k], coarse)]
        placed = {}
        for k in batch:
            slices = [_cut(roi_slices(g, roi, axes), cuts[k], 1) for g, roi in zip(geometries, pairs[k])]
            outcome = _place(levels, pairs[k], slices, None if coarse is None else coarse_arrays[k], axes, quantiles)
            if isinstance(outcome, ShiftEstimate):
                results[k] = outcome
            else:
                placed[k] = outcome
        to_read = [(k, i) for k, p in placed.items() for i, r in enumerate(p.reads) if isinstance(r, BoxRead)]
        for (k, i), pixels in zip(to_read, read_boxes([placed[k].reads[i] for k, i in to_read], axes)):
            placed[k].reads[i] = pixels
        for k, p in placed.items():
            results[k] = refine_shift(
                *p.reads, p.found.shift, offset_px=p.windows.offset_px, intensity_quantiles=quantiles
            )
    return results


def _place(levels, rois, slices, coarse, axes, quantiles) -> ShiftEstimate | _Placed:
    """The coarse step of one ROI and its windows, or its final estimate when it stops there.

    ``slices`` are the two ROIs' pixels at the requested level; ``coarse``
    holds their two coarse arrays, or is None to bin the requested level.
    """
    factor, full = levels[0].factor, None
    if coarse is not None:
        coarse = _common(coarse)
        if min(coarse[0].shape[-2:]) < _MIN_COARSE_PX:
            logger.debug("ROI %s: %s px at the coarse level, binning instead", rois[0].name, coarse[0].shape)
            coarse = None
    if coarse is None:
        full = _common(
            read_boxes([lv.read(lv.image, dict(zip(axes, s))) for lv, s in zip(levels, slices)], axes)
        )
        yx = full[0].shape[-2:]
        factor = max(1, min(default_coarse_factor(yx), min(yx) // _MIN_COARSE_PX))
        coarse = [block_mean(f, factor) for f in full]
    found = coarse_shift(*coarse, factor=factor, intensity_quantiles=quantiles)
    if found.reason.startswith("no contrast"):
        return found
    shape = [min(a.stop - a.start, b.stop - b.start) for a, b in zip(slices[0][-2:], slices[1][-2:])]
    windows = refinement_windows(coarse[0], shape, found.shift, factor=factor)
    if windows is None:
        rounded = tuple(float(round(v)) for v in found.shift)
        return ShiftEstimate(rounded, 0.0, False, "the ROIs overlap by less than 32 pixels", rounded)
    if full is not None:  # copies, so the whole ROIs are not kept for the batch
        return _Placed(found, windows, [f[(..., *w)].copy() for f, w in zip(full, (windows.reference, windows.moving))])
    reads = []
    for level, roi_box, window in zip(levels, slices, (windows.reference, windows.moving)):
        box = dict(zip(axes, roi_box))
        box["y"], box["x"] = (slice(s.start + w.start, s.start + w.stop) for s, w in zip(roi_box[-2:], window))
        reads.append(level.read(level.image, box))
    return _Placed(found, windows, reads)


def central_cut(windows: Sequence[tuple[slice, ...]], max_px: int, step: int):
    """Where to cut ROIs too large to measure whole: their common central part.

    Args:
        windows: the two ROIs' pixel slices ((z,) y, x) at the requested level.
        max_px: most pixels the coarse step may read, counted after binning
            y and x by `step` (every plane counts).
        step: the coarse level's factor (1 without one); the cut starts and
            ends on its multiples, so the coarse level maps onto it exactly.

    Returns:
        None when the ROIs fit; else ((y_offset, y_length), (x_offset,
        x_length)) in requested-level pixels from each ROI's start, the same
        for both, keeping y and x in proportion and at least `_MIN_COARSE_PX`
        coarse pixels a side.

    >>> central_cut([(slice(0, 4096), slice(0, 8192))] * 2, 2**19, 4)  # a quarter of its area
    ((1024, 2048), (2048, 4096))
    >>> central_cut([(slice(0, 512), slice(0, 512))] * 2, 2**20, 4) is None
    True
    """
    sizes = [min(w[a].stop - w[a].start for w in windows) for a in range(len(windows[0]))]
    binned = math.prod(sizes[:-2]) * (sizes[-2] // step) * (sizes[-1] // step)
    if binned <= max_px:
        return None
    keep = math.sqrt(max_px / binned)
    cut = []
    for n in sizes[-2:]:
        whole = n // step * step
        length = min(whole, max(step * _MIN_COARSE_PX, int(n * keep) // step * step))
        cut.append(((whole - length) // 2 // step * step, length))
    return tuple(cut)


def _cut(window: tuple[slice, ...], cut, factor: int) -> tuple[slice, ...]:
    """`window` cut as `central_cut` says, at a level `factor` times coarser."""
    if cut is None:
        return window
    return tuple(window[:-2]) + tuple(
        slice(w.start + offset // factor, w.start + (offset + length) // factor)
        for w, (offset, length) in zip(window[-2:], cut)
    )


def _geometry(image) -> SimpleNamespace:
    """What `roi_slices` asks an image for (pixel size, shape, axes), looked up once."""
    return SimpleNamespace(pixel_size=image.pixel_size, shape=tuple(image.shape), axes=tuple(image.axes))


def _common(arrays: list[np.ndarray]) -> list[np.ndarray]:
    common = tuple(slice(0, min(n)) for n in zip(*(a.shape for a in arrays)))
    return [a[common] for a in arrays]
