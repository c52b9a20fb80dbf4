"""The bundled real images every sample is made of, loaded without a download.

ngio's cardiomyocyte sample (a 512 x 512 nuclei stain with its 168 real
nuclei labels) and scikit-image's ``retina``, ``cell``, ``coins`` and
``hubble_deep_field``. Loaders are cached and their arrays read-only; the
public loaders hand out copies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

SOURCE_NAMES: tuple[str, ...] = (
    "cardiomyocyte",
    "retina",
    "cell",
    "coins",
    "hubble_deep_field",
)
"""Names accepted by `load_source`."""


@functools.cache
def cardiomyocyte_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The cardiomyocyte raw (uint8) and nuclei (uint32) images, read-only."""
    import ngio
    from PIL import Image as PILImage  # ngio and scikit-image both depend on it

    info = ngio.get_sample_info("Cardiomyocyte")
    nuclei_info = next(label for label in info.labels if label.name == "nuclei")
    with PILImage.open(info.img_path) as handle:
        raw = np.asarray(handle, dtype=np.uint8)
    with PILImage.open(nuclei_info.label_path) as handle:
        nuclei = np.asarray(handle).astype(np.uint32)
    raw.flags.writeable = False
    nuclei.flags.writeable = False
    return raw, nuclei


def _skimage_gray(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def retina_green() -> np.ndarray:
    import skimage.data

    # The vessels have their best contrast in the green channel.
    return skimage.data.retina()[..., 1]


def _hubble_luminance() -> np.ndarray:
    import skimage.color
    import skimage.data

    return skimage.color.rgb2gray(skimage.data.hubble_deep_field())


_SOURCE_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "cardiomyocyte": lambda: cardiomyocyte_arrays()[0],
    "retina": retina_green,
    "cell": _skimage_gray("cell"),
    "coins": _skimage_gray("coins"),
    "hubble_deep_field": _hubble_luminance,
}


@functools.cache
def source_view(name: str) -> np.ndarray:
    """`load_source` without the copy: a read-only cached array."""
    if name not in _SOURCE_LOADERS:
        raise InvalidInputError(
            f"Unknown sample source {name!r}; available: {', '.join(SOURCE_NAMES)}."
        )
    image = _SOURCE_LOADERS[name]()
    if np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    image = np.clip(image.astype(np.float32), 0.0, 1.0)
    image.flags.writeable = False
    return image


def load_source(name: str) -> np.ndarray:
    """Load one bundled real image as a 2D float image in [0, 1].

    Colour images become one sensible channel: the green channel of
    ``retina`` (best vessel contrast) and the luminance of
    ``hubble_deep_field``. Nothing is downloaded.

    Args:
        name: one of ``"cardiomyocyte"`` (512 x 512 nuclei stain),
            ``"retina"`` (1411 x 1411), ``"cell"`` (660 x 550),
            ``"coins"`` (303 x 384), ``"hubble_deep_field"`` (872 x 1000).

    Returns:
        A new (Y, X) float32 array with values in [0, 1].

    Raises:
        InvalidInputError: (a ValueError) if ``name`` is not one of the above.

    >>> load_source("coins").shape
    (303, 384)
    """
    return source_view(name).copy()


def load_cardiomyocyte_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """Load ngio's cardiomyocyte nuclei stain and its real nuclei labels.

    Returns:
        ``(raw, labels)``: the (512, 512) uint16 raw image (the uint8 JPEG
        times 257, so 255 maps to 65535) and the (512, 512) uint32 label image
        with the 168 nuclei numbered 1 to 168 (0 is background). New arrays.

    >>> raw, labels = load_cardiomyocyte_nuclei()
    >>> raw.dtype, labels.dtype, int(labels.max())
    (dtype('uint16'), dtype('uint32'), 168)
    """
    raw, nuclei = cardiomyocyte_arrays()
    return raw.astype(np.uint16) * np.uint16(257), nuclei.copy()
