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
points only, and several such polygons touch at single points: all valid, and
the even-odd fill of the rings is unchanged (a cut only re-pairs edges).
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
    if not any(_repeats(r) for p in polygons for r in (p.exterior, *p.holes)):
        return polygons
    result = []
    for polygon in polygons:
        rings = (polygon.exterior, *polygon.holes)
        if not any(_repeats(r) for r in rings):
            result.append(polygon)
            continue
        shells, holes = [], []
        for index, ring in enumerate(rings):
            sign = np.sign(_area(ring))
            for piece in _simple_pieces(np.asarray(ring, float)):
                same = np.sign(_area(piece)) == sign
                is_shell = same if index == 0 else not same
                (shells if is_shell else holes).append(piece)
        result.extend(_assemble(shells, holes, polygon.z))
    return result


def _repeats(ring: np.ndarray) -> bool:
    ring = np.asarray(ring)
    return len(np.unique(ring, axis=0)) < len(ring)


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
