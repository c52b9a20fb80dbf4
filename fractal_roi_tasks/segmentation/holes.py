"""Filling holes in a label image, object by object.

Works on integer label images, (Y, X) or (Z, Y, X), with face connectivity. A
hole is a background region that does not reach the image border.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

logger = logging.getLogger(__name__)


def find_holes(mask: np.ndarray) -> np.ndarray:
    """Background pixels of `mask` that are enclosed by foreground.

    Args:
        mask: boolean array, (Y, X) or (Z, Y, X).

    Returns:
        Boolean array of the same shape, True on the holes.
    """
    return ndi.binary_fill_holes(mask) & ~mask


def fill_holes_per_object(labels: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Give each hole to the object around it, if one single object encloses it.

    Every connected region of `holes` whose neighbouring pixels all belong to
    one object becomes part of that object; a region bordered by several
    objects (such as the gap in the middle of a ring of touching nuclei) is
    left as it is.

    Args:
        labels: integer label image, (Y, X) or (Z, Y, X).
        holes: boolean mask of the same shape, usually `find_holes(labels > 0)`.

    Returns:
        A copy of `labels` with the holes enclosed by one object filled with
        its id.

    Example:
        >>> import numpy as np
        >>> labels = np.zeros((7, 7), dtype=np.int32)
        >>> labels[1:6, 1:6] = 3
        >>> labels[3, 3] = 0
        >>> int(fill_holes_per_object(labels, labels == 0)[3, 3])
        3
    """
    out = labels.copy()
    hole_ids, n_holes = ndi.label(holes)
    structure = ndi.generate_binary_structure(labels.ndim, 1)
    n_filled = 0
    for hole_id, box in enumerate(ndi.find_objects(hole_ids), start=1):
        if box is None:
            continue
        # Widen the box by one pixel to see the ring around the hole.
        box = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, size))
            for s, size in zip(box, labels.shape, strict=True)
        )
        hole = hole_ids[box] == hole_id
        ring = ndi.binary_dilation(hole, structure) & ~hole
        neighbours = np.unique(labels[box][ring])
        if neighbours.size == 1 and neighbours[0] != 0:
            out[box][hole] = neighbours[0]
            n_filled += 1
    logger.debug("%d holes, %d filled, the others bordered by several objects", n_holes, n_filled)
    return out
