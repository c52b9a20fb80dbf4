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

Acquisitions of one well image the same cells: by default every channel and
label is identical across acquisitions (a zero-shift ground truth for
registration). `make_plate`'s ``shifts`` displaces chosen FOVs of chosen
acquisitions by known sub-pixel amounts instead (the ground truth is in
``SamplePlate.truth``), ``noise``, ``empty_fovs`` and ``artefacts`` add
camera noise, fields of pure background and saturated debris. The pure
helpers behind them (`shifted_field`, `sample_fov`, `sample_fov_labels`,
`add_noise`, `add_saturated_blob`, `background_fov`, `random_shifts`) build
the same test data as numpy arrays.
The DAPI/nuclei content cycles through the 8 symmetries over the FOVs of a
plate (FOV ``n`` of well ``w`` uses symmetry ``(w * n_fovs + n) % 8``), so in
the default 2-well, 2 x 2 plate no two FOVs share it; the GFP crop differs
everywhere.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
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

# Gaussian noise (grey values) of an empty FOV of a plate made without noise.
_EMPTY_FOV_NOISE = 300.0


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


@dataclass(frozen=True)
class _FovSpec:
    """How one FOV of one acquisition differs from the plain sample.

    Attributes:
        displacement: (dz, dy, dx) of the content in pixels (z in planes).
        empty: no sample in the field: background and noise only.
        artefact: a saturated blob in the DAPI channel.
    """

    displacement: tuple[float, float, float] = (0.0, 0.0, 0.0)
    empty: bool = False
    artefact: bool = False


_PLAIN = _FovSpec()


def _build_content(
    layout: _Layout,
    *,
    well_index: int,
    specs: Sequence[_FovSpec] | None = None,
    noise: float = 0.0,
    seed: Sequence[int] = (0,),
) -> _Content:
    """Lay the FOVs of the ``well_index``-th well of a plate side by side.

    ``specs`` (one per FOV) displace, empty or spoil FOVs; ``noise`` adds
    gaussian noise of that many grey values to every channel, seeded by
    ``seed`` plus the FOV and channel.
    """
    specs = list(specs) if specs is not None else [_PLAIN] * layout.n_fovs
    raw_stack, label_stack, n_ids = _nuclei_stacks(layout.z_planes)
    retina = _retina_stack(layout.z_planes)
    image = np.empty((len(CHANNELS), layout.z_planes, *layout.yx_shape), np.uint16)
    label = np.empty((layout.z_planes, *layout.yx_shape), np.uint32)
    for fov_index, (y0, x0) in enumerate(layout.fov_origins_px()):
        spec = specs[fov_index]
        global_index = well_index * layout.n_fovs + fov_index
        window = (slice(y0, y0 + FOV_SIZE_PX), slice(x0, x0 + FOV_SIZE_PX))
        z_shape = (layout.z_planes, FOV_SIZE_PX, FOV_SIZE_PX)
        if spec.empty:
            for channel in range(len(CHANNELS)):
                image[(channel, slice(None), *window)] = background_fov(
                    z_shape,
                    read_noise=noise or _EMPTY_FOV_NOISE,
                    seed=(*seed, fov_index, channel),
                )
            label[(slice(None), *window)] = 0
            continue
        if spec.displacement == (0.0, 0.0, 0.0):
            dapi = _dihedral(raw_stack, global_index)
            cy, cx = _retina_crop_origin(global_index)
            gfp = retina[:, cy : cy + FOV_SIZE_PX, cx : cx + FOV_SIZE_PX]
            fov_labels = _dihedral(label_stack, global_index)
        else:
            dapi, gfp = (
                sample_fov(
                    global_index, spec.displacement, z_planes=layout.z_planes, channel=name
                ).reshape(z_shape)
                for name, _ in CHANNELS
            )
            fov_labels = sample_fov_labels(
                global_index, spec.displacement, z_planes=layout.z_planes
            ).reshape(z_shape)
        if spec.artefact:
            dapi = add_saturated_blob(dapi)
        if noise > 0:
            dapi = add_noise(dapi, read_noise=noise, seed=(*seed, fov_index, 0))
            gfp = add_noise(gfp, read_noise=noise, seed=(*seed, fov_index, 1))
        image[(0, slice(None), *window)] = dapi
        image[(1, slice(None), *window)] = gfp
        offset = np.uint32(fov_index * n_ids)
        label[(slice(None), *window)] = np.where(fov_labels > 0, fov_labels + offset, 0)
    return _Content(image=image, label=label)


# --------------------------------------------------------------------------
# Shifted fields: acquisitions displaced by known sub-pixel amounts


def _mirror_indices(indices: np.ndarray, size: int) -> np.ndarray:
    """Map any integer positions into ``[0, size)`` by mirror symmetry.

    The image continues beyond each edge as its mirror image (edge pixel
    repeated: numpy's ``"symmetric"`` padding, scipy.ndimage's ``"reflect"``
    mode), periodically with period ``2 * size``.
    """
    folded = np.mod(indices, 2 * size)
    return np.where(folded >= size, 2 * size - 1 - folded, folded)


def _mirror_region(
    source: np.ndarray, origin: Sequence[int], shape: Sequence[int]
) -> np.ndarray:
    """``source[origin : origin + shape]`` (last two axes) of the mirror-extended source."""
    rows = _mirror_indices(np.arange(origin[0], origin[0] + shape[0]), source.shape[-2])
    cols = _mirror_indices(np.arange(origin[1], origin[1] + shape[1]), source.shape[-1])
    return source[..., rows[:, None], cols[None, :]]


def _fourier_shift(region: np.ndarray, displacement: Sequence[float]) -> np.ndarray:
    """Band-limited (Fourier) shift of a 2D float64 ``region`` by ``displacement`` (dy, dx).

    The region is mirrored into a 2x2 tile first, so its periodic extension
    has no jumps (no ringing from the borders); the result is then exactly the
    trigonometric interpolant of that tile, evaluated at ``x - displacement``.
    """
    from scipy import fft as sp_fft

    height, width = region.shape
    tile = np.concatenate([region, region[::-1]], axis=0)
    tile = np.concatenate([tile, tile[:, ::-1]], axis=1)
    spectrum = sp_fft.rfft2(tile)
    fy = sp_fft.fftfreq(tile.shape[0])[:, None]
    fx = sp_fft.rfftfreq(tile.shape[1])[None, :]
    spectrum *= np.exp(-2j * np.pi * (fy * displacement[0] + fx * displacement[1]))
    return sp_fft.irfft2(spectrum, s=tile.shape)[:height, :width]


def _defocus_sigma(plane: float, z_planes: int) -> float:
    """Gaussian blur of a plane at (possibly fractional) depth ``plane``: 1 + |plane - mid|."""
    return 1.0 + abs(plane - z_planes // 2)


def _blur_radius(sigma: float) -> int:
    """Reach of scipy.ndimage.gaussian_filter (truncate=4) in pixels."""
    return int(4.0 * sigma + 0.5)


def shifted_field(
    source: np.ndarray,
    displacement: Sequence[float],
    *,
    origin: Sequence[int] = (0, 0),
    shape: Sequence[int] = (FOV_SIZE_PX, FOV_SIZE_PX),
    z_planes: int = 1,
) -> np.ndarray:
    """A field of ``source`` whose content is displaced by a known sub-pixel amount.

    The field covers ``shape`` pixels from ``origin`` of ``source``, with the
    content moved by ``displacement``: what sits at (y, x) in the undisplaced
    field sits at (y + dy, x + dx) here. Beyond its edges the source
    continues as its mirror image (so 40+ px shifts of the 512 x 512 nuclei
    image stay realistic), and the shift is band-limited: a Fourier shift of
    a mirrored region around the field, exact at every frequency for the
    trigonometric interpolant of that region (`estimate_shift` recovers it
    to 3e-4 px without noise; a cubic-spline shift gives 4e-4 px, being
    accurate at the periods the estimator weighs). Whole-pixel
    displacements are copied exactly, with no Fourier transform.

    With ``z_planes > 1`` the field becomes a stack built like the sample
    stacks (plane ``k`` blurred by a gaussian of sigma ``1 + |k - mid|``,
    ``mid = z_planes // 2``), and ``dz`` moves it in z: plane ``k`` is the
    continuous stack at depth ``k - dz`` (blur ``1 + |k - dz - mid|``). The
    blur is computed with margin, so the undisplaced stack equals the sample
    stack exactly (up to rounding).

    Args:
        source: (Y, X) real image, e.g. from `load_source`.
        displacement: (dy, dx), or (dz, dy, dx) when ``z_planes > 1``, in
            pixels (z in planes).
        origin: (y, x) top-left of the undisplaced field in ``source``.
        shape: (height, width) of the field in pixels.
        z_planes: number of planes; 1 returns a 2D field.

    Returns:
        A new float array: (Y, X) float64 if ``z_planes == 1``, else
        (Z, Y, X) float32 (the dtype the sample stacks are blurred in).
        Values are not rounded or clipped (a Fourier shift may overshoot
        the source's range slightly near sharp edges).

    Raises:
        InvalidInputError: (a ValueError) for a displacement of the wrong
            length, a z displacement of a 2D field, or non-finite values.

    >>> source = load_source("coins")
    >>> moved = shifted_field(source, (2.0, -3.0), origin=(50, 60), shape=(100, 100))
    >>> bool(np.array_equal(moved[2:, :-3], source[50:148, 63:160]))
    True
    """
    values = [float(v) for v in displacement]
    if len(values) not in (2, 3) or not all(np.isfinite(values)):
        raise InvalidInputError(
            f"displacement must be (dy, dx) or (dz, dy, dx) finite pixels, got {displacement!r}."
        )
    dz, dy, dx = values if len(values) == 3 else (0.0, *values)
    if z_planes == 1 and dz != 0:
        raise InvalidInputError(
            f"A 2D field (z_planes=1) cannot be displaced in z, got dz={dz}."
        )
    height, width = (int(n) for n in shape)
    sigmas = [_defocus_sigma(k - dz, z_planes) for k in range(z_planes)] if z_planes > 1 else []
    blur_margin = max((_blur_radius(s) for s in sigmas), default=0)
    whole = float(dy).is_integer() and float(dx).is_integer()
    # Margin for the shift itself and, for a Fourier shift, a guard band.
    margin = blur_margin + int(np.ceil(max(abs(dy), abs(dx)))) + (0 if whole else 8)
    region = _mirror_region(
        np.asarray(source, dtype=np.float64),
        (origin[0] - margin, origin[1] - margin),
        (height + 2 * margin, width + 2 * margin),
    )
    if whole:
        moved = np.roll(region, (int(dy), int(dx)), axis=(0, 1))
    else:
        moved = _fourier_shift(region, (dy, dx))
    if z_planes == 1:
        return moved[margin : margin + height, margin : margin + width].copy()
    from scipy import ndimage

    moved = moved.astype(np.float32)
    planes = []
    for sigma in sigmas:
        blurred = ndimage.gaussian_filter(moved, sigma=sigma)
        planes.append(blurred[margin : margin + height, margin : margin + width])
    return np.stack(planes)


def _to_uint16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 65535).astype(np.uint16)


def _dihedral_displacement(displacement: Sequence[float], index: int) -> tuple[float, float]:
    """Where a (dy, dx) displacement of the source goes under `_dihedral` ``index``."""
    dy, dx = displacement
    index %= 8
    for _ in range(index % 4):
        dy, dx = -dx, dy  # np.rot90: (y, x) -> (n - 1 - x, y)
    if index >= 4:
        dx = -dx
    return dy, dx


def _source_displacement(displacement: Sequence[float], index: int) -> tuple[float, float]:
    """The inverse of `_dihedral_displacement`: a FOV's displacement in the source frame."""
    dy, dx = displacement
    index %= 8
    if index >= 4:
        dx = -dx
    for _ in range(index % 4):
        dy, dx = dx, -dy
    return dy, dx


def _split_displacement(displacement: Sequence[float]) -> tuple[float, float, float]:
    values = [float(v) for v in displacement]
    if len(values) == 2:
        return (0.0, *values)
    if len(values) == 3:
        return tuple(values)
    raise InvalidInputError(
        f"displacement must be (dy, dx) or (dz, dy, dx) pixels, got {displacement!r}."
    )


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
    dz, dy, dx = _split_displacement(displacement)
    names = [name for name, _ in CHANNELS]
    if channel not in names:
        raise InvalidInputError(f"channel must be one of {names}, got {channel!r}.")
    moved = (dz, dy, dx) if z_planes > 1 else (dy, dx)
    if channel == names[0]:
        raw, _ = _cardiomyocyte_arrays()
        source_dy, source_dx = _source_displacement((dy, dx), index)
        moved = (dz, source_dy, source_dx) if z_planes > 1 else (source_dy, source_dx)
        values = shifted_field(raw.astype(np.uint16) * np.uint16(257), moved, z_planes=z_planes)
        return np.ascontiguousarray(_dihedral(_to_uint16(values), index))
    retina = _retina_green().astype(np.uint16) * np.uint16(257)
    values = shifted_field(retina, moved, origin=_retina_crop_origin(index), z_planes=z_planes)
    return _to_uint16(values)


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
    dz, dy, dx = (math.floor(v + 0.5) for v in _split_displacement(displacement))
    mid = z_planes // 2
    planes = []
    for k in range(z_planes):
        distance = abs(k - dz - mid) if z_planes > 1 else 0
        planes.append(_dihedral(_erode_labels_cached(distance), index))
    stack = np.stack(planes)
    out = np.zeros_like(stack)
    height, width = stack.shape[-2:]
    out[
        :, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)
    ] = stack[:, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
    return out if z_planes > 1 else out[0]


@functools.lru_cache(maxsize=16)
def _erode_labels_cached(distance: int) -> np.ndarray:
    _, nuclei = _cardiomyocyte_arrays()
    eroded = _erode_labels(nuclei, distance)
    eroded.flags.writeable = False
    return eroded


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
    return _to_uint16(values)


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
    return _to_uint16(np.asarray(image, dtype=np.float64) + blob)


def background_fov(
    shape: Sequence[int], *, level: float = 1000.0, read_noise: float = 300.0, seed: int | Sequence[int] = 0
) -> np.ndarray:
    """A field with no sample in it: a constant camera offset plus gaussian noise (uint16).

    >>> empty = background_fov((64, 64), seed=3)
    >>> empty.dtype, bool(900 < empty.mean() < 1100)
    (dtype('uint16'), True)
    """
    return add_noise(np.full(tuple(shape), level), read_noise=read_noise, seed=seed)


def random_shifts(
    *,
    acquisitions: int,
    n_fovs: int,
    max_shift_px: float = 5.0,
    max_shift_z: float = 0.0,
    seed: int = 0,
) -> dict[tuple[int, int], tuple[float, float, float]]:
    """Random content displacements for `make_plate`'s ``shifts``: one per (acquisition, FOV).

    Every acquisition but the reference (0) gets, for every FOV, a
    displacement drawn uniformly from ``[-max_shift_px, max_shift_px]`` in y
    and x and ``[-max_shift_z, max_shift_z]`` in z, rounded to 0.001 px.

    >>> shifts = random_shifts(acquisitions=3, n_fovs=2, max_shift_px=50, seed=1)
    >>> sorted(shifts), all(abs(v) <= 50 for d in shifts.values() for v in d)
    ([(1, 0), (1, 1), (2, 0), (2, 1)], True)
    """
    rng = np.random.default_rng(seed)
    out = {}
    for acquisition in range(1, acquisitions):
        for fov in range(n_fovs):
            dz = rng.uniform(-max_shift_z, max_shift_z) if max_shift_z > 0 else 0.0
            dy, dx = rng.uniform(-max_shift_px, max_shift_px, 2)
            out[(acquisition, fov)] = tuple(round(float(v), 3) + 0.0 for v in (dz, dy, dx))
    return out


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


def _plate_key(key: object, wells: Sequence[str], what: str) -> tuple[str | None, int, int]:
    """(well or None, acquisition, fov_index) of a ``shifts``/``artefacts`` key."""
    parts = tuple(key) if isinstance(key, tuple | list) else (key,)
    if len(parts) == 3 and isinstance(parts[0], str):
        well, acquisition, fov = parts
        if well not in wells:
            raise InvalidInputError(
                f"{what} names well {well!r}, which is not among the plate's wells "
                f"({', '.join(wells)})."
            )
    elif len(parts) == 2:
        well, (acquisition, fov) = None, parts
    else:
        raise InvalidInputError(
            f"{what} keys are (acquisition, fov_index) or (well, acquisition, "
            f"fov_index), got {key!r}."
        )
    for value, name in ((acquisition, "acquisition"), (fov, "fov_index")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidInputError(f"{what} key {key!r}: {name} must be an integer.")
    return well, int(acquisition), int(fov)


def _acquisition_specs(
    layout: _Layout,
    *,
    wells: Sequence[str],
    acquisitions: int,
    shifts: Mapping[tuple, Sequence[float]] | None,
    empty_fovs: Collection[int],
    artefacts: Collection[tuple],
) -> dict[tuple[str, int], list[_FovSpec]]:
    """Per (well, acquisition), one `_FovSpec` per FOV, checked."""
    n_fovs = layout.n_fovs

    def check(what: str, key: object, acquisition: int, fov: int, first: int) -> None:
        if not first <= acquisition < acquisitions:
            raise InvalidInputError(
                f"{what} key {key!r}: acquisition must be {first}..{acquisitions - 1} "
                f"(acquisition 0 is the reference), got {acquisition}."
            )
        if not 0 <= fov < n_fovs:
            raise InvalidInputError(
                f"{what} key {key!r}: fov_index must be 0..{n_fovs - 1} "
                f"(FOV_1..FOV_{n_fovs}), got {fov}."
            )

    displacement: dict[tuple[str, int, int], tuple[float, float, float]] = {}
    for general_first in (True, False):  # (acquisition, fov) keys first, then per well
        for key, value in (shifts or {}).items():
            well, acquisition, fov = _plate_key(key, wells, "shifts")
            if (well is None) != general_first:
                continue
            check("shifts", key, acquisition, fov, first=1)
            try:
                dz, dy, dx = _split_displacement(value)
            except (TypeError, ValueError) as err:
                raise InvalidInputError(
                    f"shifts[{key!r}] must be (dy, dx) or (dz, dy, dx) pixels, got {value!r}."
                ) from err
            half = FOV_SIZE_PX // 2
            if not all(math.isfinite(v) for v in (dz, dy, dx)) or max(abs(dy), abs(dx)) >= half:
                raise InvalidInputError(
                    f"shifts[{key!r}] = {value!r}: |dy| and |dx| must be below {half} px."
                )
            if not abs(dz) < layout.z_planes or (layout.z_planes == 1 and dz != 0):
                raise InvalidInputError(
                    f"shifts[{key!r}] = {value!r}: |dz| must be below z_planes "
                    f"({layout.z_planes}); a 2D plate cannot move in z."
                )
            for target in [well] if well is not None else wells:
                displacement[(target, acquisition, fov)] = (dz + 0.0, dy + 0.0, dx + 0.0)
    empty = set()
    for fov in empty_fovs:
        if isinstance(fov, bool) or not isinstance(fov, int | np.integer) or not 0 <= fov < n_fovs:
            raise InvalidInputError(
                f"empty_fovs must hold FOV indices 0..{n_fovs - 1}, got {fov!r}."
            )
        empty.add(int(fov))
    spoiled = set()
    for key in artefacts:
        well, acquisition, fov = _plate_key(key, wells, "artefacts")
        check("artefacts", key, acquisition, fov, first=0)
        for target in [well] if well is not None else wells:
            spoiled.add((target, acquisition, fov))
    return {
        (well, acquisition): [
            _FovSpec(
                displacement=displacement.get((well, acquisition, fov), (0.0, 0.0, 0.0)),
                empty=fov in empty,
                artefact=(well, acquisition, fov) in spoiled,
            )
            for fov in range(n_fovs)
        ]
        for well in wells
        for acquisition in range(acquisitions)
    }


def _truth(specs: Mapping[tuple[str, int], Sequence[_FovSpec]]) -> dict:
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
    specs = _acquisition_specs(
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
        content = None if varies else _build_content(layout, well_index=well_index)
        stage_origin = _stage_origin_um(row, column, layout)
        for image in images:
            if image.well == well:
                _write_image(
                    image.zarr_url,
                    content
                    or _build_content(
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
