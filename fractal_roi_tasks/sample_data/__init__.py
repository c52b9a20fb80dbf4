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

Overlapping tiles cut at known sub-pixel positions (`tile_grid`, written by
`write_tiles` and `make_tiled_plate`) are the ground truth for stitching.

Every public name is importable from here. The modules, in the order they
build on each other:

- ``constants``: pixel sizes, FOV size, channels, label name;
- ``sources``: the bundled real images (`load_source`, `load_cardiomyocyte_nuclei`);
- ``shifts``: fields displaced by known sub-pixel amounts (`shifted_field`, `random_shifts`);
- ``artefacts``: camera noise, saturated debris, empty fields;
- ``fovs``: the pixels of one FOV (`sample_fov`, `sample_fov_labels`);
- ``content``: the FOVs of one image laid side by side;
- ``options``: checking `make_plate`'s and `make_image`'s options;
- ``writing``: one sample image as OME-Zarr with its ROI tables;
- ``plates``: `make_plate`, `make_image` and the `SamplePlate` they describe;
- ``tiles``: tiles cut from a real mosaic (`tile_grid`, `TileGrid`);
- ``tile_writing``: tiles as a converter's OME-Zarr image or plate;
- ``timelapse``: a field drifting along a known path over time (`make_timelapse`,
  `drift_path`), written ``(t, c, [z,] y, x)``.
"""

from fractal_roi_tasks.sample_data.artefacts import add_noise, add_saturated_blob, background_fov
from fractal_roi_tasks.sample_data.constants import (
    CHANNELS,
    FOV_SIZE_PX,
    NUCLEI_LABEL,
    PIXEL_SIZE_UM,
    Z_SPACING_UM,
)
from fractal_roi_tasks.sample_data.fovs import sample_fov, sample_fov_labels
from fractal_roi_tasks.sample_data.plates import (
    FovTruth,
    SampleImage,
    SamplePlate,
    make_image,
    make_plate,
)
from fractal_roi_tasks.sample_data.shifts import random_shifts, shifted_field
from fractal_roi_tasks.sample_data.sources import (
    SOURCE_NAMES,
    load_cardiomyocyte_nuclei,
    load_source,
)
from fractal_roi_tasks.sample_data.tile_writing import (
    TILE_CHANNELS,
    converter_array,
    make_tiled_plate,
    write_tiles,
)
from fractal_roi_tasks.sample_data.tiles import TileGrid, tile_grid
from fractal_roi_tasks.sample_data.timelapse import (
    SampleTimelapse,
    drift_path,
    drifting_frames,
    make_timelapse,
)

__all__ = [
    "CHANNELS",
    "FOV_SIZE_PX",
    "NUCLEI_LABEL",
    "PIXEL_SIZE_UM",
    "SOURCE_NAMES",
    "TILE_CHANNELS",
    "Z_SPACING_UM",
    "FovTruth",
    "SampleImage",
    "SamplePlate",
    "SampleTimelapse",
    "TileGrid",
    "add_noise",
    "add_saturated_blob",
    "background_fov",
    "converter_array",
    "drift_path",
    "drifting_frames",
    "load_cardiomyocyte_nuclei",
    "load_source",
    "make_image",
    "make_plate",
    "make_timelapse",
    "make_tiled_plate",
    "random_shifts",
    "sample_fov",
    "sample_fov_labels",
    "shifted_field",
    "tile_grid",
    "write_tiles",
]
