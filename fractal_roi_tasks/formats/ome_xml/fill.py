"""The pixels that holed outlines enclose, by the even-odd rule (OME polygons have no holes)."""

from __future__ import annotations

import numpy as np


def even_odd_fills(pieces: list[list[np.ndarray]]) -> list:
    """Pixels whose centres are inside each piece's rings, by the even-odd rule.

    Args:
        pieces: per piece, its (N, 2) corner-based (x, y) rings, each closing
            on itself.

    Returns:
        per piece, (x0, y0, bits) with `bits` the (H, W) boolean crop whose
        first pixel is column x0, row y0; None when no pixel centre is
        inside. A centre on a vertical edge counts for the region to its
        right, on a horizontal edge for the region below, so touching regions
        share no pixel. All pieces are filled at once, each in its own part
        of one buffer.
    """
    rings = [ring for piece in pieces for ring in piece]
    if not rings:
        return [None] * len(pieces)
    lengths = np.array([len(r) for r in rings])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    start = np.concatenate(rings)
    following = np.arange(1, len(start) + 1)
    following[bounds[1:] - 1] = bounds[:-1]
    stop = start[following]
    rings_per_piece = np.array([len(piece) for piece in pieces])
    of_vertex = np.repeat(np.repeat(np.arange(len(pieces)), rings_per_piece), lengths)
    firsts = bounds[np.cumsum(rings_per_piece) - rings_per_piece]
    x_lo, y_lo = np.ceil(np.minimum.reduceat(start, firsts) - 0.5).astype(np.int64).T
    x_hi, y_hi = np.ceil(np.maximum.reduceat(start, firsts) - 0.5).astype(np.int64).T
    width, height = x_hi - x_lo, y_hi - y_lo
    usable = (width > 0) & (height > 0)
    height = np.where(usable, height, 0)
    size = height * (width + 1)  # each row keeps one column past the end
    offset = np.cumsum(size) - size
    # Every (edge, pixel row) whose row centre the edge crosses.
    y_a, y_b = start[:, 1], stop[:, 1]
    first = np.ceil(np.minimum(y_a, y_b) - 0.5).astype(np.int64)
    count = np.ceil(np.maximum(y_a, y_b) - 0.5).astype(np.int64) - first
    count = np.where(usable[of_vertex], np.maximum(count, 0), 0)
    edge = np.repeat(np.arange(len(start)), count)
    row = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    t = (row + 0.5 - y_a[edge]) / (y_b[edge] - y_a[edge])
    x = start[edge, 0] + t * (stop[edge, 0] - start[edge, 0])
    p = of_vertex[edge]
    col = np.clip(np.ceil(x - 0.5).astype(np.int64) - x_lo[p], 0, width[p])
    cell = offset[p] + (row - y_lo[p]) * (width[p] + 1) + col
    running = np.cumsum(np.bincount(cell, minlength=int(size.sum())))
    # Crossings to the left of each pixel, counted from its row's start.
    row_piece = np.repeat(np.arange(len(pieces)), height)
    row_start = offset[row_piece] + (
        np.arange(len(row_piece)) - np.repeat(np.cumsum(height) - height, height)
    ) * (width[row_piece] + 1)
    before = np.where(row_start > 0, running[np.maximum(row_start - 1, 0)], 0)
    inside = (running - np.repeat(before, width[row_piece] + 1)) % 2 == 1
    return [
        _crop(x_lo[n], y_lo[n], inside[offset[n] : offset[n] + size[n]].reshape(height[n], -1))
        if usable[n]
        else None
        for n in range(len(pieces))
    ]


def _crop(x_lo: int, y_lo: int, toggled: np.ndarray):
    """(x0, y0, bits) of the pixels set in a fill buffer (its last column dropped), or None."""
    bits = toggled[:, :-1]
    if not bits.any():
        return None
    r = np.flatnonzero(bits.any(axis=1))
    c = np.flatnonzero(bits.any(axis=0))
    return int(x_lo + c[0]), int(y_lo + r[0]), bits[r[0] : r[-1] + 1, c[0] : c[-1] + 1]
