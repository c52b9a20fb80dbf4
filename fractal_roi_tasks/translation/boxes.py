"""Boxes of pixels two windows share at a whole-pixel displacement.

A box is a tuple of slices, one per axis (y, x). With displacement ``d``,
pixel ``v`` of the reference window pairs with pixel ``v + d`` of the moving
window (the moving content sits ``d`` further along).
"""

from __future__ import annotations

from collections.abc import Sequence


def common_box(
    reference_shape: Sequence[int],
    moving_shape: Sequence[int],
    displacement: Sequence[int],
    *,
    min_size: int,
    margin: Sequence[int] = (0, 0),
) -> tuple[slice, ...] | None:
    """Reference pixels ``v`` whose ``v + d`` lies in the moving window, shrunk by ``margin``.

    The margin keeps the box valid for every displacement within ``margin``
    of ``displacement`` (per axis). None when the box is narrower than
    ``min_size`` along an axis.

    >>> common_box((10, 10), (10, 12), (2, -3), min_size=4)
    (slice(0, 8, None), slice(3, 10, None))
    >>> common_box((10, 10), (10, 10), (2, -3), min_size=4, margin=(1, 1))
    (slice(1, 7, None), slice(4, 9, None))
    >>> common_box((10, 10), (10, 10), (8, 0), min_size=4) is None
    True
    """
    box = []
    for n_reference, n_moving, d, r in zip(reference_shape, moving_shape, displacement, margin):
        start, stop = max(0, -d) + r, min(n_reference, n_moving - d) - r
        if stop - start < min_size:
            return None
        box.append(slice(start, stop))
    return tuple(box)


def moved(box: tuple[slice, ...], offset: Sequence[int]) -> tuple[slice, ...]:
    """``box`` moved by whole pixels ``offset``.

    >>> moved((slice(0, 4), slice(2, 6)), (1, -2))
    (slice(1, 5, None), slice(0, 4, None))
    """
    return tuple(slice(s.start + o, s.stop + o) for s, o in zip(box, offset))


def fits(box: tuple[slice, ...], shape: Sequence[int], offset: Sequence[int]) -> bool:
    """Whether ``box`` moved by ``offset`` lies inside an array of ``shape``.

    >>> fits((slice(0, 4),), (5,), (1,)), fits((slice(0, 4),), (5,), (2,))
    (True, False)
    """
    return all(0 <= s.start + o and s.stop + o <= n for s, n, o in zip(box, shape, offset))
