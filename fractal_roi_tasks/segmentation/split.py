"""Splitting touching objects with a distance-transform watershed.

Works on integer label images, (Y, X) or (Z, Y, X), in pixel units, with face
connectivity.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

logger = logging.getLogger(__name__)

# The distance map is smoothed a little before its maxima are taken: the
# ridges of a pixelated distance transform have small bumps.
DISTANCE_SMOOTHING_SIGMA_PX = 1.0
# Two pieces stay apart only if the distance map dips by at least this much
# (pixels) between them: roughly, the half-width of the neck between two
# objects must be this much smaller than the inscribed radius of the smaller
# one. Without it, every bump along a flat ridge (an elongated object, a ring
# around a hole) becomes an object. Touching nuclei pressed against each other
# have shallow necks: on the cardiomyocyte nuclei, 0.5-1 px keeps the counts
# right, 2 px merges ~10 of 168 nuclei with a neighbour.
MIN_NECK_DEPTH_PX = 0.75


def split_touching_objects(
    components: np.ndarray,
    *,
    min_distance: int,
    min_neck_depth: float = MIN_NECK_DEPTH_PX,
) -> np.ndarray:
    """Split touching objects with a watershed of the distance transform.

    Markers are the maxima of the (slightly smoothed) distance to the
    background, at least `min_distance` pixels apart, searched within each
    connected component; a component without such a maximum gets one marker
    at its deepest pixel, so no component is lost. After the watershed, a
    piece whose maximum rises less than `min_neck_depth` above the highest
    point of its border with a neighbour is merged into that neighbour (the
    "dynamics" of the maxima, as in h-maxima markers).

    Args:
        components: integer label image, (Y, X) or (Z, Y, X), of connected
            foreground components (0 = background).
        min_distance: smallest distance in pixels between two markers.
        min_neck_depth: smallest dip of the distance map, in pixels, for two
            pieces to stay apart.

    Returns:
        int32 label image of the same shape: every foreground pixel belongs
        to one object, numbered 1..n (n >= number of components).

    Example:
        >>> import numpy as np
        >>> yy, xx = np.mgrid[:40, :60]
        >>> left = (yy - 20) ** 2 + (xx - 20) ** 2 < 100
        >>> right = (yy - 20) ** 2 + (xx - 38) ** 2 < 100
        >>> labels = split_touching_objects((left | right).astype(np.int32), min_distance=5)
        >>> int(labels.max()), int(labels[20, 20]) != int(labels[20, 38])
        (2, True)
    """
    foreground = components > 0
    if not foreground.any():
        return np.zeros(components.shape, dtype=np.int32)
    distance = ndi.distance_transform_edt(foreground)
    if DISTANCE_SMOOTHING_SIGMA_PX > 0:
        distance = ndi.gaussian_filter(distance, DISTANCE_SMOOTHING_SIGMA_PX) * foreground
    peaks = peak_local_max(
        distance,
        min_distance=min_distance,
        labels=components,
        exclude_border=False,
    )
    markers = np.zeros(components.shape, dtype=np.int32)
    if len(peaks):
        markers[tuple(np.asarray(peaks).T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)

    # Every component gets at least one marker: peak_local_max finds none on a
    # flat distance map, e.g. a line one or two pixels wide. (Component ids may
    # have gaps: the caller may have removed small components.)
    present = np.bincount(components.ravel()) > 0
    present[0] = False
    n_components = int(np.count_nonzero(present))
    has_marker = np.zeros(present.size, dtype=bool)
    has_marker[components[markers > 0]] = True
    missing = np.flatnonzero(present & ~has_marker)
    boxes = ndi.find_objects(components) if missing.size else []
    for new_id, component in enumerate(missing, start=len(peaks) + 1):
        box = boxes[component - 1]
        inside = np.where(components[box] == component, distance[box], -1.0)
        offset = np.unravel_index(np.argmax(inside), inside.shape)
        markers[tuple(s.start + o for s, o in zip(box, offset, strict=True))] = new_id

    pieces = watershed(-distance, markers, mask=foreground)
    labels = merge_shallow_pieces(pieces, distance, min_neck_depth=min_neck_depth)
    logger.debug(
        "Watershed split: %d components, %d markers (%d added), %d objects after merging",
        n_components,
        len(peaks) + missing.size,
        missing.size,
        int(labels.max()),
    )
    return labels


def merge_shallow_pieces(
    labels: np.ndarray, distance: np.ndarray, *, min_neck_depth: float
) -> np.ndarray:
    """Merge watershed pieces that are not separated by a deep enough neck.

    The pieces are visited as the distance map is lowered, like a flooding
    seen from above: when two groups of pieces meet at a saddle (the highest
    point of their common border), the group with the lower maximum is merged
    into the piece across the saddle if its maximum is less than
    `min_neck_depth` above the saddle; otherwise it stays a separate object.

    Args:
        labels: integer label image of the pieces, (Y, X) or (Z, Y, X),
            numbered 1..n.
        distance: the map the watershed ran on (higher inside), same shape.
        min_neck_depth: smallest dip, in the units of `distance`.

    Returns:
        int32 label image, objects numbered 1..m, m <= n.
    """
    n = int(labels.max())
    if n < 2 or min_neck_depth <= 0:
        return labels.astype(np.int32, copy=False)
    peak = np.zeros(n + 1)
    inside = labels > 0
    np.maximum.at(peak, labels[inside], distance[inside])
    low_ids, high_ids, saddles = _adjacent_pairs(labels, distance, n)

    # Two union-finds: `group` follows the flooding (which pieces are joined
    # above the current level, with the group's highest peak); `target` the
    # merges actually made.
    group = np.arange(n + 1)
    group_peak = peak.copy()
    target = np.arange(n + 1)

    def find(parent: np.ndarray, i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for k in np.argsort(-saddles, kind="stable"):
        a, b, saddle = int(low_ids[k]), int(high_ids[k]), saddles[k]
        group_a, group_b = find(group, a), find(group, b)
        if group_a == group_b:
            continue
        if group_peak[group_a] > group_peak[group_b]:
            a, b, group_a, group_b = b, a, group_b, group_a
        # group_a is the lower one; it holds a single object (any object in it
        # would have a peak at least min_neck_depth above this saddle).
        if group_peak[group_a] - saddle < min_neck_depth:
            target[find(target, a)] = find(target, b)
        group[group_a] = group_b

    roots = np.array([find(target, i) for i in range(n + 1)])
    _, new_ids = np.unique(roots, return_inverse=True)
    return new_ids.astype(np.int32)[labels]


def _adjacent_pairs(
    labels: np.ndarray, distance: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair of touching pieces, with the saddle height between them."""
    low_parts, high_parts, saddle_parts = [], [], []
    for axis in range(labels.ndim):
        before = [slice(None)] * labels.ndim
        after = [slice(None)] * labels.ndim
        before[axis], after[axis] = slice(None, -1), slice(1, None)
        a, b = labels[tuple(before)], labels[tuple(after)]
        touching = (a != b) & (a > 0) & (b > 0)
        a, b = a[touching], b[touching]
        low_parts.append(np.minimum(a, b))
        high_parts.append(np.maximum(a, b))
        saddle_parts.append(
            np.minimum(distance[tuple(before)][touching], distance[tuple(after)][touching])
        )
    low = np.concatenate(low_parts).astype(np.int64)
    high = np.concatenate(high_parts).astype(np.int64)
    saddle = np.concatenate(saddle_parts)
    # Keep the highest saddle of each pair.
    key = low * (n + 1) + high
    order = np.lexsort((saddle, key))
    key, saddle = key[order], saddle[order]
    last = np.ones(key.size, dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    key, saddle = key[last], saddle[last]
    return key // (n + 1), key % (n + 1), saddle
