"""The images a task runs on: urls, the images of a plate or well, their short
names and the folder an init part writes to.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.context import image_context

logger = logging.getLogger(__name__)


def _is_remote(url: str) -> bool:
    return "://" in url


def normalize_url(url: str | os.PathLike[str]) -> str:
    """An absolute path without a trailing slash (remote URLs only lose the slash)."""
    text = os.fspath(url)
    if _is_remote(text):
        return text.rstrip("/")
    return str(Path(text).expanduser().absolute())


def image_urls(url: str | os.PathLike[str]) -> list[str]:
    """The image at `url`, or every image of the plate (or well) at `url`.

    Raises:
        NotFoundError: nothing at `url`, or a plate without images.
        InvalidInputError: `url` is a Zarr group but neither an image, a well
            nor a plate.
    """
    import ngio

    url = normalize_url(url)
    if not _is_remote(url) and not Path(url).exists():
        raise NotFoundError(f"No such OME-Zarr image or plate: {url!r} does not exist.")
    def plate_paths():
        return ngio.open_ome_zarr_plate(url, mode="r").images_paths(max_workers="auto")

    def well_paths():
        return ngio.open_ome_zarr_well(url, mode="r").paths()

    for kind, list_paths in (("plate", plate_paths), ("well", well_paths)):
        try:
            paths = list_paths()
        except ngio.NgioFileNotFoundError as err:
            raise NotFoundError(f"{url!r} is not a Zarr group (no OME-Zarr there).") from err
        except ngio.NgioError:
            continue  # not a plate (well): try the next kind
        if not paths:
            raise NotFoundError(f"The {kind} {url!r} has no images.")
        return [f"{url}/{path}" for path in paths]
    try:
        ngio.open_ome_zarr_container(url, mode="r")
    except ngio.NgioError as err:
        raise InvalidInputError(
            f"{url!r} is neither an OME-Zarr image nor an HCS plate or well (no "
            "'multiscales', 'plate' or 'well' metadata could be read). Give the path "
            "of a plate (e.g. my_plate.zarr) or of an image (e.g. my_plate.zarr/B/03/0)."
        ) from err
    return [url]


def _plate_of(zarr_url: str) -> str | None:
    """The plate holding the image at `zarr_url` (local images only), else None."""
    if _is_remote(zarr_url) or image_context(zarr_url).well is None:
        return None
    return str(Path(zarr_url).parents[2])


def display_name(zarr_url: str) -> str:
    """Short name of an image: ``B/03/0`` in a plate, the folder name otherwise."""
    if _plate_of(zarr_url) is not None:
        return "/".join(Path(zarr_url).parts[-3:])
    return zarr_url.rstrip("/").rsplit("/", 1)[-1]


def default_zarr_dir(zarr_urls: Sequence[str]) -> str:
    """Where a Fractal server would let init tasks write: the plate's parent folder."""
    first = zarr_urls[0]
    plate = _plate_of(first)
    anchor = plate if plate is not None else first.rstrip("/")
    return anchor.rsplit("/", 1)[0] if _is_remote(anchor) else str(Path(anchor).parent)
