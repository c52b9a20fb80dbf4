"""Argument models shared by the tasks (the forms a Fractal user fills in)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fractal_roi_tasks.errors import NotFoundError
from fractal_roi_tasks.names import FOV_ROI_TABLE, check_name

_FORM = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class ChannelChoice(BaseModel):
    """A channel of the image, chosen by wavelength id or by label (one of the two)."""

    model_config = _FORM

    wavelength_id: Optional[str] = None
    """Wavelength id of the channel, e.g. `A01_C01`."""
    label: Optional[str] = None
    """Label (name) of the channel, e.g. `DAPI`."""

    @model_validator(mode="after")
    def _exactly_one(self) -> "ChannelChoice":
        if (self.wavelength_id is None) == (self.label is None):
            raise ValueError(
                "Give the channel either by `wavelength_id` or by `label`, not both "
                f"and not neither (got wavelength_id={self.wavelength_id!r}, "
                f"label={self.label!r})."
            )
        return self

    def index_in(self, labels: list[str], wavelength_ids: list[str | None]) -> int:
        """Index of this channel among the image's channels, or a clear error."""
        if self.label is not None:
            if self.label in labels:
                return labels.index(self.label)
            raise NotFoundError(
                f"Channel label {self.label!r} not found; the image has channels {labels}."
            )
        if self.wavelength_id in wavelength_ids:
            return wavelength_ids.index(self.wavelength_id)
        raise NotFoundError(
            f"Channel wavelength_id {self.wavelength_id!r} not found; the image has "
            f"wavelength ids {wavelength_ids}."
        )


class SegmentationOptions(BaseModel):
    """Segment a channel into the label image first (threshold, then split touching objects)."""

    model_config = _FORM

    channel: ChannelChoice
    """The channel to segment."""
    method: Literal["otsu", "li", "triangle", "manual"] = "li"
    """How the threshold is chosen: automatically, once over the whole image (li, otsu, triangle), or `manual`."""
    threshold: Optional[float] = None
    """The threshold in image intensity units; only with method `manual`."""
    smoothing_sigma: float = Field(default=1.0, ge=0)
    """Gaussian smoothing before thresholding, in pixels (0: none)."""
    split_touching: bool = True
    """Split touching objects (distance transform and watershed)."""
    split_min_distance_px: int = Field(default=5, ge=1)
    """Smallest distance between the centres of two objects split apart, in pixels."""
    min_area_px: int = Field(default=100, ge=0)
    """Objects smaller than this (pixels) are dropped from the label image."""
    max_area_px: Optional[int] = Field(default=None, ge=1)
    """Objects larger than this (pixels) are dropped from the label image (empty: no limit)."""
    roi_table: str = FOV_ROI_TABLE
    """Segment region by region, through this ROI table; ids stay unique across the image."""
    overwrite: bool = False
    """Replace the label image if it already exists."""

    @model_validator(mode="after")
    def _threshold_matches_method(self) -> "SegmentationOptions":
        if self.method == "manual" and self.threshold is None:
            raise ValueError("method 'manual' needs a `threshold` value.")
        if self.method != "manual" and self.threshold is not None:
            raise ValueError(
                f"`threshold` is only used with method 'manual', got method {self.method!r}; "
                "remove the threshold or set method to 'manual'."
            )
        if self.max_area_px is not None and self.max_area_px < self.min_area_px:
            raise ValueError(
                f"max_area_px ({self.max_area_px}) is below min_area_px ({self.min_area_px})."
            )
        check_name(self.roi_table, what="roi_table")
        return self


def check_level(level: str, available: list[str]) -> str:
    """`level` if it is one of the image's pyramid levels, else a clear error."""
    if level not in available:
        raise NotFoundError(
            f"Pyramid level {level!r} does not exist; the image has levels {available}."
        )
    return level


class ReferenceImage(BaseModel):
    """Set by the init part of Calculate Registration: the image to register against."""

    model_config = _FORM

    reference_zarr_url: str
    """The reference acquisition's image of the same well."""


class WellAcquisitions(BaseModel):
    """Set by the init part of Find Registration Consensus: the images of one well."""

    model_config = _FORM

    zarr_url_list: list[str]
    """Every acquisition's image of the well, the reference included."""
