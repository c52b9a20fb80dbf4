"""Skeleton branches of a label image too large to read whole: object by object.

`extract_branches` on each group of objects' box, read through a callback, so
memory follows a block plus the largest object, not the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois.shapes import ObjectRoi, Polyline, RoiSet
from fractal_roi_tasks.rois.skeleton import (
    BRANCH_COLUMNS,
    SkeletonRois,
    extract_branches,
    spacing_per_axis,
)

BoxReader = Callable[[int, slice, slice], np.ndarray]
"""read(z, rows, cols) -> the (rows, cols) window of plane z (z = 0 in 2D)."""


def extract_branches_by_object(
    read_block: BoxReader,
    image_shape: Sequence[int],
    labels: Sequence[int],
    bbox_start: np.ndarray,
    bbox_stop: np.ndarray,
    *,
    skeletonize: bool = False,
    spacing: Sequence[float] | None = None,
    block_shape: Sequence[int] = (1024, 1024),
) -> SkeletonRois:
    """`extract_branches` on a label image read box by box, never whole.

    Objects are grouped by the block (of `block_shape` rows and columns) that
    holds the first pixel of their bounding box (an object larger than a
    block is a group of its own); for each group the union of
    its boxes, grown by one pixel (clipped to the image), is read through
    `read_block`, every label outside the group is cleared, and
    `extract_branches` runs on it; coordinates are shifted back to the image.
    An object's branches only depend on its own pixels (touching labels are
    traced apart anyway), so the result equals `extract_branches` on the whole
    image restricted to `labels` (`SkeletonRois.keep_labels`), bit for bit.
    Memory grows with a block plus the largest object's box (times the
    planes it spans in 3D), not with the image.

    Args:
        read_block: returns the (Y, X) window `rows`, `cols` of plane `z`
            (always 0 in 2D) of the label image.
        image_shape: (Y, X) or (Z, Y, X).
        labels: the objects to trace, in increasing order.
        bbox_start, bbox_stop: (N, ndim) first pixel and end (exclusive) of
            each object's box, same order as `labels` (as `extract_rois` gives).
        skeletonize, spacing: as in `extract_branches`.
        block_shape: (rows, cols) of the blocks objects are grouped by.

    Returns:
        `SkeletonRois` over `labels`, with `roi_set.image_shape` the image's.

    Example:
        >>> image = np.zeros((9, 12), np.uint32)
        >>> image[2, 1:6] = 7
        >>> image[1:8, 9] = 9
        >>> read = lambda z, r, c: image[r, c]
        >>> found = extract_branches_by_object(read, image.shape, [7, 9],
        ...     np.array([[2, 1], [1, 9]]), np.array([[3, 6], [8, 10]]), block_shape=(4, 4))
        >>> [roi.name for roi in found.roi_set.rois], found.roi_set.rois[1].shapes[0].points[0].tolist()
        (['7-0', '9-0'], [1.0, 9.0])
    """
    image_shape = tuple(int(n) for n in image_shape)
    ndim = len(image_shape)
    if ndim not in (2, 3):
        raise InvalidInputError(f"image_shape must be (Y, X) or (Z, Y, X), got {image_shape}.")
    spacing_arr = spacing_per_axis(spacing, ndim)
    bbox_start, bbox_stop = np.asarray(bbox_start, np.int64), np.asarray(bbox_stop, np.int64)
    labels = np.asarray(labels)
    if bbox_start.shape != (len(labels), ndim) or bbox_stop.shape != bbox_start.shape:
        raise InvalidInputError(
            f"bbox_start and bbox_stop must be ({len(labels)}, {ndim}), "
            f"got {bbox_start.shape} and {bbox_stop.shape}."
        )
    by, bx = (max(1, int(b)) for b in block_shape)
    group = (bbox_start[:, -2] // by) * (image_shape[-1] // bx + 1) + bbox_start[:, -1] // bx
    # An object larger than a block goes alone: a group's box then stays
    # within about two blocks, or one object's own box.
    extent = bbox_stop[:, -2:] - bbox_start[:, -2:]
    large = np.flatnonzero((extent[:, 0] > by) | (extent[:, 1] > bx))
    group[large] = -1 - np.arange(len(large))
    parts: list[dict] = []
    objects = []
    n_isolated = 0
    for g in np.unique(group).tolist():
        members = np.flatnonzero(group == g)
        lo = np.maximum(bbox_start[members].min(axis=0) - 1, 0)
        hi = np.minimum(bbox_stop[members].max(axis=0) + 1, image_shape)
        rows, cols = slice(int(lo[-2]), int(hi[-2])), slice(int(lo[-1]), int(hi[-1]))
        if ndim == 2:
            box = np.asarray(read_block(0, rows, cols))
        else:
            box = np.stack([np.asarray(read_block(z, rows, cols)) for z in range(lo[0], hi[0])])
        box = np.where(np.isin(box, labels[members]), box, 0)
        found = extract_branches(box, skeletonize=skeletonize, spacing=spacing_arr)
        del box
        lines = [roi.shapes[0] for roi in found.roi_set.rois]
        offset = lo.astype(np.float64)
        points = [line.points + offset for line in lines]
        # skan's end-to-end distance from the endpoints' image coordinates
        # (times spacing), as on the whole image; a cycle's ends coincide.
        if points:
            src = np.array([p[0] for p in points]) * spacing_arr
            dst = np.array([p[0] if line.closed else p[-1] for p, line in zip(points, lines)])
            euclid = np.sqrt((dst * spacing_arr - src) ** 2 @ np.ones(ndim))
        else:
            euclid = np.zeros(0)
        table = found.roi_set.features
        parts.append({
            **{name: table[name].to_numpy() for name in BRANCH_COLUMNS},
            "euclidean_length_um": euclid,
            "points": points,
            "closed": [line.closed for line in lines],
        })
        objects.append(found.objects)
        n_isolated += found.n_isolated_pixels
    empty = extract_branches(np.zeros((1,) * ndim, np.uint8), spacing=spacing_arr)
    if parts:
        label_of = np.concatenate([p["label"] for p in parts])
        order = np.argsort(label_of, kind="stable")  # a label lies in one group
        columns = {
            name: np.concatenate([p[name] for p in parts])[order] for name in BRANCH_COLUMNS
        }
        table = pd.DataFrame(columns).astype(empty.roi_set.features.dtypes.to_dict())
        points = [pt for p in parts for pt in p["points"]]
        closed = [c for p in parts for c in p["closed"]]
        rois = tuple(
            ObjectRoi(
                label=lab, name=f"{lab}-{br}", shapes=(Polyline(points=points[i], closed=closed[i]),),
                branch=br,
            )
            for lab, br, i in zip(
                table["label"].tolist(), table["branch"].tolist(), order.tolist()
            )
        )
        stacked = pd.concat(objects, ignore_index=True)
        object_table = stacked.iloc[
            np.argsort(stacked["label"].to_numpy(), kind="stable")
        ].reset_index(drop=True)
    else:
        table, object_table, rois = empty.roi_set.features, empty.objects, ()
    roi_set = RoiSet(
        kind="skeleton",
        rois=rois,
        features=table,
        image_shape=image_shape,
        spacing=tuple(float(s) for s in spacing_arr),
    )
    return SkeletonRois(
        roi_set=roi_set,
        objects=object_table,
        n_isolated_pixels=n_isolated,
        n_labels_without_branches=int((object_table["n_branches"] == 0).sum()),
        empty=len(labels) == 0,
    )
