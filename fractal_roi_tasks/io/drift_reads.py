"""Read what Calculate Drift needs from one image: one channel's frames at a level, and its scales."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.arguments import ChannelChoice, check_level
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.io.ngio_tables import level_scale, spacing_um

logger = logging.getLogger(__name__)


class ChannelFrames:
    """One channel of a time-lapse at one level, read one time point at a time when asked.

    A `fractal_roi_tasks.drift.estimate.FrameSource`: ``n_frames`` time
    points; ``frame(t)`` reads time point ``t`` of the channel through ngio,
    (Y, X) or (Z, Y, X) in the image's dtype. Nothing is read before it is
    asked for and nothing is kept here.
    """

    def __init__(self, image, n_frames: int, axes: tuple[str, ...], selection: dict) -> None:
        self._image = image
        self.n_frames = n_frames
        self._axes = list(axes)
        self._selection = dict(selection)

    def frame(self, t: int) -> np.ndarray:
        """Time point ``t`` of the channel."""
        if not 0 <= t < self.n_frames:
            raise IndexError(f"time point {t} outside 0-{self.n_frames - 1}")
        return np.asarray(self._image.get_array(axes_order=self._axes, t=int(t), **self._selection))


@dataclass(frozen=True)
class DriftFrames:
    """One channel of a time-lapse at one pyramid level, time first.

    Attributes:
        frames: the frames, (Y, X) or (Z, Y, X) in the image's dtype, read
            one time point at a time on demand (z kept only when the image
            has more than one plane).
        axes: the spatial axes of a frame, ``("y", "x")`` or ``("z", "y", "x")``.
        to_level0: per spatial axis, this level's pixel size over level 0's:
            a shift in pixels of this level times it is in level-0 pixels.
        spacing_um: level-0 pixel size of each spatial axis, micrometers.
        time_step: the NGFF scale of ``t`` (in the image's time unit).
        time_unit: the image's time unit, e.g. ``"second"``.
        channel_label: the label of the channel read.
        wavelength_id: its wavelength id ('' when it has none).
    """

    frames: ChannelFrames
    axes: tuple[str, ...]
    to_level0: tuple[float, ...]
    spacing_um: tuple[float, ...]
    time_step: float
    time_unit: str
    channel_label: str
    wavelength_id: str = ""


def check_time_axis(image, zarr_url: str, reference_time_point: int) -> int:
    """The number of time points, or a clear error for an image Calculate Drift cannot use."""
    if "t" not in image.axes:
        raise InvalidInputError(
            f"{zarr_url!r} has no time axis (its axes are {tuple(image.axes)}); "
            "Calculate Drift needs a time-lapse image with a 't' axis."
        )
    n_frames = int(image.dimensions.get("t"))
    if n_frames < 2:
        raise InvalidInputError(
            f"{zarr_url!r} has a single time point (t = {n_frames}); drift needs at least 2."
        )
    if not 0 <= reference_time_point < n_frames:
        raise InvalidInputError(
            f"reference_time_point {reference_time_point} is outside the image's time points "
            f"0-{n_frames - 1}."
        )
    return n_frames


def read_drift_frames(
    ome_zarr, zarr_url: str, channel: ChannelChoice, level: str, reference_time_point: int
) -> DriftFrames:
    """One channel at `level` as a source of frames, each time point read when asked for.

    Only the chosen channel is read, one time point at a time, when the
    estimator asks for it; nothing is read here but metadata.

    Raises:
        InvalidInputError: no ``t`` axis, one time point, or a reference
            time point that does not exist.
        NotFoundError: an unknown level or channel (naming those that exist).
    """
    check_level(level, ome_zarr.level_paths)
    image = ome_zarr.get_image(path=level)
    n_frames = check_time_axis(image, zarr_url, reference_time_point)
    index = channel.index_in(image.channel_labels, image.wavelength_ids)
    axes = tuple(a for a in ("z", "y", "x") if a in image.axes)
    if "z" in axes and image.dimensions.get("z") == 1:
        axes = axes[1:]  # one plane: a 2D time-lapse
    selection = {"c": index} if "c" in image.axes else {}
    if "z" in image.axes and "z" not in axes:
        selection["z"] = 0
    frames = ChannelFrames(image, n_frames, axes, selection)
    base = ome_zarr.get_image(path=ome_zarr.level_paths[0])
    pixel_size = image.pixel_size
    logger.debug(
        "%d frames of %s at level %s, axes %s, read on demand", n_frames, zarr_url, level, axes
    )
    return DriftFrames(
        frames=frames,
        axes=axes,
        to_level0=tuple(level_scale(ome_zarr, image, axes)),
        spacing_um=spacing_um(base, axes),
        time_step=float(pixel_size.t),
        time_unit=str(pixel_size.time_unit),
        channel_label=image.channel_labels[index],
        wavelength_id=image.wavelength_ids[index] or "",
    )
