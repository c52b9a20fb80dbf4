"""Time-lapse sample images: bundled real images drifting along a known path.

A sample time-lapse is one field of view imaged ``n_frames`` times while the
stage drifts: frame ``t`` shows the field with its content displaced by
``displacement_px[t]`` pixels relative to frame 0 (what sits at (y, x) in
frame 0 sits at (y + dy, x + dx) in frame t; in 3D also dz planes, which is
focus drift). Channels:

- ``DAPI``: ngio's cardiomyocyte nuclei stain (its central part, so a drift
  of up to ``MAX_DRIFT_PX`` keeps real content, never a mirror image, in
  the frame);
- ``GFP``: the same field of scikit-image's ``retina`` (green channel);
- label ``nuclei``: the real nuclei labels moved by the displacement
  rounded to whole pixels (labels cannot be moved by a fraction), the same
  in every plane of a stack.

Pixels are camera counts (100 + 3000 x the image, Poisson noise plus
gaussian read noise of 5 counts, uint16). Blank frames hold only the
background and its noise (a missed acquisition, the shutter closed);
defocused frames are blurred by a gaussian of sigma ``DEFOCUS_SIGMA_PX``.
The displacement of a blank or defocused frame is still the path's: it is
what a drift correction must interpolate.

Axes are ``(t, c, y, x)`` (label ``(t, y, x)``) or ``(t, c, z, y, x)``
(label ``(t, z, y, x)``), with the time interval in the NGFF scale of ``t``
(seconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.names import FOV_ROI_TABLE, WELL_ROI_TABLE
from fractal_roi_tasks.sample_data.constants import PIXEL_SIZE_UM, Z_SPACING_UM
from fractal_roi_tasks.sample_data.shifts import shifted_field
from fractal_roi_tasks.sample_data.sources import load_cardiomyocyte_nuclei, load_source

MAX_DRIFT_PX = 64.0
"""Largest displacement (y or x) a sample time-lapse accepts, in pixels."""

DEFOCUS_SIGMA_PX = 6.0
"""Blur of a defocused frame, in pixels."""

_SOURCE_SIZE_PX = 512  # both sources are cut to their central 512 x 512


@dataclass(frozen=True)
class SampleTimelapse:
    """What `make_timelapse` wrote and the truth a drift correction must find.

    Attributes:
        zarr_url: the image written.
        displacement_px: (T, D) content displacement of each frame since
            frame 0, in pixels (z in planes), D = 2 ``(dy, dx)`` or 3
            ``(dz, dy, dx)``. The shift registering frame t onto frame 0 is
            its negative.
        blank_frames: frames holding only background.
        defocused_frames: frames blurred out of focus.
        time_interval_s: time between frames, in seconds.
    """

    zarr_url: str
    displacement_px: np.ndarray
    blank_frames: tuple[int, ...]
    defocused_frames: tuple[int, ...]
    time_interval_s: float


def drift_path(
    n_frames: int,
    *,
    dims: int = 2,
    step_px: float = 0.3,
    slow_px: Sequence[float] = (0.01, 0.02, -0.03),
    jump: tuple[int, Sequence[float]] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A stage drift: slow linear drift plus a random walk, optionally a jump.

    Args:
        n_frames: number of frames T.
        dims: 2 for (dy, dx), 3 for (dz, dy, dx).
        step_px: standard deviation of each random step in y and x (half
            of it in z), pixels per frame.
        slow_px: linear drift per frame, (dz, dy, dx); the last ``dims``
            entries are used.
        jump: (frame, displacement) added from that frame on (a bumped stage).
        seed: random seed of the walk.

    Returns:
        (T, dims) float64 displacement since frame 0 (row 0 is zero).

    >>> path = drift_path(5, step_px=0.0, slow_px=(0.0, 0.5, -1.0), jump=(3, (10.0, 0.0)))
    >>> path.tolist()
    [[0.0, 0.0], [0.5, -1.0], [1.0, -2.0], [11.5, -3.0], [12.0, -4.0]]
    """
    if n_frames < 1 or dims not in (2, 3):
        raise InvalidInputError(f"drift_path needs n_frames >= 1 and dims 2 or 3, got {n_frames}, {dims}.")
    rng = np.random.default_rng(seed)
    slow = np.asarray(slow_px, dtype=np.float64)[-dims:]
    sigma = np.array([step_px / 2, step_px, step_px])[-dims:]
    steps = slow + rng.normal(0.0, 1.0, (n_frames - 1, dims)) * sigma
    path = np.vstack([np.zeros((1, dims)), np.cumsum(steps, axis=0)])
    if jump is not None:
        frame, amount = jump
        path[frame:] += np.asarray(amount, dtype=np.float64)
    return path


def camera_counts(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint16 camera counts of an image in [0, 1]: offset, gain, Poisson and read noise."""
    counts = 100.0 + 3000.0 * np.clip(image, 0.0, None)
    noisy = rng.poisson(counts) + rng.normal(0.0, 5.0, counts.shape)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


def drifting_frames(
    source: np.ndarray,
    path: np.ndarray,
    *,
    size: int,
    z_planes: int = 1,
    origin: Sequence[int] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """uint16 frames (T, Y, X) or (T, Z, Y, X) of ``source`` moving along ``path``.

    Args:
        source: (Y, X) real image with values in about [0, 1].
        path: (T, 2) or (T, 3) displacement since frame 0 (`drift_path`).
        size: frame height and width.
        z_planes: planes per frame (a path of 3 columns moves them in z).
        origin: top-left of frame 0 in ``source``; default centred (the
            mirror image continues the source beyond its edges).
        seed: random seed of the camera noise.
    """
    rng = np.random.default_rng(seed)
    if origin is None:
        origin = tuple(max((n - size) // 2, 0) for n in source.shape)
    shape = (len(path), *([z_planes] if z_planes > 1 else []), size, size)
    frames = np.empty(shape, dtype=np.uint16)
    for t, displacement in enumerate(path):
        field = shifted_field(source, displacement, origin=origin, shape=(size, size), z_planes=z_planes)
        frames[t] = camera_counts(field, rng)
    return frames


def _nuclei_source() -> tuple[np.ndarray, np.ndarray]:
    raw, nuclei = load_cardiomyocyte_nuclei()
    # The raw nuclei are uint16 over the full range; camera_counts wants [0, 1].
    return raw.astype(np.float64) / float(np.iinfo(raw.dtype).max), nuclei


def _moved_labels(labels: np.ndarray, path: np.ndarray, origin: tuple[int, int], size: int) -> np.ndarray:
    """(T, size, size) labels displaced by the whole-pixel part of ``path`` (nearest)."""
    out = np.zeros((len(path), size, size), dtype=np.uint32)
    for t, displacement in enumerate(path):
        dy, dx = (int(np.rint(v)) for v in displacement[-2:])
        out[t] = labels[origin[0] - dy : origin[0] - dy + size, origin[1] - dx : origin[1] - dx + size]
    return out


def _roi_tables(size: int, z_planes: int) -> dict:
    import ngio

    def roi(name: str) -> ngio.Roi:
        return ngio.Roi.from_values(
            name=name,
            slices={
                "x": (0.0, size * PIXEL_SIZE_UM),
                "y": (0.0, size * PIXEL_SIZE_UM),
                "z": (0.0, z_planes * Z_SPACING_UM),
            },
            x_micrometer_original=0.0,
            y_micrometer_original=0.0,
        )

    return {FOV_ROI_TABLE: ngio.RoiTable(rois=[roi("FOV_1")]), WELL_ROI_TABLE: ngio.RoiTable(rois=[roi("well_1")])}


def make_timelapse(
    zarr_url: str,
    *,
    n_frames: int = 12,
    size: int = 256,
    z_planes: int = 1,
    path: np.ndarray | None = None,
    blank_frames: Sequence[int] = (),
    defocused_frames: Sequence[int] = (),
    time_interval_s: float = 60.0,
    seed: int = 0,
    levels: int = 2,
    ngff_version: str = "0.4",
    overwrite: bool = False,
) -> SampleTimelapse:
    """Write a drifting time-lapse OME-Zarr image with its nuclei label and ROI tables.

    Args:
        zarr_url: where to write the image.
        n_frames: number of time points (ignored when ``path`` is given).
        size: frame height and width, at most 512 - 2 x the largest drift.
        z_planes: planes per frame; 1 writes ``(t, c, y, x)``.
        path: (T, 2) or (T, 3) displacement since frame 0 (default
            `drift_path` with ``seed``; 3 columns for a stack).
        blank_frames, defocused_frames: frames to blank out or defocus.
        time_interval_s: time between frames, written to the ``t`` scale.
        seed: random seed of the default path and of the noise.
        levels, ngff_version, overwrite: as ngio's ``create_ome_zarr_from_array``.

    Returns:
        The truth (`SampleTimelapse`).
    """
    from scipy import ndimage

    from fractal_roi_tasks.sample_data.writing import write_sample_channels

    if path is None:
        path = drift_path(n_frames, dims=3 if z_planes > 1 else 2, seed=seed)
    path = np.asarray(path, dtype=np.float64)
    reach = float(np.abs(path[:, -2:]).max(initial=0.0))
    if reach > MAX_DRIFT_PX or size + 2 * int(np.ceil(reach)) > _SOURCE_SIZE_PX:
        raise InvalidInputError(
            f"A sample time-lapse of {size} px frames can drift at most "
            f"{min(MAX_DRIFT_PX, (_SOURCE_SIZE_PX - size) // 2)} px; the path reaches {reach:.1f} px."
        )
    wrong = [t for t in (*blank_frames, *defocused_frames) if not 0 <= t < len(path)]
    if wrong:
        raise InvalidInputError(f"Frames {wrong} do not exist: the time-lapse has frames 0-{len(path) - 1}.")
    nuclei_image, nuclei_labels = _nuclei_source()
    retina = load_source("retina")
    retina = retina[(retina.shape[0] - _SOURCE_SIZE_PX) // 2 :, (retina.shape[1] - _SOURCE_SIZE_PX) // 2 :]
    origin = ((_SOURCE_SIZE_PX - size) // 2,) * 2
    channels = [
        drifting_frames(source, path, size=size, z_planes=z_planes, origin=origin, seed=seed + k)
        for k, source in enumerate((nuclei_image, retina))
    ]
    image = np.stack(channels, axis=1)  # (T, C, [Z], Y, X)
    rng = np.random.default_rng(seed + 7)
    for t in defocused_frames:
        blur = (0, *([0] if z_planes > 1 else []), DEFOCUS_SIGMA_PX, DEFOCUS_SIGMA_PX)
        image[t] = ndimage.gaussian_filter(image[t].astype(np.float32), sigma=blur).astype(np.uint16)
    for t in blank_frames:
        image[t] = camera_counts(np.zeros(image.shape[1:]), rng)
    labels = _moved_labels(nuclei_labels, path, origin, size)
    if z_planes > 1:
        labels = np.repeat(labels[:, None], z_planes, axis=1)
    write_sample_channels(
        zarr_url,
        image,
        labels,
        chunk_yx=(size, size),
        tables=_roi_tables(size, z_planes),
        levels=levels,
        ngff_version=ngff_version,
        overwrite=overwrite,
        time_interval_s=time_interval_s,
    )
    return SampleTimelapse(
        zarr_url=str(zarr_url),
        displacement_px=path,
        blank_frames=tuple(int(t) for t in blank_frames),
        defocused_frames=tuple(int(t) for t in defocused_frames),
        time_interval_s=float(time_interval_s),
    )
