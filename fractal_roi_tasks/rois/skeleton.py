"""Skeleton image -> one polyline ROI per branch, with lengths (skan).

skan (`skan.Skeleton`, `skan.summarize`) turns a thin skeleton into a pixel
graph and cuts it into branches between tips and junctions; each branch
becomes one `ObjectRoi` with one `Polyline` through its pixel centres, so the
topology survives junctions. What this module adds around skan:

- label identity: a skeleton's label is the label value under its pixels.
  Skeletons of different labels that touch would be merged by skan (it only
  sees a mask), so touching labels are split over a few passes: a greedy
  colouring of the "touches" graph puts labels that touch into different
  passes, and every pass holds many labels at once (one pass when nothing
  touches, a handful for a dense segmentation; `rois.label_passes`);
- single pixels: skan raises on an image with no edge at all and keeps no
  branch for a lone pixel; they are counted here and never reach skan;
- optional skeletonization per object (`skimage.morphology.skeletonize`), with
  the same passes, so touching objects are thinned separately and keep their
  ids.

skan is imported inside the function that needs it: it loads numba, and its
JIT compilation costs about 2 s at the first call in every process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois.label_passes import LabelPixels
from fractal_roi_tasks.rois.shapes import ObjectRoi, Polyline, RoiSet

logger = logging.getLogger(__name__)

# skan's branch-type codes (`summarize(...)["branch_type"]`) are indices here:
# 0 endpoint-to-endpoint, 1 junction-to-endpoint, 2 junction-to-junction,
# 3 cycle. skan's docs say "isolated cycle", but its code gives 3 to every path
# that ends where it starts: a ring, and also a loop leaving and re-entering
# one junction (a lasso is one "cycle" and one "tip-junction" branch).
BRANCH_TYPES: tuple[str, ...] = ("tip-tip", "tip-junction", "junction-junction", "cycle")

BRANCH_COLUMNS: tuple[str, ...] = (
    "label",
    "branch",
    "branch_type",
    "branch_type_code",
    "length_px",
    "length_um",
    "euclidean_length_um",
    "n_points",
)
OBJECT_COLUMNS: tuple[str, ...] = (
    "label",
    "n_branches",
    "n_junctions",
    "n_tips",
    "n_cycles",
    "n_pieces",
    "n_skeleton_px",
    "n_isolated_px",
    "total_length_px",
    "total_length_um",
    "longest_branch_um",
)


@dataclass(frozen=True, eq=False)
class SkeletonRois:
    """What `extract_branches` found in one skeleton (or label) image.

    Attributes:
        roi_set: kind "skeleton"; one `ObjectRoi` per branch, ordered by label
            and then by branch index, each with one `Polyline` through pixel
            centres ((y, x) or (z, y, x), integer values); ``closed=True`` for
            a cycle. ``roi_set.features`` is the branches table, one row per
            ROI in the same order: ``label``, ``branch`` (index within its
            label, from 0), ``branch_type`` (one of `BRANCH_TYPES`),
            ``branch_type_code`` (skan's code, the index in `BRANCH_TYPES`;
            "cycle" is any path that ends where it starts),
            ``length_px`` and ``length_um`` (along the path; for a cycle
            including the step that closes it), ``euclidean_length_um`` (end
            to end; 0 for a cycle) and ``n_points`` (vertices of the polyline).
        objects: one row per label of the input (also those left without any
            branch), in increasing label order: ``label``, ``n_branches``,
            ``n_junctions`` (skeleton pixels with 3 or more neighbours, after
            skan merges clusters of junction pixels), ``n_tips`` (pixels with
            one neighbour), ``n_cycles`` (branches of type "cycle": rings, and
            loops that leave and re-enter one junction),
            ``n_pieces`` (connected pieces of the skeleton, single pixels
            included), ``n_skeleton_px``, ``n_isolated_px``,
            ``total_length_px``/``total_length_um`` (sum over the branches)
            and ``longest_branch_um``.
        n_isolated_pixels: skeleton pixels with no neighbour of their own
            label: they have no branch, so no ROI; counted here and per label
            in ``objects``.
        n_labels_without_branches: labels with no ROI at all (their skeleton
            is only single pixels, or skeletonization erased them).
        empty: True if the input had no foreground pixel.
    """

    roi_set: RoiSet
    objects: pd.DataFrame
    n_isolated_pixels: int = 0
    n_labels_without_branches: int = 0
    empty: bool = False

    def keep_labels(self, labels: set[int]) -> "SkeletonRois":
        """Only the branches and summaries of `labels` (e.g. objects big enough)."""
        keep = np.array([roi.label in labels for roi in self.roi_set.rois], dtype=bool)
        rois = tuple(roi for roi, k in zip(self.roi_set.rois, keep) if k)
        features = self.roi_set.features[keep].reset_index(drop=True)
        objects = self.objects[self.objects["label"].isin(labels)].reset_index(drop=True)
        return replace(
            self, roi_set=replace(self.roi_set, rois=rois, features=features), objects=objects
        )


def extract_branches(
    label_image: np.ndarray,
    *,
    skeletonize: bool = False,
    spacing: Sequence[float] | None = None,
) -> SkeletonRois:
    """One polyline ROI per skeleton branch, with lengths, via skan.

    Args:
        label_image: (Y, X) or (Z, Y, X) integer label image (0 is background)
            or boolean mask, whose connected components (8-connected in 2D,
            26-connected in 3D) become labels 1..n in raster order. Without
            `skeletonize` it should already be a thin skeleton: a thick
            object does not fail, but comes out as many short branches
            through its pixels.
        skeletonize: thin every object first with
            `skimage.morphology.skeletonize` (Zhang in 2D, Lee in 3D), each
            object on its own, so touching objects keep their ids.
        spacing: pixel size per axis in micrometers, same order as the axes;
            default 1.

    Returns:
        `SkeletonRois`: the branch ROIs with their table, a per-label table,
        and what was skipped (single pixels, labels without branches).
        Coordinates are pixels with pixel centres on integers; lengths
        follow skan: the sum of the steps between neighbouring pixel
        centres, each step scaled by `spacing`.

    Raises:
        InvalidInputError: not 2D or 3D, not integer or boolean, negative
            labels, or a `spacing` that does not give one positive size per
            axis.

    Example:
        >>> cross = np.zeros((7, 7), np.uint16)
        >>> cross[3, 1:6] = 4
        >>> cross[1:6, 3] = 4
        >>> found = extract_branches(cross, spacing=(0.5, 0.5))
        >>> [roi.name for roi in found.roi_set.rois]
        ['4-0', '4-1', '4-2', '4-3']
        >>> found.roi_set.rois[0].shapes[0].points.tolist()
        [[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]]
        >>> found.roi_set.features[["branch_type", "length_px", "length_um"]].values[0].tolist()
        ['tip-junction', 2.0, 1.0]
        >>> found.objects[["label", "n_branches", "n_junctions", "n_tips"]].values.tolist()
        [[4, 4, 1, 4]]
        >>> float(found.objects["total_length_um"].iloc[0])
        4.0
    """
    image = np.asarray(label_image)
    _check_image(image)
    ndim = image.ndim
    spacing_arr = spacing_per_axis(spacing, ndim)

    if image.dtype == bool:
        labels, _ = ndi.label(image, structure=np.ones((3,) * ndim, bool))
    else:
        labels = image
    if skeletonize:
        objects_px = LabelPixels.of(labels)
        labels = _skeletonize_per_object(labels, objects_px)
    pixels = LabelPixels.of(labels)
    object_labels = np.unique((objects_px if skeletonize else pixels).values).astype(np.int64)
    isolated = pixels.same_neighbours == 0
    n_isolated = int(isolated.sum())
    branches, nodes = [], []
    colour = pixels.colours()
    for c in range(int(colour.max(initial=-1)) + 1):
        in_pass = (colour == c) & ~isolated
        if in_pass.any():
            b, n = _trace(pixels, in_pass, labels, spacing_arr)
            branches.append(b)
            nodes.append(n)

    table, polylines, pieces = _branch_table(branches)
    rois = tuple(
        ObjectRoi(label=lab, name=f"{lab}-{br}", shapes=(line,), branch=br)
        for lab, br, line in zip(table["label"].tolist(), table["branch"].tolist(), polylines)
    )
    objects = _objects_table(object_labels, table, pieces, nodes, pixels.values, isolated)
    n_without = int((objects["n_branches"] == 0).sum())
    logger.debug(
        "%d branches in %d labels; %d isolated pixels, %d labels without branches",
        len(rois),
        len(object_labels),
        n_isolated,
        n_without,
    )
    roi_set = RoiSet(
        kind="skeleton",
        rois=rois,
        features=table,
        image_shape=tuple(image.shape),
        spacing=tuple(float(s) for s in spacing_arr),
    )
    return SkeletonRois(
        roi_set=roi_set,
        objects=objects,
        n_isolated_pixels=n_isolated,
        n_labels_without_branches=n_without,
        empty=object_labels.size == 0,
    )


def spacing_per_axis(spacing: Sequence[float] | None, ndim: int) -> np.ndarray:
    """`spacing` as one positive float64 pixel size per axis (1 when None).

    Raises:
        InvalidInputError: not `ndim` values, or a value that is not positive.
    """
    spacing_arr = np.ones(ndim) if spacing is None else np.asarray(spacing, float)
    if spacing_arr.shape != (ndim,) or not np.all(spacing_arr > 0):
        raise InvalidInputError(
            f"spacing must give one positive pixel size per axis ({ndim} values), got {spacing!r}."
        )
    return spacing_arr


def _check_image(image: np.ndarray) -> None:
    if image.ndim not in (2, 3):
        raise InvalidInputError(
            f"label_image must be 2D (Y, X) or 3D (Z, Y, X), got shape {image.shape}."
        )
    if image.dtype != bool and not np.issubdtype(image.dtype, np.integer):
        raise InvalidInputError(
            f"label_image must hold integer labels or be a boolean mask, got dtype {image.dtype}."
        )
    if image.dtype != bool and image.size and image.min() < 0:
        raise InvalidInputError("label_image has negative values; labels must be >= 0.")


def _skeletonize_per_object(labels: np.ndarray, pixels: LabelPixels) -> np.ndarray:
    """The label image with every object thinned on its own.

    Objects of one pass do not touch (not even diagonally), and thinning only
    looks at each pixel's 3x3(x3) neighbourhood, so thinning them together is
    thinning them one by one.
    """
    from skimage.morphology import skeletonize

    colour = pixels.colours()
    thin = np.zeros(labels.shape, bool)
    for c in range(int(colour.max(initial=-1)) + 1):
        mask = np.zeros(labels.shape, bool)
        mask[pixels.coordinates(colour == c)] = True
        thin |= skeletonize(mask)
    return np.where(thin, labels, 0)


def _trace(pixels: LabelPixels, selected: np.ndarray, labels: np.ndarray, spacing: np.ndarray):
    """skan over the selected pixels (labels that do not touch each other)."""
    from skan import Skeleton, summarize

    mask = np.zeros(pixels.shape, bool)
    mask[pixels.coordinates(selected)] = True
    skel = Skeleton(mask, spacing=spacing, keep_images=False)
    summary = summarize(skel, separator="_")
    coords = np.asarray(skel.coordinates, np.int64)
    node_label = labels[tuple(coords.T)].astype(np.int64)
    indptr = np.asarray(skel.paths.indptr, np.int64)
    path_coords = coords[np.asarray(skel.paths.indices, np.int64)].astype(np.float64)
    code = summary["branch_type"].to_numpy(np.int64)

    # Length in pixels: the same sum of steps skan makes, without spacing.
    steps = np.sqrt((np.diff(path_coords, axis=0) ** 2).sum(axis=1))
    path_of_step = np.repeat(np.arange(len(code)), np.diff(indptr))[:-1]
    inside = np.ones(len(steps), bool)
    inside[indptr[1:-1] - 1] = False  # the step from one path to the next
    length_px = np.bincount(path_of_step[inside], steps[inside], minlength=len(code))

    branches = {
        "label": node_label[summary["node_id_src"].to_numpy()],
        "code": code,
        "length_px": length_px,
        "length_um": summary["branch_distance"].to_numpy(float),
        "euclidean_um": summary["euclidean_distance"].to_numpy(float),
        "piece": summary["skeleton_id"].to_numpy(np.int64),
        "points": np.split(path_coords, indptr[1:-1]),
    }
    nodes = {"label": node_label, "degree": np.asarray(skel.degrees)}
    return branches, nodes


def _branch_table(branches: list[dict]) -> tuple[pd.DataFrame, list[Polyline], np.ndarray]:
    """The branches of all passes in ROI order, their polylines, and the
    (label, pass, skan skeleton id) of the piece each belongs to."""
    if not branches:
        empty = {name: np.zeros(0, np.int64) for name in BRANCH_COLUMNS}
        empty["branch_type"] = np.zeros(0, object)
        for name in ("length_px", "length_um", "euclidean_length_um"):
            empty[name] = np.zeros(0)
        return pd.DataFrame(empty), [], np.zeros((0, 3), np.int64)
    # Each label lives in one pass, so a stable sort keeps skan's path order
    # within a label.
    label = np.concatenate([b["label"] for b in branches])
    order = np.argsort(label, kind="stable")
    label = label[order]
    points = [p for b in branches for p in b["points"]]
    points = [points[i] for i in order.tolist()]
    code = np.concatenate([b["code"] for b in branches])[order]
    cycle = code == 3
    # skan repeats a cycle's first pixel at its end; a closed Polyline does not.
    polylines = [
        Polyline(points=p[:-1] if c else p, closed=bool(c)) for p, c in zip(points, cycle.tolist())
    ]
    table = pd.DataFrame(
        {
            "label": label,
            "branch": np.arange(len(label)) - np.searchsorted(label, label),
            "branch_type": np.asarray(BRANCH_TYPES, object)[code],
            "branch_type_code": code,
            "length_px": np.concatenate([b["length_px"] for b in branches])[order],
            "length_um": np.concatenate([b["length_um"] for b in branches])[order],
            "euclidean_length_um": np.concatenate([b["euclidean_um"] for b in branches])[order],
            "n_points": np.array([len(p.points) for p in polylines], np.int64),
        }
    )
    piece = np.concatenate([b["piece"] for b in branches])[order]
    pass_of = np.concatenate([np.full(len(b["label"]), i) for i, b in enumerate(branches)])[order]
    return table, polylines, np.stack([label, pass_of, piece], axis=1)


def _objects_table(object_labels, table, pieces, nodes, pixel_labels, isolated) -> pd.DataFrame:
    """One row per label; `pixel_labels` is the label of every skeleton pixel."""
    n = len(object_labels)

    def per_label(values, weights=None):
        index = np.searchsorted(object_labels, values)
        counts = np.bincount(index, weights, minlength=n)
        return counts.astype(np.int64 if weights is None else np.float64)

    branch_label = table["label"].to_numpy()
    pieces = np.unique(pieces, axis=0)
    node_label = np.concatenate([x["label"] for x in nodes]) if nodes else np.zeros(0, int)
    degree = np.concatenate([x["degree"] for x in nodes]) if nodes else np.zeros(0, int)
    length_um = table["length_um"].to_numpy()
    longest = np.zeros(n)
    if len(table):
        np.maximum.at(longest, np.searchsorted(object_labels, branch_label), length_um)
    n_isolated = per_label(pixel_labels[isolated])
    return pd.DataFrame(
        {
            "label": object_labels,
            "n_branches": per_label(branch_label),
            "n_junctions": per_label(node_label[degree >= 3]),
            "n_tips": per_label(node_label[degree == 1]),
            "n_cycles": per_label(branch_label[table["branch_type_code"].to_numpy() == 3]),
            "n_pieces": per_label(pieces[:, 0]) + n_isolated,
            "n_skeleton_px": per_label(pixel_labels),
            "n_isolated_px": n_isolated,
            "total_length_px": per_label(branch_label, table["length_px"].to_numpy()),
            "total_length_um": per_label(branch_label, length_um),
            "longest_branch_um": longest,
        }
    )
