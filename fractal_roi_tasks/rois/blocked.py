"""`extract_rois` on a label image read block by block, never whole.

The crack edges of a plane are local: each lies between two neighbouring
pixels. A plane is cut into blocks; each block is read with a one-pixel halo
and produces exactly the edges it owns (the cracks above and left of its
pixels, plus the image's bottom and right borders for the last blocks), in
the order `boundaries._directed_edges` gives them on the whole plane, each
with its global key in that order. An object present in one block only is
traced there; the edges of every object present in several blocks are pooled
and, sorted by key, traced together at the end of the plane. Every object's
rings, perimeter and moments depend only on its own edges and their order
(see `boundaries.trace_edges`), so the result equals `extract_rois` on the
whole array bit for bit. 3D images go plane by plane, as `extract_rois` does.

Memory: a few blocks, plus the pooled edges of the objects crossing block
borders, each traced as soon as the last block it occurs in is done (so the
pool holds about one band of blocks' crossing objects, not the image's), plus
the output (O(objects); polygons O(their outline length)). Intensity sums are accumulated per block: equal to the whole-array
result whenever the sums are exact in float64 (integer channels below 2**53).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois import extract as _ex
from fractal_roi_tasks.rois.boundaries import Rings, trace_edges
from fractal_roi_tasks.rois.measure import PlaneMoments, plane_moments
from fractal_roi_tasks.rois.shapes import SHAPE_KINDS, Mask, ObjectRoi, RoiSet

logger = logging.getLogger(__name__)

BlockReader = Callable[[int, slice, slice], np.ndarray]
"""read(z, rows, cols) -> the (rows, cols) window of plane z (z = 0 in 2D)."""


def extract_rois_blocked(
    read_block: BlockReader,
    image_shape: Sequence[int],
    dtype,
    *,
    block_shape: Sequence[int] = (2048, 2048),
    shape: str = "polygon",
    min_area_px: int = 0,
    spacing: Sequence[float] | None = None,
    read_intensity: BlockReader | None = None,
) -> RoiSet:
    """`extract_rois` over a label image given by a block reader.

    Args:
        read_block: returns the (Y, X) integer window `rows`, `cols` of plane
            `z` (always 0 for a 2D image); windows are within the image.
        image_shape: (Y, X) or (Z, Y, X).
        dtype: the label image's dtype.
        block_shape: (rows, cols) of a block; memory grows with it.
        shape, min_area_px, spacing: as in `extract_rois`.
        read_intensity: like `read_block`, for the intensity image.

    Returns:
        The `RoiSet` `extract_rois` returns on the whole array.

    Example:
        >>> labels = np.zeros((6, 7), np.uint64)
        >>> labels[1:5, 1:6] = 2**40
        >>> labels[2:4, 2:4] = 0
        >>> read = lambda z, r, c: labels[r, c]
        >>> a = extract_rois_blocked(read, labels.shape, labels.dtype, block_shape=(2, 3))
        >>> b = _ex.extract_rois(labels)
        >>> a.features.equals(b.features)
        True
    """
    image_shape = tuple(int(n) for n in image_shape)
    ndim = len(image_shape)
    if ndim not in (2, 3):
        raise InvalidInputError(f"image_shape must be (Y, X) or (Z, Y, X), got {image_shape}.")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        raise InvalidInputError(f"label_image must hold integer labels, got dtype {dtype}.")
    if shape not in SHAPE_KINDS:
        raise InvalidInputError(f"shape must be one of {SHAPE_KINDS}, got {shape!r}.")
    if min_area_px < 0:
        raise InvalidInputError(f"min_area_px must be >= 0, got {min_area_px}.")
    spacing_arr = np.ones(ndim) if spacing is None else np.asarray(spacing, float)
    if spacing_arr.shape != (ndim,) or np.any(spacing_arr <= 0):
        raise InvalidInputError(
            f"spacing must give one positive pixel size per axis ({ndim} values), got {spacing!r}."
        )
    n_planes = 1 if ndim == 2 else image_shape[0]
    height, width = image_shape[-2:]
    blocks = _blocks(height, width, block_shape)

    traced: list[list[Rings]] = []
    measured: list[PlaneMoments] = []
    for z in range(n_planes):
        rings_z = _trace_plane(read_block, z, height, width, blocks, dtype)
        measured.append(_merge_moments([plane_moments(r) for r in rings_z], dtype))
        traced.append(rings_z if shape == "polygon" else [])

    geometry = _ex.combine_planes(measured, ndim)
    keep = geometry["area_px"] >= min_area_px
    n_too_small = int((~keep).sum())
    geometry = {key: value[keep] for key, value in geometry.items()}
    labels = geometry["label"]

    if shape == "polygon":
        wanted = set(labels.tolist())
        shapes_of: dict = {}
        for z, rings_z in enumerate(traced):
            for rings in rings_z:
                for lab, polys in _ex.polygons_by_label(rings, None if ndim == 2 else z, wanted):
                    shapes_of.setdefault(lab, []).extend(polys)
    elif shape == "mask":
        shapes_of = _masks(read_block, geometry, ndim, n_planes, blocks)
    else:
        shapes_of = _ex.build_shapes(shape, np.zeros((0,) * ndim), labels, None, measured, geometry)
    rois = tuple(
        ObjectRoi(label=lab, name=str(lab), shapes=tuple(shapes_of.get(lab, ())))
        for lab in labels.tolist()
    )
    features = _ex.features_table(geometry, spacing_arr, ndim)
    if read_intensity is not None:
        _intensity(features, read_block, read_intensity, labels, n_planes, blocks)
    logger.debug("extracted %d %s ROIs blockwise (%d blocks per plane)", len(rois), shape, len(blocks))
    return RoiSet(
        kind=shape,
        rois=rois,
        features=features,
        image_shape=image_shape,
        spacing=tuple(float(s) for s in spacing_arr),
        n_too_small=n_too_small,
    )


def _blocks(height, width, block_shape):
    by, bx = (max(1, int(b)) for b in block_shape)
    return [
        (a, min(a + by, height), c, min(c + bx, width))
        for a in range(0, height, by)
        for c in range(0, width, bx)
    ]


def _read_haloed(read_block, z, a, b, c, d, height, width, dtype):
    """Global rows [a-1, b+1) x cols [c-1, d+1), zero outside the image."""
    region = np.zeros((b - a + 2, d - c + 2), dtype)
    r0, r1, c0, c1 = max(a - 1, 0), min(b + 1, height), max(c - 1, 0), min(d + 1, width)
    region[r0 - a + 1 : r1 - a + 1, c0 - c + 1 : c1 - c + 1] = read_block(
        z, slice(r0, r1), slice(c0, c1)
    )
    return region


def _block_edges(region, a, b, c, d, height, width):
    """The edges block [a, b) x [c, d) owns, in padded global corner coordinates.

    Returns (labels, rows, cols, dirs, keys); keys order the edges as
    `_directed_edges` orders them on the whole plane.
    """
    n_keys = (height + 2) * (width + 2) + 1
    out = []
    nr, nc = b - a, d - c
    hk = nr + (b == height)
    up, down = region[:hk, 1 : nc + 1], region[1 : hk + 1, 1 : nc + 1]
    idx = np.flatnonzero(up != down)
    k, l = np.divmod(idx, nc)
    i, j = a + k, c + 1 + l
    flat = i * (width + 2) + j
    out.append((down.ravel()[idx], i + 1, j, 0, flat))
    out.append((up.ravel()[idx], i + 1, j + 1, 2, n_keys + flat))
    vl = nc + (d == width)
    left, right = region[1 : nr + 1, :vl], region[1 : nr + 1, 1 : vl + 1]
    idx = np.flatnonzero(left != right)
    k, l = np.divmod(idx, vl)
    i, j = a + 1 + k, c + l
    flat = i * (width + 1) + j
    out.append((right.ravel()[idx], i + 1, j + 1, 3, 2 * n_keys + flat))
    out.append((left.ravel()[idx], i, j + 1, 1, 3 * n_keys + flat))
    parts = [[], [], [], [], []]
    for values, rows, cols, direction, keys in out:
        keep = values != 0
        parts[0].append(values[keep])
        parts[1].append(rows[keep].astype(np.int64))
        parts[2].append(cols[keep].astype(np.int64))
        parts[3].append(np.full(int(keep.sum()), direction, np.int8))
        parts[4].append(keys[keep].astype(np.int64))
    return tuple(np.concatenate(p) for p in parts)


def _trace(labels, rows, cols, dirs, dtype) -> Rings:
    """Trace edges given in whole-plane order, with coordinates shifted small."""
    if labels.size == 0:
        return trace_edges(labels, rows, cols, dirs, 1, dtype=dtype)
    r0, c0 = int(rows.min()) - 1, int(cols.min()) - 1
    n_corner_cols = int(cols.max()) - c0 + 2
    return trace_edges(
        labels, rows - r0, cols - c0, dirs, n_corner_cols, offset=(r0, c0), dtype=dtype
    )


def _trace_plane(read_block, z, height, width, blocks, dtype) -> list[Rings]:
    """Rings of every object of plane z, as several `Rings` (each label in one)."""
    if len(blocks) == 1:
        a, b, c, d = blocks[0]
        region = _read_haloed(read_block, z, a, b, c, d, height, width, dtype)
        edges = _block_edges(region, a, b, c, d, height, width)
        return [_trace(*edges[:4], dtype)]
    # Which labels occur in more than one block (halo included), and the
    # last block each occurs in: its pooled edges are traced right after that
    # block, so the pool only holds the objects on the current band of blocks.
    present = []
    for a, b, c, d in blocks:
        region = _read_haloed(read_block, z, a, b, c, d, height, width, dtype)
        present.append(np.unique(region))
    block_of = np.concatenate([np.full(len(p), i) for i, p in enumerate(present)])
    values = np.concatenate(present)
    del present
    order = np.lexsort((block_of, values))
    values, block_of = values[order], block_of[order]
    first = np.r_[True, values[1:] != values[:-1]]
    last = np.r_[values[1:] != values[:-1], True]
    counts = np.diff(np.r_[np.flatnonzero(first), len(values)])
    shared_mask = (counts > 1) & (values[first] != 0)
    shared = values[first][shared_mask]
    last_block = block_of[last][shared_mask]
    del values, block_of, order

    result: list[Rings] = []
    pool: list[tuple[np.ndarray, ...]] = []
    for n, (a, b, c, d) in enumerate(blocks):
        region = _read_haloed(read_block, z, a, b, c, d, height, width, dtype)
        labels, rows, cols, dirs, keys = _block_edges(region, a, b, c, d, height, width)
        del region
        crossing = np.isin(labels, shared)
        local = ~crossing
        if local.any():
            result.append(_trace(labels[local], rows[local], cols[local], dirs[local], dtype))
        if crossing.any():
            pool.append((labels[crossing], rows[crossing], cols[crossing], dirs[crossing], keys[crossing]))
        done = shared[last_block == n]
        if pool and done.size:
            labels, rows, cols, dirs, keys = (np.concatenate(p) for p in zip(*pool))
            finished = np.isin(labels, done)
            if finished.any():
                sel = np.flatnonzero(finished)
                sel = sel[np.argsort(keys[sel], kind="stable")]
                result.append(_trace(labels[sel], rows[sel], cols[sel], dirs[sel], dtype))
            rest = ~finished
            pool = [(labels[rest], rows[rest], cols[rest], dirs[rest], keys[rest])] if rest.any() else []
    if pool:  # cannot happen (every shared label has a last block); kept for safety
        labels, rows, cols, dirs, keys = (np.concatenate(p) for p in zip(*pool))
        order = np.argsort(keys, kind="stable")
        result.append(_trace(labels[order], rows[order], cols[order], dirs[order], dtype))
    return result


def _merge_moments(parts: list[PlaneMoments], dtype) -> PlaneMoments:
    """One `PlaneMoments` from parts holding disjoint labels, sorted by label."""
    parts = [p for p in parts if len(p.labels)]
    if not parts:
        zeros = np.zeros((0, 2))
        return PlaneMoments(
            np.zeros(0, dtype), np.zeros(0), zeros, np.zeros((0, 2, 2)),
            zeros.astype(np.int64), zeros.astype(np.int64), np.zeros(0),
        )
    if len(parts) == 1:
        return parts[0]
    labels = np.concatenate([p.labels for p in parts])
    order = np.argsort(labels, kind="stable")
    fields = ("area", "centroid", "covariance", "bbox_start", "bbox_stop", "perimeter")
    merged = {f: np.concatenate([getattr(p, f) for p in parts])[order] for f in fields}
    return PlaneMoments(labels=labels[order], **merged)


def _masks(read_block, geometry, ndim, n_planes, blocks):
    """Each object's mask in its bounding box, filled block by block."""
    labels = geometry["label"]
    lo, hi = geometry["bbox_start"], geometry["bbox_stop"]
    masks = [np.zeros(tuple(h - s), bool) for s, h in zip(lo, hi)]
    for z in range(n_planes):
        in_z = np.ones(len(labels), bool) if ndim == 2 else (lo[:, 0] <= z) & (hi[:, 0] > z)
        for a, b, c, d in blocks:
            hit = np.flatnonzero(
                in_z & (lo[:, -2] < b) & (hi[:, -2] > a) & (lo[:, -1] < d) & (hi[:, -1] > c)
            )
            if not hit.size:
                continue
            block = read_block(z, slice(a, b), slice(c, d))
            for n in hit.tolist():
                r0, r1 = max(a, lo[n, -2]), min(b, hi[n, -2])
                c0, c1 = max(c, lo[n, -1]), min(d, hi[n, -1])
                part = block[r0 - a : r1 - a, c0 - c : c1 - c] == labels[n]
                target = masks[n] if ndim == 2 else masks[n][z - lo[n, 0]]
                target[r0 - lo[n, -2] : r1 - lo[n, -2], c0 - lo[n, -1] : c1 - lo[n, -1]] = part
    return {
        lab: [Mask(origin=tuple(int(v) for v in s), mask=m)]
        for lab, s, m in zip(labels.tolist(), lo, masks)
    }


def _intensity(features, read_block, read_intensity, labels, n_planes, blocks) -> None:
    """Mean, min and max intensity per object, accumulated block by block."""
    from scipy import ndimage as ndi

    n = len(labels)
    sums, counts = np.zeros(n), np.zeros(n)
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    for z in range(n_planes):
        for a, b, c, d in blocks:
            block = read_block(z, slice(a, b), slice(c, d))
            present = np.unique(block)
            present = present[np.isin(present, labels)]
            if not present.size:
                continue
            values = np.asarray(read_intensity(z, slice(a, b), slice(c, d))).astype(
                np.float64, copy=False
            )
            idx = np.searchsorted(labels, present)
            index = present.tolist()
            sums[idx] += np.asarray(ndi.sum(values, block, index), float)
            counts[idx] += np.asarray(ndi.sum(np.ones_like(values), block, index), float)
            low[idx] = np.minimum(low[idx], np.asarray(ndi.minimum(values, block, index), float))
            high[idx] = np.maximum(high[idx], np.asarray(ndi.maximum(values, block, index), float))
    with np.errstate(invalid="ignore", divide="ignore"):
        features["mean_intensity"] = sums / counts
    features["min_intensity"] = low
    features["max_intensity"] = high
