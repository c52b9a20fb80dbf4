"""Copy regions between zarr arrays of one shape, block by block of the target.

Apply Registration moves every ROI of an acquisition to where it lies in the
reference; a block of the output is assembled from the regions reaching into
it and written once, whole chunks at a time, so memory is a few blocks.
"""

from __future__ import annotations

import itertools

import numpy as np

BLOCK_BYTES = 4 * 2**20
"""About how much of the target is assembled in memory at once."""
SHARED_READ_FACTOR = 2
"""A block's source regions are read in one piece if they span at most this many blocks."""


def copy_boxes(read_array, write_array, axes: list[str], boxes, *, block_bytes: int | None = None) -> None:
    """Copy regions of zarr `read_array` to other places of `write_array` (same shape).

    `boxes` are (source, target) slices by axis name (axes not named: whole),
    in `axes` order of the arrays. Block by block of `write_array` (whole
    chunks, about `block_bytes` each, default `BLOCK_BYTES`): each block is
    assembled in memory from the regions that reach into it (later boxes over
    earlier ones, zero elsewhere) and written once, so memory is a few blocks
    whatever the image size. The source regions a block needs are read in one
    piece when they lie close together (the usual case: shifts are small),
    else box by box.
    """
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
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


def copy_whole(read_array, write_array, *, block_bytes: int | None = None) -> None:
    """Copy zarr `read_array` into `write_array` (same shape), block by block."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
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
