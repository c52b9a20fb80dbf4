"""Images grouped by well and acquisition, from the wells' own metadata."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import ngio

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WellImages:
    """The images of one well, by acquisition id.

    Attributes:
        well_url: the well group.
        by_acquisition: acquisition id -> image urls, sorted by image name.
    """

    well_url: str
    by_acquisition: dict[int, list[str]]

    def describe(self) -> str:
        """``{0: ['0'], 1: ['1']}``-style summary for error messages."""
        return str({a: [Path(u).name for u in urls] for a, urls in self.by_acquisition.items()})


def wells_of(zarr_urls: list[str]) -> dict[str, WellImages]:
    """Group images by their well, with every image of each well (from its metadata).

    Raises:
        InvalidInputError: an image is not inside a plate well, or the well
            metadata gives it no acquisition id.
    """
    wells: dict[str, WellImages] = {}
    for zarr_url in zarr_urls:
        well_url = well_url_of(zarr_url)
        if well_url in wells:
            continue
        try:
            well = ngio.open_ome_zarr_well(well_url, mode="r")
        except ngio.NgioError as err:
            raise InvalidInputError(
                f"{zarr_url!r} is not an image inside an HCS plate well (its parent "
                f"{well_url!r} has no well metadata): registration pairs acquisitions "
                "of one well."
            ) from err
        by_acquisition: dict[int, list[str]] = defaultdict(list)
        for path in sorted(well.paths()):
            acquisition = well.get_image_acquisition_id(path)
            if acquisition is None:
                raise InvalidInputError(
                    f"Image {path!r} of well {well_url!r} has no acquisition id in the "
                    "well metadata; registration needs one per image."
                )
            by_acquisition[acquisition].append(str(Path(well_url) / path))
        wells[well_url] = WellImages(well_url, dict(sorted(by_acquisition.items())))
    return wells


def well_url_of(image_url: str) -> str:
    """The well group holding the image at `image_url` (normalized)."""
    return str(Path(image_url).parent)


def _role(image_url: str) -> str:
    """What an image is within its acquisition: its name after the first "_".

    "0" and "1" share the role ""; "0_illum_corr" and "1_illum_corr" share
    "illum_corr": images of different cycles pair by role.
    """
    name = Path(image_url).name
    return name.split("_", 1)[1] if "_" in name else ""


def reference_of(image_url: str, well: WellImages, reference_acquisition: int) -> str:
    """The reference-acquisition image that `image_url` registers against.

    A single reference image pairs with every image of the well; several
    pair by role (see `_role`), which must then match exactly one.
    """
    if reference_acquisition not in well.by_acquisition:
        raise NotFoundError(
            f"Well {well.well_url!r} has no image of reference acquisition "
            f"{reference_acquisition}; it has acquisitions {well.describe()}."
        )
    candidates = well.by_acquisition[reference_acquisition]
    if len(candidates) == 1:
        return candidates[0]
    same_role = [c for c in candidates if _role(c) == _role(image_url)]
    if len(same_role) != 1:
        raise InvalidInputError(
            f"Cannot tell which of the reference images {[Path(c).name for c in candidates]} "
            f"of well {well.well_url!r} pairs with {Path(image_url).name!r}: images pair by "
            "the part of their name after the first '_' and "
            f"{len(same_role)} match. Rename the images or register them separately."
        )
    return same_role[0]


def acquisition_of(image_url: str, well: WellImages) -> int:
    """The acquisition id of an image of `well`."""
    for acquisition, urls in well.by_acquisition.items():
        if str(Path(image_url)) in urls:
            return acquisition
    raise NotFoundError(
        f"{image_url!r} is not listed in the metadata of well {well.well_url!r}, which "
        f"has {well.describe()}."
    )


@dataclass(frozen=True)
class ReferencePair:
    """An image and the reference image of its well it registers against.

    Attributes:
        zarr_url: the image.
        reference_zarr_url: the reference-acquisition image it pairs with
            (`reference_of`); for a reference image, itself.
        is_reference: the image is of the reference acquisition.
    """

    zarr_url: str
    reference_zarr_url: str
    is_reference: bool


def reference_pairs(zarr_urls: list[str], reference_acquisition: int) -> list[ReferencePair]:
    """Every image of `zarr_urls`, in that order, with its well's reference image.

    Raises:
        InvalidInputError: an image outside a plate well, without an
            acquisition id, or whose reference image is ambiguous.
        NotFoundError: a well without the reference acquisition, or an image
            its well does not list.
    """
    wells = wells_of(zarr_urls)
    pairs = []
    for zarr_url in zarr_urls:
        well = wells[well_url_of(zarr_url)]
        is_reference = acquisition_of(zarr_url, well) == reference_acquisition
        reference = reference_of(zarr_url, well, reference_acquisition)
        pairs.append(ReferencePair(zarr_url, reference, is_reference))
    return pairs


def acquisition_in_well(image_url: str) -> int | None:
    """The acquisition id of an image listed in its plate well; None outside a plate.

    An image listed without an acquisition id gets 0 (a single-acquisition plate).
    """
    import warnings

    well_url = well_url_of(image_url)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Path .* contains non-alphanumeric")
        try:
            well = ngio.open_ome_zarr_well(well_url, mode="r")
        except ngio.NgioError:
            return None
        name = Path(image_url).name
        if name not in well.paths():
            return None
        acquisition = well.get_image_acquisition_id(name)
    return 0 if acquisition is None else acquisition


def add_to_well(target: Path, acquisition: int) -> None:
    """List `target` in its well with `acquisition` (atomic; a no-op if listed)."""
    import warnings

    import ngio

    with warnings.catch_warnings():
        # ngio advises alphanumeric paths; `{image}_registered` (`_stitched`) is Fractal's convention.
        warnings.filterwarnings("ignore", message="Path .* contains non-alphanumeric")
        well = ngio.open_ome_zarr_well(str(target.parent), mode="r+")
        if target.name in well.paths():
            return
        try:
            well.atomic_add_image(target.name, acquisition_id=acquisition, strict=False)
        except ngio.NgioError:
            if target.name not in ngio.open_ome_zarr_well(str(target.parent), mode="r").paths():
                raise
