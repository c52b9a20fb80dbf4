"""Exact outlines of every object of a 2D label image, in one pass.

An outline here is the *crack boundary*: the chain of pixel edges between an
object's pixels and everything else. Its vertices lie on pixel corners, so

- rasterizing it by pixel centres gives back exactly the object's pixels
  (no pixel centre can lie on it), whatever tool rasterizes;
- its shoelace area equals the object's pixel count.

Coordinates are (row, column) in pixel units with pixel centres on integers,
so a corner sits at half-integers: the single pixel (0, 0) is the square
(-0.5, -0.5), (-0.5, 0.5), (0.5, 0.5), (0.5, -0.5).

How: every edge between two pixels of different labels becomes one directed
edge per non-zero side, oriented so the object lies on its right (clockwise
on screen for outer rings, anticlockwise for holes). Each edge's successor is
the edge of the same label leaving its end corner; at a corner where an object
touches itself diagonally the left turn is taken, which keeps 8-connected
pixels in one ring (the connectivity `skimage.measure.label` uses by default).
Pointer jumping over the successors orders each ring's vertices, so the
whole trace is vectorized over the image: no Python loop per object or pixel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.rois.cracks import HALF_SQRT2, plane_cracks

logger = logging.getLogger(__name__)

# Directions, clockwise on screen (row axis pointing down): east, south,
# west, north. A left turn from d is (d + 3) % 4.
_STEP = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int64)


@dataclass(frozen=True)
class Rings:
    """Closed outlines of every object of a 2D label image.

    Vertices of all rings are stored end to end; ring r is
    ``points[bounds[r]:bounds[r + 1]]`` and closes from its last vertex back
    to its first (the first is not repeated).

    Attributes:
        points: (V, 2) float64 (row, column) pixel-corner coordinates, pixel
            centres on integers.
        bounds: (R + 1,) int64 offsets of the rings in `points`.
        labels: (R,) label value of each ring.
        signed_area: (R,) shoelace area in pixels; positive for outer rings
            (clockwise on screen), negative for holes, so that summing per
            label gives the pixel count.
        object_labels: (n,) the labels present, sorted.
        perimeter: (n,) per label, the length in pixels of the contour through
            the mid-points of the boundary edges (what marching squares at 0.5
            draws), holes included.
    """

    points: np.ndarray
    bounds: np.ndarray
    labels: np.ndarray
    signed_area: np.ndarray
    object_labels: np.ndarray
    perimeter: np.ndarray

    @property
    def is_hole(self) -> np.ndarray:
        """(R,) True for a ring bounding a hole of its object."""
        return self.signed_area < 0

    def ring(self, r: int) -> np.ndarray:
        """(N, 2) vertices of ring r."""
        return self.points[self.bounds[r] : self.bounds[r + 1]]

    def __len__(self) -> int:
        return len(self.labels)


def _directed_edges(label_plane: np.ndarray):
    """All boundary edges as (label, start corner row, start col, direction)."""
    height, width = label_plane.shape
    padded = np.zeros((height + 2, width + 2), dtype=label_plane.dtype)
    padded[1:-1, 1:-1] = label_plane  # np.pad is several times slower here
    flat = padded.ravel()
    pw = width + 2
    labels, rows, cols, dirs = [], [], [], []

    def add(values, r, c, direction):
        keep = values != 0
        labels.append(values[keep])
        rows.append(r[keep])
        cols.append(c[keep])
        dirs.append(np.full(int(keep.sum()), direction, np.int8))

    # Horizontal cracks between padded rows i and i + 1, on corner row i + 1.
    idx = np.flatnonzero(padded[1:, :] != padded[:-1, :])
    i, j = np.divmod(idx, pw)
    add(flat[idx + pw], i + 1, j, 0)  # top edge of the pixel below: east
    add(flat[idx], i + 1, j + 1, 2)  # bottom edge of the pixel above: west
    # Vertical cracks between padded columns j and j + 1, on corner column j + 1.
    idx = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    i, j = np.divmod(idx, pw - 1)
    flat_left = i * pw + j
    add(flat[flat_left + 1], i + 1, j + 1, 3)  # left edge of the right pixel: north
    add(flat[flat_left], i, j + 1, 1)  # right edge of the left pixel: south

    return (
        np.concatenate(labels),
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(dirs),
        padded.shape,
    )


def _successors(label_rank, rows, cols, dirs, n_corner_cols):
    """Index of the edge that follows each edge along its ring."""
    n_corners = (int(rows.max()) + 2) * n_corner_cols
    start_key = label_rank * n_corners + rows * n_corner_cols + cols
    end_rows = rows + _STEP[dirs, 0]
    end_cols = cols + _STEP[dirs, 1]
    end_key = label_rank * n_corners + end_rows * n_corner_cols + end_cols

    order = np.argsort(start_key, kind="stable")
    sorted_keys = start_key[order]
    first = np.searchsorted(sorted_keys, end_key, side="left")
    succ = order[first]
    # A label touching itself diagonally leaves a corner twice; take the
    # outgoing edge that turns left, so diagonal neighbours stay joined.
    second = first + 1
    has_two = second < len(sorted_keys)
    has_two[has_two] = sorted_keys[second[has_two]] == end_key[has_two]
    if has_two.any():
        alt = order[second[has_two]]
        want = (dirs[has_two] + 3) % 4
        use_alt = dirs[alt] == want
        succ[np.flatnonzero(has_two)[use_alt]] = alt[use_alt]
    return succ


def _order_rings(succ, turns, label_rank):
    """Polygon vertices ring by ring, in walking order, without a Python loop.

    Only edges whose successor turns end at a polygon vertex. Pointer jumping
    (repeated doubling of `succ`) gives each of them the next vertex, the ring
    it belongs to (its smallest member) and its place in that ring; a sort by
    (ring, place) then lists every ring's vertices in order.

    Returns:
        (edge index of each vertex, ring id of each vertex), both (V,) int64,
        sorted by ring and then walking order; ring ids are 0..R-1.
    """
    # Skip straight runs: the first turning edge after each edge.
    jump = succ.copy()
    pending = np.flatnonzero(~turns[jump])
    while pending.size:
        jump[pending] = jump[jump[pending]]
        pending = pending[~turns[jump[pending]]]
    vertex_edges = np.flatnonzero(turns)
    n = len(vertex_edges)
    place = np.empty(len(succ), np.int64)
    place[vertex_edges] = np.arange(n)
    nxt = place[jump[vertex_edges]]

    # A ring has at most as many vertices as its label has in total.
    longest = int(np.bincount(label_rank[vertex_edges]).max())
    index = np.arange(n)
    ring = index.copy()
    hop = nxt.copy()
    reach = 1
    while reach < longest:
        ring = np.minimum(ring, ring[hop])
        hop = hop[hop]
        reach *= 2
    # Steps from each vertex forward to its ring's root (smallest member).
    is_root = ring == index
    steps = (~is_root).astype(np.int64)
    hop = np.where(is_root, index, nxt)
    reach = 1
    while reach < longest:
        steps = steps + steps[hop]
        hop = hop[hop]
        reach *= 2
    ring_len = np.bincount(ring, minlength=n)[ring]
    walk_pos = np.where(is_root, 0, ring_len - steps)
    order = np.lexsort((walk_pos, ring))
    _, ring_id = np.unique(ring[order], return_inverse=True)
    return vertex_edges[order], ring_id


def trace_rings(label_plane: np.ndarray) -> Rings:
    """Trace the exact outline of every object of a 2D label image.

    Args:
        label_plane: (Y, X) integer array, 0 is background. Objects may touch
            each other, have holes and consist of several pieces.

    Returns:
        `Rings`, one per connected piece outline and one per hole.

    Example:
        >>> plane = np.zeros((4, 4), np.uint32)
        >>> plane[1:3, 1:3] = 7
        >>> rings = trace_rings(plane)
        >>> rings.labels.tolist(), rings.signed_area.tolist()
        ([7], [4.0])
        >>> rings.ring(0).tolist()
        [[0.5, 2.5], [2.5, 2.5], [2.5, 0.5], [0.5, 0.5]]
    """
    if label_plane.ndim != 2:
        raise ValueError(f"label_plane must be 2D, got shape {label_plane.shape}.")
    return _trace_plane(label_plane)


def _trace_plane(label_plane: np.ndarray) -> Rings:
    """`trace_edges(*_directed_edges(plane))`, bit for bit, without sorting edges.

    The edges are those of `_directed_edges`, in its order: per side of a
    pixel (top edges going east, bottom west, left north, right south), in
    raster order of the pixel they bound. Where an edge goes next depends
    only on the two pixels ahead of its end corner (left turn if the
    ahead-left pixel is the object, straight on if only the ahead-right one
    is, else right turn), so turns and perimeters need no successor search.
    A vertex (an edge followed by a turn) finds the next vertex as the end
    of the straight run its outgoing edge starts: one binary search among
    the vertices of that side, sorted along the run's row or column. Rings
    come out of the vertex graph's connected components (numbered by
    smallest member, as `_order_rings` numbers them) and one depth-first walk
    through all rings chained root to root.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components, depth_first_order

    height, width = label_plane.shape
    cracks = plane_cracks(label_plane)
    pw, values = cracks.row_length, cracks.values
    # Where the left turn and the right turn of each side go (side, pixel offset).
    turn_to = (((2, 1 - pw), (3, 0)), ((3, pw - 1), (2, 0)),
               ((1, -pw - 1), (0, 0)), ((0, pw + 1), (1, 0)))
    vertex_px, vertex_left, vertex_values = [], [], []
    for side in range(4):
        turning = ~cracks.straight[side]
        vertex_px.append(cracks.pixels[side][turning])
        vertex_left.append(cracks.goes_left[side][turning])
        vertex_values.append(values[side][turning])
    sizes = [len(v) for v in vertex_px]
    first = np.concatenate([[0], np.cumsum(sizes)])
    n = int(first[-1])
    if n == 0:
        no_labels = np.zeros(0, label_plane.dtype)
        return Rings(
            np.zeros((0, 2)), np.zeros(1, np.int64), no_labels, np.zeros(0), no_labels, np.zeros(0)
        )

    # Runs go along rows (E, W: raster order) or columns (N, S: sorted here).
    n_rows = height + 2
    column_key = [None, None]
    column_order = [None, None]
    for k, side in enumerate((2, 3)):
        row, col = np.divmod(vertex_px[side], pw)
        key = col * n_rows + row
        column_order[k] = np.argsort(key)
        column_key[k] = key[column_order[k]]

    def run_end(side, q):
        """Vertex index ending the straight run that starts with edge (side, q)."""
        if side == 0:  # east: first vertex at or after q
            at = np.searchsorted(vertex_px[0], q, "left")
        elif side == 1:  # west: last vertex at or before q
            at = np.searchsorted(vertex_px[1], q, "right") - 1
        else:
            row, col = np.divmod(q, pw)
            key = col * n_rows + row
            k = side - 2
            if side == 2:  # north: last vertex at or above
                at = np.searchsorted(column_key[k], key, "right") - 1
            else:  # south: first vertex at or below
                at = np.searchsorted(column_key[k], key, "left")
            at = column_order[k][at]
        return first[side] + at

    nxt = np.empty(n, np.int64)
    for side in range(4):
        p, goes_left = vertex_px[side], vertex_left[side]
        out = nxt[first[side] : first[side + 1]]
        for turn, mask in ((0, goes_left), (1, ~goes_left)):
            target, shift = turn_to[side][turn]
            out[mask] = run_end(target, p[mask] + shift)

    graph = csr_matrix((np.ones(n, np.int8), nxt, np.arange(n + 1)), shape=(n, n))
    n_rings, ring = connected_components(graph, directed=True, connection="weak")
    running = np.maximum.accumulate(ring)
    roots = np.flatnonzero(np.concatenate([[True], running[1:] != running[:-1]]))
    if len(roots) != n_rings:  # components not numbered by first member: renumber
        _, roots = np.unique(ring, return_index=True)
        roots = np.sort(roots)
        renumber = np.empty(n_rings, np.int64)
        renumber[ring[roots]] = np.arange(n_rings)
        ring = renumber[ring]
    # Chain the rings: the vertex before each root goes on to the next root.
    is_root = np.zeros(n, bool)
    is_root[roots] = True
    before_root = np.flatnonzero(is_root[nxt])
    chained = nxt.copy()
    chained[before_root] = roots[(ring[before_root] + 1) % n_rings]
    walk = csr_matrix((np.ones(n, np.int8), chained, np.arange(n + 1)), shape=(n, n))
    order = depth_first_order(walk, int(roots[0]), directed=True, return_predecessors=False)
    if len(order) != n:
        raise RuntimeError(f"ring walk visited {len(order)} of {n} vertices")  # a bug, not input

    # End corner of each vertex edge, padded (row, col) of its pixel plus
    # (0, 1) for E, (1, 0) for W, (0, 0) for N, (1, 1) for S.
    corner_r, corner_c = [], []
    for side, (dr, dc) in enumerate(((0, 1), (1, 0), (0, 0), (1, 1))):
        row, col = np.divmod(vertex_px[side], pw)
        corner_r.append(row + dr)
        corner_c.append(col + dc)
    end_r = np.concatenate(corner_r)[order]
    end_c = np.concatenate(corner_c)[order]
    coords = np.stack([end_r - 1.5, end_c - 1.5], axis=1)
    ring_of_vertex = ring[order]

    ring_labels = np.concatenate(vertex_values)[roots]

    object_labels = np.unique(ring_labels)
    perimeter = cracks.perimeter(object_labels)
    return _rings(coords, ring_of_vertex, ring_labels, object_labels, perimeter)


def _rings(coords, ring_of_vertex, ring_labels, object_labels, perimeter) -> Rings:
    """`Rings` from vertices in ring order: ring bounds and signed areas (shoelace, all at once)."""
    ring_sizes = np.bincount(ring_of_vertex)
    bounds = np.concatenate([[0], np.cumsum(ring_sizes)])
    nxt = np.arange(len(coords)) + 1
    nxt[bounds[1:] - 1] = bounds[:-1]
    cross = coords[:, 1] * coords[nxt, 0] - coords[nxt, 1] * coords[:, 0]
    signed_area = np.bincount(ring_of_vertex, weights=cross) / 2.0
    logger.debug("traced %d rings of %d objects", len(ring_sizes), len(object_labels))
    return Rings(
        points=coords,
        bounds=bounds,
        labels=ring_labels,
        signed_area=signed_area,
        object_labels=object_labels,
        perimeter=perimeter,
    )


def trace_edges(labels, rows, cols, dirs, n_corner_cols, *, offset=(0, 0), dtype=None) -> Rings:
    """Link directed boundary edges into rings (the second half of `trace_rings`).

    Edges are (label, padded corner row, padded corner column, direction) as
    `_directed_edges` makes them. Every label's results depend only on its own
    edges and their relative order, so tracing a subset of labels, with the
    edges in the order `_directed_edges` gives them on the whole plane, yields
    bit-identical rings and perimeters for those labels. `offset` is added to
    the corner coordinates (a caller that shifted them to keep keys small).
    """
    if labels.size == 0:
        no_labels = np.zeros(0, labels.dtype if dtype is None else dtype)
        return Rings(
            np.zeros((0, 2)), np.zeros(1, np.int64), no_labels, np.zeros(0), no_labels, np.zeros(0)
        )
    unique_labels, label_rank = np.unique(labels, return_inverse=True)
    succ = _successors(label_rank.astype(np.int64), rows, cols, dirs, n_corner_cols)

    # A vertex of the polygon is the end of an edge whose successor turns.
    turns = dirs[succ] != dirs
    perimeter = np.bincount(
        label_rank, weights=np.where(turns, HALF_SQRT2, 1.0), minlength=len(unique_labels)
    )

    vertex_edges, ring_of_vertex = _order_rings(succ, turns, label_rank)
    end_r = rows[vertex_edges] + _STEP[dirs[vertex_edges], 0]
    end_c = cols[vertex_edges] + _STEP[dirs[vertex_edges], 1]
    # Padded corner (r, c) is the top-left corner of unpadded pixel (r-1, c-1),
    # i.e. the point (r - 1.5, c - 1.5) in pixel-centre coordinates.
    coords = np.stack([(end_r + offset[0]) - 1.5, (end_c + offset[1]) - 1.5], axis=1)

    # Each ring's first vertex is where its label changes along ring_of_vertex.
    firsts = np.concatenate([[0], np.flatnonzero(np.diff(ring_of_vertex)) + 1])
    ring_labels = labels[vertex_edges[firsts]]
    return _rings(coords, ring_of_vertex, ring_labels, unique_labels, perimeter)
