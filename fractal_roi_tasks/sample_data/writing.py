"""Writing one sample image as OME-Zarr with ngio: channels, pyramid, label and ROI tables."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from fractal_roi_tasks.names import FOV_ROI_TABLE, WELL_ROI_TABLE
from fractal_roi_tasks.sample_data.constants import (
    CHANNELS,
    FOV_SIZE_PX,
    NUCLEI_LABEL,
    PIXEL_SIZE_UM,
    Z_SPACING_UM,
)
from fractal_roi_tasks.sample_data.content import FovLayout, SampleContent

logger = logging.getLogger(__name__)

# A plausible stage: a 96-well plate, well A01 centred at (y, x) below, wells
# 9 mm apart. Only used to fill the `*_micrometer_original` columns.
_WELL_PITCH_UM = 9000.0
_A01_CENTRE_UM = (11240.0, 14380.0)


def roi_tables(layout: FovLayout, *, stage_origin_um: tuple[float, float]) -> dict:
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


def well_stage_origin_um(row: str, column: str, layout: FovLayout) -> tuple[float, float]:
    """Stage (y, x) of the top-left of the image of a well: FOVs around its centre."""
    row_index = 0
    for letter in row:
        row_index = row_index * 26 + (ord(letter) - ord("A") + 1)
    height, width = (n * PIXEL_SIZE_UM for n in layout.yx_shape)
    centre_y = _A01_CENTRE_UM[0] + (row_index - 1) * _WELL_PITCH_UM
    centre_x = _A01_CENTRE_UM[1] + (int(column) - 1) * _WELL_PITCH_UM
    return centre_y - height / 2, centre_x - width / 2


def write_converter_image(
    zarr_url: str,
    image: np.ndarray,
    *,
    channels: Sequence[tuple[str, str]],
    pixel_size_um: float,
    z_spacing_um: float,
    chunk_yx: Sequence[int],
    levels: int,
    ngff_version: str,
    overwrite: bool,
    tables: Mapping[str, object],
    labels: Mapping[str, np.ndarray] | None = None,
    time_interval_s: float | None = None,
) -> None:
    """Write an image the way a Fractal converter does, with its tables and label images.

    Args:
        zarr_url: where to write the image.
        image: (C, Y, X) or (C, Z, Y, X) array, one channel per entry of ``channels``;
            (T, C, Y, X) or (T, C, Z, Y, X) when ``time_interval_s`` is given.
        channels: (label, wavelength_id) of each channel.
        pixel_size_um: pixel size in y and x; ``z_spacing_um`` that of the planes.
        chunk_yx: chunk height and width; a chunk holds one channel and one plane.
        levels, ngff_version, overwrite: as ngio's ``create_ome_zarr_from_array`` takes them.
        tables: ngio tables by name.
        labels: uint32 label images by name, of the image's shape without ``c``.
        time_interval_s: seconds between time points: the image has a leading ``t`` axis.
    """
    import ngio

    timed = time_interval_s is not None
    spatial = image.ndim - (2 if timed else 1)
    axes = ("t",) * timed + ("c", *("z",) * (spatial == 3), "y", "x")
    container = ngio.create_ome_zarr_from_array(
        store=zarr_url,
        array=image,
        pixelsize=pixel_size_um,
        z_spacing=z_spacing_um,
        time_spacing=time_interval_s if timed else 1.0,
        levels=levels,
        axes_names=axes,
        channels_meta=[
            ngio.Channel.default_init(label=name, wavelength_id=wavelength_id)
            for name, wavelength_id in channels
        ],
        ngff_version=ngff_version,
        chunks=(*(1,) * (image.ndim - 2), *chunk_yx),
        overwrite=overwrite,
        consolidation_mode="auto",
    )
    for name, label_image in (labels or {}).items():
        label = container.derive_label(name, dtype="uint32")
        label.set_array(label_image)
        label.consolidate(mode="auto")
    for name, table in tables.items():
        container.add_table(name, table)


SAMPLE_IMAGE_SETTINGS = {
    "channels": CHANNELS,
    "pixel_size_um": PIXEL_SIZE_UM,
    "z_spacing_um": Z_SPACING_UM,
}
"""What every sample image shares: its channels (DAPI, GFP) and pixel sizes, as
`write_converter_image` takes them."""


def write_sample_channels(
    zarr_url: str, image: np.ndarray, label: np.ndarray, **write_options
) -> None:
    """Write an image of the sample channels and its nuclei label, at the sample pixel sizes.

    Args:
        zarr_url: where to write the image.
        image: the channels, as `write_converter_image` takes them.
        label: the nuclei label image (uint32, the image's shape without ``c``).
        **write_options: the other arguments of `write_converter_image`
            (``chunk_yx``, ``tables``, ``levels``, ``ngff_version``,
            ``overwrite``, optionally ``time_interval_s``).
    """
    write_converter_image(
        zarr_url, image, **SAMPLE_IMAGE_SETTINGS, labels={NUCLEI_LABEL: label}, **write_options
    )


def write_image(
    zarr_url: str,
    content: SampleContent,
    layout: FovLayout,
    *,
    stage_origin_um: tuple[float, float],
    ngff_version: str,
    levels: int,
    overwrite: bool,
) -> None:
    """Write one sample image (channels, label, ROI tables) at ``zarr_url``."""
    if layout.z_planes == 1:
        image, label = content.image[:, 0], content.label[0]
    else:
        image, label = content.image, content.label
    write_sample_channels(
        zarr_url,
        image,
        label,
        chunk_yx=(FOV_SIZE_PX, FOV_SIZE_PX),
        tables=roi_tables(layout, stage_origin_um=stage_origin_um),
        levels=levels,
        ngff_version=ngff_version,
        overwrite=overwrite,
    )
    logger.debug(
        "Wrote sample image %s: shape %s, %d FOVs, %d levels.",
        zarr_url,
        image.shape,
        layout.n_fovs,
        levels,
    )
