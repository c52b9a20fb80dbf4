"""Pixel outlines as valid Simple Features (OGC, as GEOS/JTS check them).

A traced pixel outline may touch itself at a pixel corner: two pixels of one
object meeting only diagonally, or a hole meeting the outline (or another
part of itself) at one corner. Written as one ring, such a ring visits that
corner twice, which GEOS/JTS call "Ring Self-intersection" (not `is_valid`).
The valid form of the same region cuts each ring at every repeated vertex
into simple rings, then sorts them: a piece turning the way its ring's area
turns stays what the ring was (an exterior, or a hole); a piece turning the
other way is the opposite (a hole cut from an exterior, or an island cut from
a hole). Holes go to the smallest exterior around them; every resulting
polygon is an exterior with holes that touch it, or each other, at single
points only, and several such polygons touch at single points; the even-odd
fill of the rings is unchanged (a cut only re-pairs edges).

One case is left after the cuts: holes that touch the exterior (or each
other) at two or more points around a cycle, which cut the interior into
parts ("Interior is disconnected"). Those parts are exactly the object's
4-connected pixel components (pixels meeting at a corner share no interior),
so such a polygon is replaced by one polygon per component, each traced
again and cut as above. It is rare (about 2 in 1,000 objects of noisy
segmentations), so it is done pixel by pixel on the polygon's own box.
"""

from __future__ import annotations

import numpy as np

from fractal_roi_tasks.rois import Polygon


def valid_polygons(polygons: list[Polygon]) -> list[Polygon]:
    """`polygons` with every self-touching ring cut into simple rings.

    Args:
        polygons: one object's pieces, (y, x) rings on pixel corners.

    Returns:
        the same list (the same objects) when no ring repeats a vertex, else
        polygons whose rings are simple, in the order of the pieces they
        came from; the even-odd region of each plane is unchanged.
    """
    result = []
    for polygon in polygons:
        rings = (polygon.exterior, *polygon.holes)
        cuts = _cut(polygon) if any(_repeats(r) for r in rings) else [polygon]
        for cut in cuts:
            result.extend(_split_components(cut) if _interior_cycle(cut) else [cut])
    unchanged = len(result) == len(polygons) and all(a is b for a, b in zip(result, polygons))
    return polygons if unchanged else result


def _cut(polygon: Polygon) -> list[Polygon]:
    """The polygon with every ring cut at its repeated vertices, rings re-sorted."""
    shells, holes = [], []
    for index, ring in enumerate((polygon.exterior, *polygon.holes)):
        sign = np.sign(_area(ring))
        for piece in _simple_pieces(np.asarray(ring, float)):
            same = np.sign(_area(piece)) == sign
            is_shell = same if index == 0 else not same
            (shells if is_shell else holes).append(piece)
    return _assemble(shells, holes, polygon.z)


def _repeats(ring: np.ndarray) -> bool:
    keys = _keys(ring)
    return len(np.unique(keys)) < len(keys)


def _keys(points: np.ndarray) -> np.ndarray:
    """One int64 per vertex (vertices sit on half-integers), for fast comparisons."""
    twice = np.rint(2 * np.asarray(points, float)).astype(np.int64)
    return twice[:, 0] * (1 << 32) + twice[:, 1]


def _interior_cycle(polygon: Polygon) -> bool:
    """Do the rings touch around a cycle (exterior - hole - ... - exterior)?

    Rings are nodes and every shared vertex joins the rings meeting there;
    the interior is connected exactly when that graph has no cycle.
    """
    rings = (polygon.exterior, *polygon.holes)
    if len(rings) < 2:
        return False
    keys = np.concatenate([_keys(r) for r in rings])
    ring_of = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    order = np.argsort(keys, kind="stable")
    keys, ring_of = keys[order], ring_of[order]
    shared = np.zeros(len(keys), bool)
    shared[1:] |= keys[1:] == keys[:-1]
    shared[:-1] |= keys[:-1] == keys[1:]
    if not shared.any():  # the usual case: no ring touches another
        return False
    owner: dict[int, list[int]] = {}
    for key, ring in zip(keys[shared].tolist(), ring_of[shared].tolist()):
        owner.setdefault(key, []).append(ring)
    parent = list(range(len(rings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for meeting in owner.values():
        for other in meeting[1:]:
            a, b = root(meeting[0]), root(other)
            if a == b:
                return True
            parent[b] = a
    return False


def _split_components(polygon: Polygon) -> list[Polygon]:
    """One polygon per 4-connected pixel component of the polygon's region."""
    from scipy import ndimage as ndi

    from fractal_roi_tasks.rois.boundaries import trace_rings

    exterior = np.asarray(polygon.exterior, float)
    # Corners sit at half-integers: pixel (r, c) spans [r - 0.5, r + 0.5).
    low = np.floor(exterior.min(axis=0) + 0.5).astype(int)
    high = np.floor(exterior.max(axis=0) - 0.5).astype(int)
    inside = _even_odd_fill((exterior, *polygon.holes), low, tuple(high - low + 1))
    components, n = ndi.label(inside)  # 4-connected in 2D
    result = []
    for k in range(1, n + 1):
        rings = trace_rings((components == k).astype(np.uint8))
        traced = [rings.points[rings.bounds[r] : rings.bounds[r + 1]] + low for r in range(len(rings))]
        areas = rings.signed_area.tolist()
        shell = next(ring for ring, area in zip(traced, areas) if area > 0)
        holes = tuple(ring for ring, area in zip(traced, areas) if area < 0)
        result.extend(_cut(Polygon(shell, holes, polygon.z)))
    return result


def _area(ring: np.ndarray) -> float:
    y, x = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _simple_pieces(ring: np.ndarray) -> list[np.ndarray]:
    """Cut a closed ring (last vertex not repeated) at its repeated vertices."""
    pieces = []
    stack = []  # the ring walked so far: cut off a loop when a vertex comes back
    seen: dict[tuple, int] = {}
    for vertex in ring:
        key = (vertex[0], vertex[1])
        if key in seen:
            start = seen[key]
            loop = stack[start:]
            if len(loop) >= 3:
                pieces.append(np.array(loop))
            for v in stack[start + 1 :]:
                seen.pop((v[0], v[1]), None)
            del stack[start + 1 :]
        else:
            seen[key] = len(stack)
            stack.append(vertex)
    if len(stack) >= 3:
        pieces.append(np.array(stack))
    return pieces


def _inside(point: np.ndarray, ring: np.ndarray) -> bool:
    """Even-odd test of a point that is not on the ring."""
    y, x = point
    ys, xs = ring[:, 0], ring[:, 1]
    ys2, xs2 = np.roll(ys, -1), np.roll(xs, -1)
    crosses = (ys > y) != (ys2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = xs + (y - ys) * (xs2 - xs) / (ys2 - ys)
    return bool(np.count_nonzero(crosses & (at > x)) % 2)


def _even_odd_fill(rings, low: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels (from `low`, of `shape`) whose centres the rings enclose, even-odd.

    The rings run along pixel edges, so a row's inside flips at each vertical
    edge crossing it: count the crossings per row and column boundary (a
    difference array over rows), then take the parity of their running sum.
    """
    crossings = np.zeros((shape[0] + 1, shape[1] + 1), np.int64)
    for ring in rings:
        start = np.asarray(ring, float) - low
        stop = np.roll(start, -1, axis=0)
        vertical = start[:, 1] == stop[:, 1]
        top = np.rint(np.minimum(start[vertical, 0], stop[vertical, 0]) + 0.5).astype(np.int64)
        bottom = np.rint(np.maximum(start[vertical, 0], stop[vertical, 0]) + 0.5).astype(np.int64)
        column = np.rint(start[vertical, 1] + 0.5).astype(np.int64)
        np.add.at(crossings, (top, column), 1)
        np.add.at(crossings, (bottom, column), -1)
    per_row = np.cumsum(crossings, axis=0)[:-1]
    return (np.cumsum(per_row, axis=1)[:, :-1] % 2).astype(bool)


def _assemble(shells: list, holes: list, z) -> list[Polygon]:
    areas = [abs(_area(s)) for s in shells]
    owned: list[list] = [[] for _ in shells]
    for hole in holes:
        probe = (hole[0] + hole[1]) / 2  # an edge's midpoint: on no other ring
        around = [i for i, s in enumerate(shells) if _inside(probe, s)]
        if not around:  # cannot happen for a traced outline; keep the area right
            continue
        owned[min(around, key=lambda i: areas[i])].append(hole)
    return [Polygon(s, tuple(h), z) for s, h in zip(shells, owned)]
