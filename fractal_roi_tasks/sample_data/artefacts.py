"""What a microscope adds to a sample: camera noise, saturated debris, fields without sample."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fractal_roi_tasks.sample_data.constants import FOV_SIZE_PX


def to_uint16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 65535).astype(np.uint16)


def add_noise(
    image: np.ndarray,
    *,
    read_noise: float = 0.0,
    photons: float | None = None,
    seed: int | Sequence[int] = 0,
) -> np.ndarray:
    """A uint16 copy of ``image`` with camera-like noise.

    Args:
        image: uint16 (or real, in uint16 grey values) array; not modified.
        read_noise: standard deviation of gaussian noise, grey values.
        photons: if given, Poisson (shot) noise with this many photons
            expected at full scale (65535): ``photons=200`` is a dim image.
        seed: seed of numpy's generator (an int or a sequence of ints).

    Returns:
        A new uint16 array of the same shape.

    >>> noisy = add_noise(np.full((64, 64), 1000, np.uint16), read_noise=10.0, seed=1)
    >>> bool(980 < noisy.mean() < 1020 and 8 < noisy.std() < 12)
    True
    """
    rng = np.random.default_rng(seed)
    values = np.asarray(image, dtype=np.float64)
    if photons is not None:
        scale = float(photons) / 65535.0
        values = rng.poisson(np.clip(values, 0, None) * scale) / scale
    if read_noise > 0:
        values = values + rng.normal(0.0, float(read_noise), values.shape)
    return to_uint16(values)


def add_saturated_blob(
    image: np.ndarray,
    *,
    centre: Sequence[float] = (0.35 * FOV_SIZE_PX, 0.65 * FOV_SIZE_PX),
    radius_px: float = 30.0,
) -> np.ndarray:
    """A uint16 copy of ``image`` with a bright artefact saturated at 65535.

    The artefact is a gaussian blob four times brighter than the full scale,
    added to the image, so its core (a disk of ``radius_px``, a little more
    where the image is bright) sits at 65535 and its rim fades over about
    ``radius_px / 1.7`` pixels: a fluorescent speck of debris in one cycle.
    A stack gets it in every plane.

    Args:
        image: (Y, X) or (Z, Y, X) uint16 array; not modified.
        centre: (y, x) of the blob in pixels.
        radius_px: radius of the saturated core in pixels.

    Returns:
        A new uint16 array.

    >>> blob = add_saturated_blob(np.zeros((128, 128), np.uint16), centre=(64, 64), radius_px=10)
    >>> int(blob[64, 64]), int(blob[64, 73]), int(blob[0, 0])
    (65535, 65535, 0)
    """
    sigma = radius_px / math.sqrt(2.0 * math.log(4.0))
    yy, xx = np.ogrid[: image.shape[-2], : image.shape[-1]]
    blob = 4.0 * 65535.0 * np.exp(
        -((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2.0 * sigma**2)
    )
    return to_uint16(np.asarray(image, dtype=np.float64) + blob)


def background_fov(
    shape: Sequence[int], *, level: float = 1000.0, read_noise: float = 300.0, seed: int | Sequence[int] = 0
) -> np.ndarray:
    """A field with no sample in it: a constant camera offset plus gaussian noise (uint16).

    >>> empty = background_fov((64, 64), seed=3)
    >>> empty.dtype, bool(900 < empty.mean() < 1100)
    (dtype('uint16'), True)
    """
    return add_noise(np.full(tuple(shape), level), read_noise=read_noise, seed=seed)
