"""Sample HCS plates and stand-alone images: `make_plate`, `make_image` and what they return."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.names import check_name
from fractal_roi_tasks.sample_data.constants import PIXEL_SIZE_UM, Z_SPACING_UM
from fractal_roi_tasks.sample_data.content import FovSpec, build_content
from fractal_roi_tasks.sample_data.options import (
    acquisition_specs,
    check_options,
    check_target,
    parse_wells,
)
from fractal_roi_tasks.sample_data.writing import well_stage_origin_um, write_image

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleImage:
    """One image of a sample plate.

    Attributes:
        zarr_url: absolute path of the OME-Zarr image.
        well: the well name, e.g. ``"B03"``.
        row: the well's row, e.g. ``"B"``.
        column: the well's column as written in the plate, e.g. ``"03"``.
        path: the image's path inside the well, e.g. ``"0"``.
        acquisition: the acquisition id of the image.
    """

    zarr_url: str
    well: str
    row: str
    column: str
    path: str
    acquisition: int


@dataclass(frozen=True)
class FovTruth:
    """The known displacement of one FOV of one acquisition against acquisition 0.

    Attributes:
        displacement_px: (dz, dy, dx) of the content in full-resolution
            pixels (z in planes): what is at (y, x) in acquisition 0 is at
            (y + dy, x + dx) here.
        translation_px: (z, y, x) the registration translation in pixels,
            fractal-tasks-core's sign (the shift that registers this
            acquisition onto acquisition 0): ``-displacement_px``. z is 0
            for a 2D plate.
        translation_um: ``translation_px`` in micrometers (z spacing, pixel
            size, pixel size): what ``translation_z/y/x`` of a registered
            ROI table should hold.
        empty: the FOV holds no sample (background and noise only), so its
            translation cannot be measured.
        artefact: the DAPI channel of this FOV has a saturated blob.
    """

    displacement_px: tuple[float, float, float]
    translation_px: tuple[float, float, float]
    translation_um: tuple[float, float, float]
    empty: bool = False
    artefact: bool = False


@dataclass(frozen=True)
class SamplePlate:
    """A sample HCS plate written by `make_plate`.

    Attributes:
        plate_url: absolute path of the OME-Zarr plate.
        images: every image, ordered by well (as given) then acquisition.
        pixel_size_um: pixel size in y and x at the full resolution level.
        fov_shape: shape of one field of view in the image's spatial axes:
            ``(y, x)`` for a 2D plate, ``(z, y, x)`` for a stack.
        truth: the known translation of every FOV of every image, keyed by
            ``(well, acquisition, roi_name)``, e.g. ``("B03", 1, "FOV_2")``
            (all zeros without ``shifts``).
    """

    plate_url: str
    images: list[SampleImage]
    pixel_size_um: float
    fov_shape: tuple[int, ...]
    truth: dict[tuple[str, int, str], FovTruth] = field(default_factory=dict)


def _truth(specs: Mapping[tuple[str, int], Sequence[FovSpec]]) -> dict:
    """`SamplePlate.truth` from the FOV specs of every (well, acquisition)."""
    spacing = (Z_SPACING_UM, PIXEL_SIZE_UM, PIXEL_SIZE_UM)
    truth = {}
    for (well, acquisition), fov_specs in specs.items():
        for fov_index, spec in enumerate(fov_specs):
            translation = tuple(0.0 - d for d in spec.displacement)
            truth[(well, acquisition, f"FOV_{fov_index + 1}")] = FovTruth(
                displacement_px=spec.displacement,
                translation_px=translation,
                translation_um=tuple(t * s for t, s in zip(translation, spacing)),
                empty=spec.empty,
                artefact=spec.artefact,
            )
    return truth


def make_plate(
    root: str | os.PathLike[str],
    *,
    plate_name: str = "sample.zarr",
    wells: Sequence[str] = ("B03", "B04"),
    acquisitions: int = 1,
    fov_grid: tuple[int, int] = (2, 2),
    z_planes: int = 1,
    ngff_version: str = "0.4",
    levels: int = 3,
    overwrite: bool = False,
    shifts: Mapping[tuple, Sequence[float]] | None = None,
    noise: float = 0.0,
    empty_fovs: Collection[int] = (),
    artefacts: Collection[tuple] = (),
    seed: int = 0,
) -> SamplePlate:
    """Write a realistic OME-Zarr HCS plate made from bundled real images.

    Every well holds one image per acquisition, at
    ``{plate}/{row}/{column}/{acquisition}``, laid out as a Fractal converter
    writes it (see the module docstring for the content): channels ``DAPI``
    and ``GFP``, label ``nuclei`` at every pyramid level, and the tables
    ``FOV_ROI_table`` (ROIs ``FOV_1``, ``FOV_2``, ... in row-major order, with
    ``x_micrometer_original``/``y_micrometer_original`` stage positions) and
    ``well_ROI_table`` (one ROI ``well_1`` covering the image).

    Args:
        root: directory to write the plate into (created if missing).
        plate_name: name of the plate directory, e.g. ``"sample.zarr"``.
        wells: well names such as ``"B03"`` (row letters, column digits; the
            column is written as given, ``"03"``).
        acquisitions: number of acquisitions (cycles) per well, with ids
            ``0 .. acquisitions - 1``; image path == acquisition id.
        fov_grid: (rows, columns) of 512 x 512 fields of view per image.
        z_planes: planes per image; 1 writes a 2D image with axes (c, y, x).
        ngff_version: ``"0.4"`` (Zarr v2) or ``"0.5"`` (Zarr v3).
        levels: pyramid levels, each half the size of the previous in y and x.
        overwrite: replace an existing plate at that path. A path that exists
            but is not a Zarr group is never replaced.
        shifts: known displacements of acquisitions against acquisition 0
            (the reference), for testing registration: a mapping from
            ``(acquisition, fov_index)`` (every well) or ``(well,
            acquisition, fov_index)`` (one well; wins over the former) to
            the content displacement ``(dy, dx)`` or ``(dz, dy, dx)`` in
            full-resolution pixels (z in planes; 0 for a 2D plate), FOVs
            numbered from 0 in row-major order. What is at (y, x) in
            acquisition 0 is at (y + dy, x + dx) in the displaced FOV; every
            channel moves (band-limited sub-pixel shift, the field continued
            by mirror symmetry beyond the real 512 x 512 nuclei image, see
            `shifted_field`), labels move by the rounded displacement (see
            `sample_fov_labels`). |dy|, |dx| < 256 and |dz| < z_planes.
            `random_shifts` makes such a mapping. ``SamplePlate.truth``
            holds the resulting translations (fractal-tasks-core's sign, in
            pixels and micrometers).
        noise: standard deviation (grey values) of gaussian noise added to
            every channel of every acquisition, independently per image.
        empty_fovs: FOV indices that hold no sample in every well and
            acquisition: both channels are a camera offset plus noise
            (``noise`` grey values, 300 if ``noise`` is 0), no nuclei.
        artefacts: ``(acquisition, fov_index)`` or ``(well, acquisition,
            fov_index)`` whose DAPI channel gets a saturated blob (a disk of
            30 px at 65535 with a fading rim, centred at (0.35, 0.65) of the
            field, see `add_saturated_blob`).
        seed: seed of the noise.

    Returns:
        The plate's url, its images, its pixel size and FOV shape, and the
        known translation of every FOV (``truth``).

    Raises:
        AlreadyExistsError: (a FileExistsError) if the plate exists and
            ``overwrite`` is False.
        InvalidInputError: (a ValueError) for an invalid option.
    """
    plate_name = check_name(plate_name, what="plate_name")
    layout = check_options(
        fov_grid=fov_grid, z_planes=z_planes, ngff_version=ngff_version, levels=levels
    )
    parsed_wells = parse_wells(wells)
    if isinstance(acquisitions, bool) or not isinstance(acquisitions, int):
        raise InvalidInputError(
            f"acquisitions must be an integer, got {acquisitions!r}."
        )
    if acquisitions < 1:
        raise InvalidInputError(f"acquisitions must be >= 1, got {acquisitions}.")
    specs = acquisition_specs(
        layout,
        wells=[well for well, _, _ in parsed_wells],
        acquisitions=acquisitions,
        shifts=shifts,
        empty_fovs=empty_fovs,
        artefacts=artefacts,
    )
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 65535:
        raise InvalidInputError(f"noise must be a number of grey values >= 0, got {noise!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"seed must be an integer >= 0, got {seed!r}.")
    varies = bool(shifts) or noise > 0 or bool(empty_fovs) or bool(artefacts)

    import ngio

    plate_path = Path(root).expanduser().absolute() / plate_name
    check_target(plate_path, overwrite=overwrite)
    plate_path.parent.mkdir(parents=True, exist_ok=True)
    plate_url = str(plate_path)

    images = [
        SampleImage(
            zarr_url=f"{plate_url}/{row}/{column}/{acquisition}",
            well=well,
            row=row,
            column=column,
            path=str(acquisition),
            acquisition=acquisition,
        )
        for well, row, column in parsed_wells
        for acquisition in range(acquisitions)
    ]
    ngio.create_empty_plate(
        store=plate_url,
        name=plate_name.removesuffix(".zarr"),
        images=[
            ngio.ImageInWellPath(
                row=image.row,
                column=image.column,
                path=image.path,
                acquisition_id=image.acquisition,
            )
            for image in images
        ],
        ngff_version=ngff_version,
        overwrite=overwrite,
    )
    for well_index, (well, row, column) in enumerate(parsed_wells):
        content = None if varies else build_content(layout, well_index=well_index)
        stage_origin = well_stage_origin_um(row, column, layout)
        for image in images:
            if image.well == well:
                write_image(
                    image.zarr_url,
                    content
                    or build_content(
                        layout,
                        well_index=well_index,
                        specs=specs[(well, image.acquisition)],
                        noise=float(noise),
                        seed=(seed, well_index, image.acquisition),
                    ),
                    layout,
                    stage_origin_um=stage_origin,
                    ngff_version=ngff_version,
                    levels=levels,
                    overwrite=False,
                )
    logger.info(
        "Wrote sample plate %s: %d wells x %d acquisitions, %s FOVs of %s pixels, "
        "NGFF %s.",
        plate_url,
        len(parsed_wells),
        acquisitions,
        "x".join(map(str, layout.fov_grid)),
        "x".join(map(str, layout.fov_shape)),
        ngff_version,
    )
    return SamplePlate(
        plate_url=plate_url,
        images=images,
        pixel_size_um=PIXEL_SIZE_UM,
        fov_shape=layout.fov_shape,
        truth=_truth(specs),
    )


def make_image(
    path: str | os.PathLike[str],
    *,
    fov_grid: tuple[int, int] = (1, 1),
    z_planes: int = 1,
    ngff_version: str = "0.4",
    levels: int = 3,
    overwrite: bool = False,
) -> str:
    """Write one stand-alone sample OME-Zarr image, not in a plate.

    The content is that of the first well of a `make_plate` plate with the
    same options; its stage positions (``*_micrometer_original``) start at 0.

    Args:
        path: where to write the image, e.g. ``tmp / "image.zarr"``.
        fov_grid: (rows, columns) of 512 x 512 fields of view.
        z_planes: planes; 1 writes a 2D image with axes (c, y, x).
        ngff_version: ``"0.4"`` (Zarr v2) or ``"0.5"`` (Zarr v3).
        levels: pyramid levels, each half the size of the previous in y and x.
        overwrite: replace an existing image at that path. A path that exists
            but is not a Zarr group is never replaced.

    Returns:
        The absolute path of the image.

    Raises:
        AlreadyExistsError: (a FileExistsError) if the image exists and
            ``overwrite`` is False.
        InvalidInputError: (a ValueError) for an invalid option.
    """
    layout = check_options(
        fov_grid=fov_grid, z_planes=z_planes, ngff_version=ngff_version, levels=levels
    )
    image_path = Path(path).expanduser().absolute()
    check_target(image_path, overwrite=overwrite)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    zarr_url = str(image_path)
    write_image(
        zarr_url,
        build_content(layout, well_index=0),
        layout,
        stage_origin_um=(0.0, 0.0),
        ngff_version=ngff_version,
        levels=levels,
        overwrite=overwrite,
    )
    logger.info(
        "Wrote sample image %s: %s FOVs of %s pixels, NGFF %s.",
        zarr_url,
        "x".join(map(str, layout.fov_grid)),
        "x".join(map(str, layout.fov_shape)),
        ngff_version,
    )
    return zarr_url
