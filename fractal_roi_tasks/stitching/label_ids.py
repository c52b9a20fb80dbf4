"""Label id arrays: validation, distinct ids, and when a lookup table beats sorting.

Ids are handled as sorted arrays (`numpy.searchsorted`) or, when they are
dense enough (`DENSE_SLACK`), small lookup tables: memory grows with the
number of objects, never with the size of the largest id.
"""

from __future__ import annotations

import logging

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)

DENSE_SLACK = 4096
"""A lookup table is used when an id range is at most 4 x the id count + this."""


def integer_labels(array, what: str) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise InvalidInputError(f"{what} must be an integer label array, got dtype {array.dtype}.")
    return array


def unsigned_ids(array: np.ndarray, what: str) -> np.ndarray:
    """Unsigned view of an integer label array; negative ids are an error."""
    if array.dtype == np.bool_:
        return array.view(np.uint8)
    if np.issubdtype(array.dtype, np.signedinteger):
        if array.size and array.min() < 0:
            raise InvalidInputError(
                f"{what} has negative ids (smallest {array.min()}); label ids must be >= 0."
            )
        return array.view(array.dtype.str.replace("i", "u"))
    return array


def present_ids(values: np.ndarray) -> np.ndarray:
    """Sorted distinct nonzero values of an unsigned array."""
    if values.size == 0:
        return np.zeros(0, values.dtype)
    top = int(values.max())
    if top <= 4 * values.size + DENSE_SLACK:
        seen = np.zeros(top + 1, bool)
        seen[values] = True
        seen[0] = False
        return np.flatnonzero(seen).astype(values.dtype)
    unique = np.unique(values)
    return unique[unique != 0]


def distinct_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True, return_counts=True)`` of a 1D unsigned
    (or non-negative int64) array, without sorting when the values are small."""
    top = int(values.max()) if values.size else 0
    if top > 4 * values.size + DENSE_SLACK:
        ids, index, counts = np.unique(values, return_inverse=True, return_counts=True)
        return ids, index.astype(np.int64), counts
    counts = np.bincount(values.astype(np.intp, copy=False), minlength=top + 1)
    ids = np.flatnonzero(counts)
    rank = np.zeros(top + 1, np.int64)
    rank[ids] = np.arange(len(ids))
    return ids.astype(values.dtype), rank[values], counts[ids]
