"""Realistic OME-Zarr sample images and HCS plates built from bundled real images.

Everything here comes from images that ship inside installed packages, never a
download: ngio's cardiomyocyte sample (a 512 x 512 nuclei stain with its 168
real nuclei labels, 0.325 um pixels) and scikit-image's ``retina``, ``cell``,
``coins`` and ``hubble_deep_field``.

A sample image has the layout a Fractal converter writes: the fields of view
(FOVs) of a ``fov_grid`` laid side by side in one array, a ``FOV_ROI_table``
with one ROI per FOV and a ``well_ROI_table`` covering the image. Each FOV is a
512 x 512 field with

- channel ``DAPI`` (wavelength ``A01_C01``): the cardiomyocyte nuclei stain,
  rotated and/or flipped (one of the 8 symmetries of the square);
- channel ``GFP`` (wavelength ``A02_C02``): a 512 x 512 crop of the retina
  green channel, at a different place for every FOV and well;
- label ``nuclei``: the real nuclei labels under the same rotation/flip as
  ``DAPI``, with ids offset per FOV so they are unique in the whole image.

Axes are ``(c, y, x)`` for a 2D image (ngio writes a genuinely 2D image, no
singleton z axis; the label is ``(y, x)``) and ``(c, z, y, x)`` for a stack
(label ``(z, y, x)``). A stack is built around the middle plane
``mid = z_planes // 2``: in plane ``k`` every nucleus is eroded by
``|k - mid|`` pixels (so it shrinks towards the top and bottom and vanishes
where it is too small) and both channels are blurred by a gaussian of sigma
``1 + |k - mid|`` pixels.

Acquisitions of one well image the same cells: every channel and label is
identical across acquisitions (a zero-shift ground truth for registration).
The DAPI/nuclei content cycles through the 8 symmetries over the FOVs of a
plate (FOV ``n`` of well ``w`` uses symmetry ``(w * n_fovs + n) % 8``), so in
the default 2-well, 2 x 2 plate no two FOVs share it; the GFP crop differs
everywhere.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import AlreadyExistsError, InvalidInputError
from fractal_roi_tasks.names import FOV_ROI_TABLE, WELL_ROI_TABLE, check_name

logger = logging.getLogger(__name__)

PIXEL_SIZE_UM = 0.325
"""Pixel size in y and x of every sample image, in micrometers."""

Z_SPACING_UM = 1.0
"""Distance between the planes of a sample stack, in micrometers."""

FOV_SIZE_PX = 512
"""Height and width of one field of view, in pixels."""

CHANNELS: tuple[tuple[str, str], ...] = (("DAPI", "A01_C01"), ("GFP", "A02_C02"))
"""(label, wavelength_id) of the channels of a sample image, in order."""

NUCLEI_LABEL = "nuclei"
"""Name of the label image of a sample image."""

SOURCE_NAMES: tuple[str, ...] = (
    "cardiomyocyte",
    "retina",
    "cell",
    "coins",
    "hubble_deep_field",
)
"""Names accepted by `load_source`."""

# A plausible stage: a 96-well plate, well A01 centred at (y, x) below, wells
# 9 mm apart. Only used to fill the `*_micrometer_original` columns.
_WELL_PITCH_UM = 9000.0
_A01_CENTRE_UM = (11240.0, 14380.0)

# Crops of the retina stay this close to its centre so that they lie inside
# the fundus (no black corners).
_RETINA_MAX_OFFSET_PX = 192

_WELL_PATTERN = re.compile(r"^([A-Z]+)(\d+)$")


# --------------------------------------------------------------------------
# Public dataclasses


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
class SamplePlate:
    """A sample HCS plate written by `make_plate`.

    Attributes:
        plate_url: absolute path of the OME-Zarr plate.
        images: every image, ordered by well (as given) then acquisition.
        pixel_size_um: pixel size in y and x at the full resolution level.
        fov_shape: shape of one field of view in the image's spatial axes:
            ``(y, x)`` for a 2D plate, ``(z, y, x)`` for a stack.
    """

    plate_url: str
    images: list[SampleImage]
    pixel_size_um: float
    fov_shape: tuple[int, ...]


# --------------------------------------------------------------------------
# Source images


@functools.cache
def _cardiomyocyte_arrays() -> tuple[np.ndarray, np.ndarray]:
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


def _retina_green() -> np.ndarray:
    import skimage.data

    # The vessels have their best contrast in the green channel.
    return skimage.data.retina()[..., 1]


def _hubble_luminance() -> np.ndarray:
    import skimage.color
    import skimage.data

    return skimage.color.rgb2gray(skimage.data.hubble_deep_field())


_SOURCE_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "cardiomyocyte": lambda: _cardiomyocyte_arrays()[0],
    "retina": _retina_green,
    "cell": _skimage_gray("cell"),
    "coins": _skimage_gray("coins"),
    "hubble_deep_field": _hubble_luminance,
}


@functools.cache
def _source(name: str) -> np.ndarray:
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
    return _source(name).copy()


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
    raw, nuclei = _cardiomyocyte_arrays()
    return raw.astype(np.uint16) * np.uint16(257), nuclei.copy()


# --------------------------------------------------------------------------
# Building the pixels


def _dihedral(array: np.ndarray, index: int) -> np.ndarray:
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
def _nuclei_stacks(z_planes: int) -> tuple[np.ndarray, np.ndarray, int]:
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
def _retina_stack(z_planes: int) -> np.ndarray:
    """(Z, Y, X) uint16 stack of the whole retina green channel, cached."""
    green = _retina_green().astype(np.uint16) * np.uint16(257)
    stack = _blur_stack(green, z_planes)
    stack.flags.writeable = False
    return stack


def _retina_crop_origin(index: int) -> tuple[int, int]:
    """Top-left (y, x) of the ``index``-th retina crop, distinct per index.

    The crop centres follow the R2 low-discrepancy sequence over a square of
    +-192 pixels around the centre of the retina, which keeps every crop
    inside the fundus.
    """
    g = 1.32471795724474602596  # the plastic number
    fractions = ((0.5 + index / g) % 1.0, (0.5 + index / g**2) % 1.0)
    height, width = _source("retina").shape
    return tuple(
        int(round(size // 2 + (2.0 * f - 1.0) * _RETINA_MAX_OFFSET_PX))
        - FOV_SIZE_PX // 2
        for size, f in zip((height, width), fractions, strict=True)
    )


@dataclass(frozen=True)
class _Layout:
    """Where the FOVs of a sample image sit.

    Attributes:
        fov_grid: (rows, columns) of FOVs.
        z_planes: number of planes.
    """

    fov_grid: tuple[int, int]
    z_planes: int

    @property
    def n_fovs(self) -> int:
        return self.fov_grid[0] * self.fov_grid[1]

    @property
    def fov_shape(self) -> tuple[int, ...]:
        """Shape of one FOV in the image's spatial axes ((z,) y, x)."""
        yx = (FOV_SIZE_PX, FOV_SIZE_PX)
        return yx if self.z_planes == 1 else (self.z_planes, *yx)

    @property
    def yx_shape(self) -> tuple[int, int]:
        return (self.fov_grid[0] * FOV_SIZE_PX, self.fov_grid[1] * FOV_SIZE_PX)

    def fov_origins_px(self) -> list[tuple[int, int]]:
        """Top-left (y, x) pixel of every FOV, in row-major order."""
        rows, columns = self.fov_grid
        return [
            (r * FOV_SIZE_PX, c * FOV_SIZE_PX)
            for r in range(rows)
            for c in range(columns)
        ]


@dataclass(frozen=True)
class _Content:
    """The pixels of one sample image.

    Attributes:
        image: (C, Z, Y, X) uint16.
        label: (Z, Y, X) uint32, ids unique across FOVs.
    """

    image: np.ndarray
    label: np.ndarray


def _build_content(layout: _Layout, *, well_index: int) -> _Content:
    """Lay the FOVs of the ``well_index``-th well of a plate side by side."""
    raw_stack, label_stack, n_ids = _nuclei_stacks(layout.z_planes)
    retina = _retina_stack(layout.z_planes)
    image = np.empty((len(CHANNELS), layout.z_planes, *layout.yx_shape), np.uint16)
    label = np.empty((layout.z_planes, *layout.yx_shape), np.uint32)
    for fov_index, (y0, x0) in enumerate(layout.fov_origins_px()):
        global_index = well_index * layout.n_fovs + fov_index
        window = (slice(y0, y0 + FOV_SIZE_PX), slice(x0, x0 + FOV_SIZE_PX))
        image[(0, slice(None), *window)] = _dihedral(raw_stack, global_index)
        cy, cx = _retina_crop_origin(global_index)
        image[(1, slice(None), *window)] = retina[
            :, cy : cy + FOV_SIZE_PX, cx : cx + FOV_SIZE_PX
        ]
        fov_labels = _dihedral(label_stack, global_index)
        offset = np.uint32(fov_index * n_ids)
        label[(slice(None), *window)] = np.where(fov_labels > 0, fov_labels + offset, 0)
    return _Content(image=image, label=label)


# --------------------------------------------------------------------------
# Tables


def _roi_tables(layout: _Layout, *, stage_origin_um: tuple[float, float]) -> dict:
    """The FOV and well ROI tables of a sample image, by name.

    ROIs are in micrometers relative to the image origin and span all planes;
    ``x/y_micrometer_original`` give the stage position of each ROI's top-left
    corner, ``stage_origin_um`` being that of the image's.
    """
    import ngio

    z_slice = (0.0, layout.z_planes * Z_SPACING_UM)
    stage_y, stage_x = stage_origin_um

    def roi(name: str, y_px: int, x_px: int, h_px: int, w_px: int) -> ngio.Roi:
        y_um, x_um = y_px * PIXEL_SIZE_UM, x_px * PIXEL_SIZE_UM
        return ngio.Roi.from_values(
            name=name,
            slices={
                "x": (x_um, w_px * PIXEL_SIZE_UM),
                "y": (y_um, h_px * PIXEL_SIZE_UM),
                "z": z_slice,
            },
            x_micrometer_original=stage_x + x_um,
            y_micrometer_original=stage_y + y_um,
        )

    fov_rois = [
        roi(f"FOV_{i}", y0, x0, FOV_SIZE_PX, FOV_SIZE_PX)
        for i, (y0, x0) in enumerate(layout.fov_origins_px(), start=1)
    ]
    well_roi = roi("well_1", 0, 0, *layout.yx_shape)
    return {
        FOV_ROI_TABLE: ngio.RoiTable(rois=fov_rois),
        WELL_ROI_TABLE: ngio.RoiTable(rois=[well_roi]),
    }


def _stage_origin_um(row: str, column: str, layout: _Layout) -> tuple[float, float]:
    """Stage (y, x) of the top-left of the image of a well: FOVs around its centre."""
    row_index = 0
    for letter in row:
        row_index = row_index * 26 + (ord(letter) - ord("A") + 1)
    height, width = (n * PIXEL_SIZE_UM for n in layout.yx_shape)
    centre_y = _A01_CENTRE_UM[0] + (row_index - 1) * _WELL_PITCH_UM
    centre_x = _A01_CENTRE_UM[1] + (int(column) - 1) * _WELL_PITCH_UM
    return centre_y - height / 2, centre_x - width / 2


# --------------------------------------------------------------------------
# Writing


def _write_image(
    zarr_url: str,
    content: _Content,
    layout: _Layout,
    *,
    stage_origin_um: tuple[float, float],
    ngff_version: str,
    levels: int,
    overwrite: bool,
) -> None:
    """Write one sample image (channels, label, ROI tables) at ``zarr_url``."""
    import ngio

    if layout.z_planes == 1:
        image, label = content.image[:, 0], content.label[0]
        axes, chunks = ("c", "y", "x"), (1, FOV_SIZE_PX, FOV_SIZE_PX)
    else:
        image, label = content.image, content.label
        axes, chunks = ("c", "z", "y", "x"), (1, 1, FOV_SIZE_PX, FOV_SIZE_PX)
    channels = [
        ngio.Channel.default_init(label=name, wavelength_id=wavelength_id)
        for name, wavelength_id in CHANNELS
    ]
    container = ngio.create_ome_zarr_from_array(
        store=zarr_url,
        array=image,
        pixelsize=PIXEL_SIZE_UM,
        z_spacing=Z_SPACING_UM,
        levels=levels,
        axes_names=axes,
        channels_meta=channels,
        ngff_version=ngff_version,
        chunks=chunks,
        overwrite=overwrite,
        consolidation_mode="auto",
    )
    nuclei = container.derive_label(NUCLEI_LABEL, dtype="uint32")
    nuclei.set_array(label)
    nuclei.consolidate(mode="auto")
    for name, table in _roi_tables(layout, stage_origin_um=stage_origin_um).items():
        container.add_table(name, table)
    logger.debug(
        "Wrote sample image %s: axes %s, shape %s, %d FOVs, %d levels.",
        zarr_url,
        axes,
        image.shape,
        layout.n_fovs,
        levels,
    )


def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs"))


def _check_target(path: Path, *, overwrite: bool) -> None:
    """Refuse to write over anything unless asked, and never over a non-Zarr."""
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    if not overwrite:
        raise AlreadyExistsError(
            f"{path} already exists; pass overwrite=True to replace it, "
            "or choose another path."
        )
    if not path.is_dir() or not _looks_like_zarr(path):
        raise AlreadyExistsError(
            f"{path} exists and is not a Zarr group; refusing to overwrite it "
            "even with overwrite=True. Choose another path."
        )


def _check_options(
    *, fov_grid: Sequence[int], z_planes: int, ngff_version: str, levels: int
) -> _Layout:
    grid = tuple(fov_grid)
    if len(grid) != 2 or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1
        for n in grid
    ):
        raise InvalidInputError(
            f"fov_grid must be two positive integers (rows, columns), got {fov_grid!r}."
        )
    if isinstance(z_planes, bool) or not isinstance(z_planes, int) or z_planes < 1:
        raise InvalidInputError(f"z_planes must be an integer >= 1, got {z_planes!r}.")
    if ngff_version not in ("0.4", "0.5"):
        raise InvalidInputError(
            f"ngff_version must be '0.4' or '0.5', got {ngff_version!r}."
        )
    max_levels = int(np.log2(FOV_SIZE_PX)) + 1
    if isinstance(levels, bool) or not isinstance(levels, int):
        raise InvalidInputError(f"levels must be an integer, got {levels!r}.")
    if not 1 <= levels <= max_levels:
        raise InvalidInputError(
            f"levels must be between 1 and {max_levels} (a FOV is "
            f"{FOV_SIZE_PX} pixels wide), got {levels}."
        )
    return _Layout(fov_grid=(int(grid[0]), int(grid[1])), z_planes=z_planes)


def _parse_wells(wells: Sequence[str]) -> list[tuple[str, str, str]]:
    """(well, row, column) of each well name such as ``"B03"``."""
    if isinstance(wells, str):
        wells = [wells]
    parsed = []
    for well in wells:
        match = _WELL_PATTERN.match(well) if isinstance(well, str) else None
        if match is None:
            raise InvalidInputError(
                f"Well names are a row letter and a column number such as 'B03', "
                f"got {well!r}."
            )
        parsed.append((well, match.group(1), match.group(2)))
    if not parsed:
        raise InvalidInputError("wells must name at least one well, e.g. ('B03',).")
    names = [well for well, _, _ in parsed]
    duplicates = sorted({w for w in names if names.count(w) > 1})
    if duplicates:
        raise InvalidInputError(f"wells lists {', '.join(duplicates)} more than once.")
    return parsed


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

    Returns:
        The plate's url, its images, its pixel size and FOV shape.

    Raises:
        AlreadyExistsError: (a FileExistsError) if the plate exists and
            ``overwrite`` is False.
        InvalidInputError: (a ValueError) for an invalid option.
    """
    plate_name = check_name(plate_name, what="plate_name")
    layout = _check_options(
        fov_grid=fov_grid, z_planes=z_planes, ngff_version=ngff_version, levels=levels
    )
    parsed_wells = _parse_wells(wells)
    if isinstance(acquisitions, bool) or not isinstance(acquisitions, int):
        raise InvalidInputError(
            f"acquisitions must be an integer, got {acquisitions!r}."
        )
    if acquisitions < 1:
        raise InvalidInputError(f"acquisitions must be >= 1, got {acquisitions}.")

    import ngio

    plate_path = Path(root).expanduser().absolute() / plate_name
    _check_target(plate_path, overwrite=overwrite)
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
        content = _build_content(layout, well_index=well_index)
        stage_origin = _stage_origin_um(row, column, layout)
        for image in images:
            if image.well == well:
                _write_image(
                    image.zarr_url,
                    content,
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
    layout = _check_options(
        fov_grid=fov_grid, z_planes=z_planes, ngff_version=ngff_version, levels=levels
    )
    image_path = Path(path).expanduser().absolute()
    _check_target(image_path, overwrite=overwrite)
    image_path.parent.mkdir(parents=True, exist_ok=True)
    zarr_url = str(image_path)
    _write_image(
        zarr_url,
        _build_content(layout, well_index=0),
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
