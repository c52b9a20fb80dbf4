"""Joining matched ids across tiles into objects, numbered 1..n (connected components).

The ids of all tiles are the nodes of a graph whose edges are the matches;
its connected components (`scipy.sparse.csgraph`) are the objects, however
many tiles an object spans.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.label_ids import DENSE_SLACK, integer_labels, present_ids, unsigned_ids

logger = logging.getLogger(__name__)

UNKNOWN_ID = np.uint32(np.iinfo(np.uint32).max)
"""What `LabelMerge` maps an id to internally when the tile has no such id."""


@dataclass(frozen=True, eq=False)
class LabelMerge:
    """Lookup from (tile, id in the tile) to the final id of the fused label image.

    Attributes:
        tile_ids: per tile, its sorted distinct nonzero ids (uint64).
        final_ids: per tile, the final id (uint32, 1..n) of each of them.
        n_objects: n, the number of distinct objects.
    """

    tile_ids: tuple[np.ndarray, ...]
    final_ids: tuple[np.ndarray, ...]
    n_objects: int

    def lookup(self, tile: int, ids: np.ndarray) -> np.ndarray:
        """Final ids of ids of tile ``tile``: uint32, same shape, 0 stays 0.

        Raises:
            InvalidInputError: (a ValueError) for an unknown tile or an id
                the tile did not have in `merge_labels`.

        >>> merge = merge_labels([[3, 4_000_000_000], [9]], {(0, 1): [[4_000_000_000, 9]]})
        >>> merge.lookup(1, np.array([0, 9])).tolist(), merge.n_objects
        ([0, 2], 2)
        """
        mapped = self.map_ids(tile, ids)
        if mapped.size and mapped.max() == UNKNOWN_ID:
            values = np.asarray(ids)[mapped == UNKNOWN_ID]
            raise InvalidInputError(
                f"Tile {tile} has ids {np.unique(values)[:5].tolist()} that were not among its ids "
                "given to merge_labels (compute them with owned_ids on the same mosaic)."
            )
        return mapped

    def map_ids(self, tile: int, ids: np.ndarray) -> np.ndarray:
        """Like `lookup`, with `UNKNOWN_ID` for unknown ids instead of an error."""
        if not 0 <= tile < len(self.tile_ids):
            raise InvalidInputError(
                f"tile {tile!r} does not exist: the merge has {len(self.tile_ids)} tiles."
            )
        values = unsigned_ids(
            integer_labels(ids, f"the ids of tile {tile}"), f"the ids of tile {tile}"
        )
        keys, finals = self.tile_ids[tile], self.final_ids[tile]
        if len(keys) == 0:
            return np.where(values == 0, np.uint32(0), UNKNOWN_ID)
        low, high = int(keys[0]), int(keys[-1])
        if high > np.iinfo(values.dtype).max:
            values = values.astype(np.uint64)
        dense = 4 * len(keys) + DENSE_SLACK
        if high < dense:
            # Table over [0, high]; index high + 1 says "unknown".
            table = np.full(high + 2, UNKNOWN_ID, np.uint32)
            table[0] = 0
            table[keys] = finals
            if high + 1 <= np.iinfo(values.dtype).max:
                values = np.minimum(values, values.dtype.type(high + 1))
            return table[values]
        if high - low < dense:
            # Table over [low, high]; everything else (0 included) wraps past it.
            table = np.full(high - low + 2, UNKNOWN_ID, np.uint32)
            table[keys - low] = finals
            index = values - values.dtype.type(low)
            np.minimum(index, index.dtype.type(high - low + 1), out=index)
            mapped = table[index]
            mapped[values == 0] = 0
            return mapped
        wide = values.astype(np.uint64, copy=False)
        where = np.minimum(np.searchsorted(keys, wide), len(keys) - 1)
        mapped = np.where(keys[where] == wide, finals[where], UNKNOWN_ID)
        mapped[wide == 0] = 0
        return mapped


def _match_items(matches) -> Iterable[tuple[tuple[int, int], np.ndarray]]:
    if isinstance(matches, Mapping):
        return matches.items()
    return matches


def merge_labels(
    tile_ids: Sequence[np.ndarray],
    matches: Mapping[tuple[int, int], np.ndarray] | Iterable[tuple[tuple[int, int], np.ndarray]],
) -> LabelMerge:
    """Join the ids that are one object across tiles and number the objects 1..n.

    Matches are joined transitively (connected components of the graph of
    matches), whatever the number of tiles an object spans. Final ids follow
    the first appearance of each object in the order (tile index, id). Matches
    involving an id that is not among its tile's ``tile_ids`` (not visible in
    the fused image) are ignored.

    Args:
        tile_ids: per tile, the ids the fused image shows
            (`owned_ids`); any integer values >= 0, repeated or not across
            tiles, as large as uint64 allows; 0 is ignored.
        matches: per pair of tiles ``(t1, t2)``, a (K, 2) array of
            ``(id in t1, id in t2)`` pairs (`overlap_matches`); a mapping or
            an iterable of ``((t1, t2), pairs)`` items.

    Returns:
        A `LabelMerge`.

    Raises:
        InvalidInputError: (a ValueError) for an unknown tile, negative or
            non-integer ids, pairs not of shape (K, 2), or more objects than
            uint32 can number.

    >>> merge = merge_labels([[1, 2], [1], [1]], {(0, 1): [[2, 1]], (1, 2): [[1, 1]]})
    >>> merge.n_objects, [m.tolist() for m in merge.final_ids]
    (2, [[1, 2], [2], [2]])
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = []
    for tile, ids in enumerate(tile_ids):
        values = unsigned_ids(integer_labels(ids, f"tile_ids[{tile}]"), f"tile_ids[{tile}]")
        keys.append(present_ids(values.ravel()).astype(np.uint64))
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in keys])]).astype(np.int64)
    n_nodes = int(offsets[-1])

    sources, targets, ignored = [], [], 0
    for pair, found in _match_items(matches):
        try:
            t1, t2 = (int(t) for t in pair)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(
                f"matches keys must be (tile, tile) pairs, got {pair!r}."
            ) from err
        for t in (t1, t2):
            if not 0 <= t < len(keys):
                raise InvalidInputError(
                    f"matches name tile {t}, but tile_ids has {len(keys)} tiles."
                )
        found = np.asarray(found)
        if found.size == 0:
            continue
        if found.ndim != 2 or found.shape[1] != 2:
            raise InvalidInputError(
                f"matches[{pair!r}] must be (K, 2) id pairs, got shape {found.shape}."
            )
        what = f"matches[{pair!r}]"
        found = unsigned_ids(integer_labels(found, what), what).astype(np.uint64)
        nodes = []
        for t, column in ((t1, found[:, 0]), (t2, found[:, 1])):
            where = np.minimum(np.searchsorted(keys[t], column), max(len(keys[t]) - 1, 0))
            known = keys[t][where] == column if len(keys[t]) else np.zeros(len(column), bool)
            nodes.append((offsets[t] + where, known))
        known = nodes[0][1] & nodes[1][1]
        ignored += int(np.count_nonzero(~known))
        sources.append(nodes[0][0][known])
        targets.append(nodes[1][0][known])

    if n_nodes == 0:
        final = np.zeros(0, np.uint32)
        n_objects = 0
    else:
        if sources:
            rows, cols = np.concatenate(sources), np.concatenate(targets)
        else:
            rows = cols = np.zeros(0, np.int64)
        graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n_nodes, n_nodes))
        n_objects, component = connected_components(graph, directed=False)
        # Number components by their first node (nodes are in (tile, id) order).
        first_node = np.full(n_objects, n_nodes, np.int64)
        np.minimum.at(first_node, component, np.arange(n_nodes))
        rank = np.empty(n_objects, np.int64)
        rank[np.argsort(first_node, kind="stable")] = np.arange(n_objects)
        if n_objects >= int(UNKNOWN_ID):
            raise InvalidInputError(f"{n_objects} objects do not fit in uint32 label ids.")
        final = (rank[component] + 1).astype(np.uint32)
    logger.debug(
        "merged %d ids of %d tiles into %d objects (%d matched pairs ignored: ids not shown)",
        n_nodes,
        len(keys),
        n_objects,
        ignored,
    )
    for k in keys:
        k.flags.writeable = False
    finals = tuple(final[offsets[t] : offsets[t + 1]] for t in range(len(keys)))
    final.flags.writeable = False
    return LabelMerge(tile_ids=tuple(keys), final_ids=finals, n_objects=int(n_objects))
