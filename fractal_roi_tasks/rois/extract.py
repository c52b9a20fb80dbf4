"""Label image -> one ROI per object, with measurements.

One pass over the image traces the exact outline of every object in every
plane (`boundaries.trace_rings`); areas, centroids, bounding boxes, moments
and perimeters follow from those outlines (`measure.plane_moments`). Only
`shape="mask"` touches pixels again, each object in its own bounding box.
`shape="point"` needs no outlines: the same figures, bit for bit, come from
the boundary edges alone (`crack_moments`), at a fraction of the time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from skimage.measure import points_in_poly

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois.boundaries import Rings, trace_rings
from fractal_roi_tasks.rois.crack_moments import crack_moments
from fractal_roi_tasks.rois.gc_pause import gc_paused
from fractal_roi_tasks.rois.measure import PlaneMoments, ellipse_axes, plane_moments
from fractal_roi_tasks.rois.shapes import (
    SHAPE_KINDS,
    Ellipse,
    Mask,
    ObjectRoi,
    Point,
    Polygon,
    RoiSet,
    Shape,
)

logger = logging.getLogger(__name__)


def extract_rois(
    label_image: np.ndarray,
    *,
    shape: str = "polygon",
    min_area_px: int = 0,
    spacing: Sequence[float] | None = None,
    intensity_image: np.ndarray | None = None,
) -> RoiSet:
    """One ROI per object of a label image, with its measurements.

    Args:
        label_image: (Y, X) or (Z, Y, X) integer array; 0 is background, every
            other value one object (which may touch others, have holes or be
            in several pieces).
        shape: "polygon" (outline of each piece with its holes, per plane),
            "mask" (cropped binary mask), "ellipse" (same second moments, per
            plane) or "point" (centroid).
        min_area_px: objects with fewer pixels (voxels in 3D) get no ROI.
        spacing: pixel size per axis in micrometers, same order as the axes;
            default 1.
        intensity_image: optional array of the label image's shape; adds
            mean, min and max intensity per object.

    Returns:
        `RoiSet` with the ROIs in increasing label order and a features table:
        ``label``, ``area_px`` and ``area_um2`` (2D) or ``volume_um3`` (3D),
        ``perimeter_px``/``perimeter_um`` (2D only), ``centroid_{axis}_px``/
        ``_um``, ``bbox_{axis}_px``/``_um`` (first pixel) and
        ``bbox_len_{axis}_px``/``_um``. Micrometer positions put pixel i at
        [i, i + 1) * spacing, as ROI tables do, so a centroid in micrometers
        is (centroid_px + 0.5) * spacing.

    Example:
        >>> labels = np.zeros((6, 6), np.uint32)
        >>> labels[1:3, 1:4] = 5
        >>> rois = extract_rois(labels, spacing=(0.5, 0.5))
        >>> rois.features[["label", "area_px", "area_um2", "centroid_x_um"]].values.tolist()
        [[5.0, 6.0, 1.5, 1.25]]
        >>> rois.rois[0].shapes[0].exterior.tolist()
        [[0.5, 3.5], [2.5, 3.5], [2.5, 0.5], [0.5, 0.5]]
    """
    label_image = np.asarray(label_image)
    _check_inputs(label_image, shape, min_area_px, intensity_image)
    ndim = label_image.ndim
    spacing_arr = np.ones(ndim) if spacing is None else np.asarray(spacing, float)
    if spacing_arr.shape != (ndim,) or np.any(spacing_arr <= 0):
        raise InvalidInputError(
            f"spacing must give one positive pixel size per axis ({ndim} values), "
            f"got {spacing!r}."
        )

    planes = [label_image] if ndim == 2 else list(label_image)
    if shape == "point":  # no outlines needed: measure from the edges (same floats)
        traced = []
        measured = [crack_moments(plane) for plane in planes]
    else:
        traced = [trace_rings(plane) for plane in planes]
        measured = [plane_moments(rings) for rings in traced]
    geometry = combine_planes(measured, ndim)
    keep = geometry["area_px"] >= min_area_px
    n_too_small = int((~keep).sum())
    geometry = {key: value[keep] for key, value in geometry.items()}
    labels = geometry["label"]

    with gc_paused():  # tens of thousands of small objects, no cycles
        shapes_of = build_shapes(shape, label_image, labels, traced, measured, geometry)
        rois = tuple(
            ObjectRoi(label=lab, name=str(lab), shapes=tuple(shapes_of.get(lab, ())))
            for lab in labels.tolist()
        )
    features = features_table(geometry, spacing_arr, ndim)
    if intensity_image is not None:
        _add_intensity(features, label_image, np.asarray(intensity_image), labels)
    logger.debug("extracted %d %s ROIs (%d too small)", len(rois), shape, n_too_small)
    return RoiSet(
        kind=shape,
        rois=rois,
        features=features,
        image_shape=tuple(label_image.shape),
        spacing=tuple(float(s) for s in spacing_arr),
        n_too_small=n_too_small,
    )


def _check_inputs(label_image, shape, min_area_px, intensity_image) -> None:
    if label_image.ndim not in (2, 3):
        raise InvalidInputError(
            f"label_image must be 2D (Y, X) or 3D (Z, Y, X), got shape {label_image.shape}."
        )
    if not np.issubdtype(label_image.dtype, np.integer):
        raise InvalidInputError(
            f"label_image must hold integer labels, got dtype {label_image.dtype}."
        )
    if label_image.size and label_image.min() < 0:
        raise InvalidInputError("label_image has negative values; labels must be >= 0.")
    if shape not in SHAPE_KINDS:
        raise InvalidInputError(f"shape must be one of {SHAPE_KINDS}, got {shape!r}.")
    if min_area_px < 0:
        raise InvalidInputError(f"min_area_px must be >= 0, got {min_area_px}.")
    if intensity_image is not None and np.shape(intensity_image) != label_image.shape:
        raise InvalidInputError(
            f"intensity_image has shape {np.shape(intensity_image)}, "
            f"the label image {label_image.shape}."
        )


def combine_planes(measured: list[PlaneMoments], ndim: int) -> dict[str, np.ndarray]:
    """Per-object geometry over all planes, as columns in pixel units."""
    if ndim == 2:
        m = measured[0]
        return {
            "label": m.labels,
            "area_px": m.area,
            "perimeter_px": m.perimeter,
            "centroid": m.centroid,
            "bbox_start": m.bbox_start,
            "bbox_stop": m.bbox_stop,
        }
    present = [m.labels for m in measured if len(m.labels)]
    labels = np.unique(np.concatenate(present)) if present else np.zeros(0, np.int64)
    n = len(labels)
    area = np.zeros(n)
    weighted = np.zeros((n, 3))
    start = np.full((n, 3), np.iinfo(np.int64).max)
    stop = np.full((n, 3), np.iinfo(np.int64).min)
    for z, m in enumerate(measured):
        idx = np.searchsorted(labels, m.labels)
        area[idx] += m.area
        weighted[idx, 0] += z * m.area
        weighted[idx, 1:] += m.centroid * m.area[:, None]
        start[idx, 0] = np.minimum(start[idx, 0], z)
        stop[idx, 0] = np.maximum(stop[idx, 0], z + 1)
        start[idx, 1:] = np.minimum(start[idx, 1:], m.bbox_start)
        stop[idx, 1:] = np.maximum(stop[idx, 1:], m.bbox_stop)
    return {
        "label": labels,
        "area_px": area,
        "centroid": weighted / np.maximum(area, 1)[:, None],
        "bbox_start": start,
        "bbox_stop": stop,
    }


def build_shapes(kind, label_image, labels, traced, measured, geometry):
    """{label: [shapes]} for the kept labels."""
    wanted = set(labels.tolist())
    shapes: dict[int, list[Shape]] = {}
    z_of = (lambda z: None) if label_image.ndim == 2 else int
    if kind == "polygon":
        for z, rings in enumerate(traced):
            for lab, polys in polygons_by_label(rings, z_of(z), wanted):
                shapes.setdefault(lab, []).extend(polys)
    elif kind == "ellipse":
        for z, m in enumerate(measured):
            major, minor, angle = ellipse_axes(m.covariance)
            for i, lab in enumerate(m.labels.tolist()):
                if lab in wanted:
                    shapes.setdefault(lab, []).append(
                        Ellipse(
                            center=(float(m.centroid[i, 0]), float(m.centroid[i, 1])),
                            semi_axes=(float(major[i]), float(minor[i])),
                            angle=float(angle[i]),
                            z=z_of(z),
                        )
                    )
    elif kind == "point":
        for lab, c in zip(labels.tolist(), geometry["centroid"].tolist()):
            shapes[lab] = [Point(position=tuple(c))]
    else:  # mask: each object in its own bounding box
        for lab, lo, hi in zip(labels.tolist(), geometry["bbox_start"], geometry["bbox_stop"]):
            crop = label_image[tuple(slice(a, b) for a, b in zip(lo, hi))]
            shapes[lab] = [Mask(origin=tuple(int(a) for a in lo), mask=crop == lab)]
    return shapes


def polygons_by_label(rings: Rings, z, wanted):
    """Yield (label, [Polygon]) for every wanted label of one plane."""
    if len(rings) == 0:
        return
    ring_arrays = np.split(rings.points, rings.bounds[1:-1])
    areas = rings.signed_area.tolist()
    order = np.argsort(rings.labels, kind="stable")
    cuts = (np.flatnonzero(np.diff(rings.labels[order])) + 1).tolist()
    order = order.tolist()
    ring_labels = rings.labels.tolist()
    for lo, hi in zip([0, *cuts], [*cuts, len(order)]):
        group = order[lo:hi]
        lab = ring_labels[group[0]]
        if lab not in wanted:
            continue
        if len(group) == 1:
            yield lab, [Polygon(ring_arrays[group[0]], (), z)]
            continue
        outer = [r for r in group if areas[r] > 0]
        holes = [r for r in group if areas[r] < 0]
        if len(outer) == 1:
            yield lab, [Polygon(ring_arrays[outer[0]], tuple(ring_arrays[h] for h in holes), z)]
            continue
        # Several pieces: each hole goes to the smallest piece around it.
        holes_of: dict[int, list[np.ndarray]] = {r: [] for r in outer}
        for h in holes:
            probe = _pixel_left_of_first_edge(ring_arrays[h])
            around = [r for r in outer if points_in_poly(probe[None], ring_arrays[r])[0]]
            owner = min(around, key=lambda r: areas[r]) if around else outer[0]
            holes_of[owner].append(ring_arrays[h])
        yield lab, [Polygon(ring_arrays[r], tuple(holes_of[r]), z) for r in outer]


def _pixel_left_of_first_edge(ring: np.ndarray) -> np.ndarray:
    """Centre of the pixel left of the ring's first unit edge.

    Rings keep their object on the right, so for a hole ring this is a pixel
    of the hole, strictly inside it and on no outline.
    """
    step = np.sign(ring[1] - ring[0])
    left = np.array([-step[1], step[0]])
    return ring[0] + step / 2 + left / 2


def features_table(geometry, spacing, ndim) -> pd.DataFrame:
    axes = ("y", "x") if ndim == 2 else ("z", "y", "x")
    start = geometry["bbox_start"]
    length = geometry["bbox_stop"] - start
    centroid = geometry["centroid"]
    columns: dict[str, np.ndarray] = {"label": geometry["label"].astype(np.int64)}
    columns["area_px"] = geometry["area_px"]
    if ndim == 2:
        columns["area_um2"] = geometry["area_px"] * float(np.prod(spacing))
        columns["perimeter_px"] = geometry["perimeter_px"]
        # Perimeter in micrometers assumes square pixels (the usual case).
        columns["perimeter_um"] = geometry["perimeter_px"] * float(np.sqrt(np.prod(spacing)))
    else:
        columns["volume_um3"] = geometry["area_px"] * float(np.prod(spacing))
    for a, axis in enumerate(axes):
        columns[f"centroid_{axis}_px"] = centroid[:, a]
        columns[f"centroid_{axis}_um"] = (centroid[:, a] + 0.5) * spacing[a]
    for a, axis in enumerate(axes):
        columns[f"bbox_{axis}_px"] = start[:, a]
        columns[f"bbox_len_{axis}_px"] = length[:, a]
    for a, axis in enumerate(axes):
        columns[f"bbox_{axis}_um"] = start[:, a] * spacing[a]
        columns[f"bbox_len_{axis}_um"] = length[:, a] * spacing[a]
    return pd.DataFrame(columns)


def _add_intensity(features, label_image, intensity_image, labels) -> None:
    from scipy import ndimage as ndi

    index = labels.tolist()
    values = intensity_image.astype(np.float64, copy=False)
    features["mean_intensity"] = np.asarray(ndi.mean(values, label_image, index), float)
    features["min_intensity"] = np.asarray(ndi.minimum(values, label_image, index), float)
    features["max_intensity"] = np.asarray(ndi.maximum(values, label_image, index), float)
