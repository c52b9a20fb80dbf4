"""The pixels of one sample field of view (FOV), plain or displaced by a known amount.

FOV ``index`` shows the cardiomyocyte nuclei (DAPI, and their labels) under
symmetry ``index % 8`` of the square, and the ``index``-th crop of the
retina (GFP). A stack of ``z_planes`` is built around the middle plane
``mid = z_planes // 2``: plane ``k`` is blurred by a gaussian of sigma
``1 + |k - mid|`` and its nuclei are eroded by ``|k - mid|`` pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data.artefacts import to_uint16
from fractal_roi_tasks.sample_data.constants import CHANNELS, FOV_SIZE_PX
from fractal_roi_tasks.sample_data.shifts import shifted_field, split_displacement
from fractal_roi_tasks.sample_data.sources import (
    cardiomyocyte_arrays,
    load_cardiomyocyte_nuclei,
    retina_green,
    source_view,
)

# Crops of the retina stay this close to its centre so that they lie inside
# the fundus (no black corners).
_RETINA_MAX_OFFSET_PX = 192


def dihedral(array: np.ndarray, index: int) -> np.ndarray:
    """Apply symmetry ``index % 8`` of the square to the last two axes."""
    index %= 8
    out = np.rot90(array, k=index % 4, axes=(-2, -1))
    if index >= 4:
        out = np.flip(out, axis=-1)
    return out


def _plane_distances(z_planes: int) -> list[int]:
    """Distance of each plane from the middle plane ``z_planes // 2``."""
    mid = z_planes // 2
    return [abs(k - mid) for k in range(z_planes)]


def _blur_stack(image: np.ndarray, z_planes: int) -> np.ndarray:
    """(Z, Y, X) uint16: plane k is ``image`` blurred by sigma 1 + |k - mid|.

    A single plane is returned unblurred.
    """
    if z_planes == 1:
        return image[np.newaxis].copy()
    from scipy import ndimage

    image = image.astype(np.float32)
    planes = []
    blurred_by_distance: dict[int, np.ndarray] = {}
    for distance in _plane_distances(z_planes):
        if distance not in blurred_by_distance:
            blurred = ndimage.gaussian_filter(image, sigma=1.0 + distance)
            blurred_by_distance[distance] = np.clip(np.rint(blurred), 0, 65535).astype(
                np.uint16
            )
        planes.append(blurred_by_distance[distance])
    return np.stack(planes)


def _erode_labels(label_image: np.ndarray, radius: int) -> np.ndarray:
    """Erode every object of a 2D label image by ``radius`` pixels, keeping ids.

    A pixel survives if the disk of that radius around it lies inside its own
    object; objects do not shrink from the edge of the image (the field is a
    cut through a larger sample, not an object boundary).
    """
    if radius == 0:
        return label_image.copy()
    from scipy import ndimage
    from skimage.morphology import disk

    footprint = disk(radius).astype(bool)
    low = ndimage.minimum_filter(label_image, footprint=footprint, mode="nearest")
    high = ndimage.maximum_filter(label_image, footprint=footprint, mode="nearest")
    return np.where(low == high, label_image, 0).astype(label_image.dtype)


@functools.lru_cache(maxsize=8)
def nuclei_stacks(z_planes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(Z, Y, X) DAPI uint16 and nuclei uint32 stacks of one FOV, and the id count.

    Untransformed and cached: the blur and the disk erosion commute with the
    symmetries of the square, so each FOV is a rotation/flip of these.
    """
    raw, nuclei = load_cardiomyocyte_nuclei()
    raw_stack = _blur_stack(raw, z_planes)
    by_distance = {d: _erode_labels(nuclei, d) for d in set(_plane_distances(z_planes))}
    label_stack = np.stack([by_distance[d] for d in _plane_distances(z_planes)])
    for array in (raw_stack, label_stack):
        array.flags.writeable = False
    return raw_stack, label_stack, int(nuclei.max())


@functools.lru_cache(maxsize=8)
def retina_stack(z_planes: int) -> np.ndarray:
    """(Z, Y, X) uint16 stack of the whole retina green channel, cached."""
    green = retina_green().astype(np.uint16) * np.uint16(257)
    stack = _blur_stack(green, z_planes)
    stack.flags.writeable = False
    return stack


def retina_crop_origin(index: int) -> tuple[int, int]:
    """Top-left (y, x) of the ``index``-th retina crop, distinct per index.

    The crop centres follow the R2 low-discrepancy sequence over a square of
    +-192 pixels around the centre of the retina, which keeps every crop
    inside the fundus.
    """
    g = 1.32471795724474602596  # the plastic number
    fractions = ((0.5 + index / g) % 1.0, (0.5 + index / g**2) % 1.0)
    height, width = source_view("retina").shape
    return tuple(
        int(round(size // 2 + (2.0 * f - 1.0) * _RETINA_MAX_OFFSET_PX))
        - FOV_SIZE_PX // 2
        for size, f in zip((height, width), fractions, strict=True)
    )


def _source_displacement(displacement: Sequence[float], index: int) -> tuple[float, float]:
    """A (dy, dx) displacement of FOV ``index`` in the frame of its untransformed source.

    Undoes `dihedral` ``index``: the flip first, then each quarter turn
    backwards (np.rot90 moves a displacement (dy, dx) to (-dx, dy)).
    """
    dy, dx = displacement
    index %= 8
    if index >= 4:
        dx = -dx
    for _ in range(index % 4):
        dy, dx = dx, -dy
    return dy, dx


def sample_fov(
    index: int,
    displacement: Sequence[float] = (0.0, 0.0),
    *,
    z_planes: int = 1,
    channel: str = "DAPI",
) -> np.ndarray:
    """The pixels of sample FOV ``index`` of one channel, displaced by a known amount.

    FOV ``index`` is the one `make_plate` writes as FOV ``n`` of well ``w``
    with ``index = w * n_fovs + n`` (DAPI: symmetry ``index % 8`` of the
    cardiomyocyte nuclei; GFP: the ``index``-th retina crop). Its content is
    moved by ``displacement`` within the field (see `shifted_field`: mirror
    extension beyond the real image, band-limited sub-pixel shift, z through
    the defocus law of the sample stacks). Zero displacement gives exactly
    the FOV of a `make_plate` plate.

    Args:
        index: global FOV index (>= 0).
        displacement: (dy, dx) or (dz, dy, dx) of the content, in pixels
            (z in planes), in the FOV's own axes.
        z_planes: number of planes; 1 gives a (Y, X) image.
        channel: ``"DAPI"`` or ``"GFP"``.

    Returns:
        A new uint16 array, (Y, X) or (Z, Y, X), 512 pixels in y and x.

    >>> fov = sample_fov(3, (0.25, -40.5))
    >>> fov.shape, fov.dtype
    ((512, 512), dtype('uint16'))
    """
    dz, dy, dx = split_displacement(displacement)
    names = [name for name, _ in CHANNELS]
    if channel not in names:
        raise InvalidInputError(f"channel must be one of {names}, got {channel!r}.")
    moved = (dz, dy, dx) if z_planes > 1 else (dy, dx)
    if channel == names[0]:
        raw, _ = cardiomyocyte_arrays()
        source_dy, source_dx = _source_displacement((dy, dx), index)
        moved = (dz, source_dy, source_dx) if z_planes > 1 else (source_dy, source_dx)
        values = shifted_field(raw.astype(np.uint16) * np.uint16(257), moved, z_planes=z_planes)
        return np.ascontiguousarray(dihedral(to_uint16(values), index))
    retina = retina_green().astype(np.uint16) * np.uint16(257)
    values = shifted_field(retina, moved, origin=retina_crop_origin(index), z_planes=z_planes)
    return to_uint16(values)


def sample_fov_labels(
    index: int, displacement: Sequence[float] = (0.0, 0.0), *, z_planes: int = 1
) -> np.ndarray:
    """The nuclei labels of sample FOV ``index``, moved with its DAPI content.

    Labels move by whole pixels and planes: the displacement is rounded
    (halves up), since a label cannot be resampled at a sub-pixel position.
    What enters the field from beyond the real 512 x 512 sample is
    unlabelled (0); a plane's nuclei are eroded by its rounded distance from
    the middle plane, as in the sample stacks. Ids are 1..168 (not offset
    per FOV).

    Args:
        index: global FOV index, see `sample_fov`.
        displacement: (dy, dx) or (dz, dy, dx) in pixels (z in planes).
        z_planes: number of planes; 1 gives a (Y, X) image.

    Returns:
        A new uint32 array, (Y, X) or (Z, Y, X).

    >>> labels = sample_fov_labels(0, (3.4, -2.6))
    >>> raw_labels = load_cardiomyocyte_nuclei()[1]
    >>> bool(np.array_equal(labels[3:, :-3], raw_labels[:-3, 3:]))
    True
    """
    dz, dy, dx = (math.floor(v + 0.5) for v in split_displacement(displacement))
    mid = z_planes // 2
    planes = []
    for k in range(z_planes):
        distance = abs(k - dz - mid) if z_planes > 1 else 0
        planes.append(dihedral(_erode_labels_cached(distance), index))
    stack = np.stack(planes)
    out = np.zeros_like(stack)
    height, width = stack.shape[-2:]
    out[
        :, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)
    ] = stack[:, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
    return out if z_planes > 1 else out[0]


@functools.lru_cache(maxsize=16)
def _erode_labels_cached(distance: int) -> np.ndarray:
    _, nuclei = cardiomyocyte_arrays()
    eroded = _erode_labels(nuclei, distance)
    eroded.flags.writeable = False
    return eroded
