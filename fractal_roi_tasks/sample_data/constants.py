"""The geometry and names every sample image shares: pixel sizes, FOV size, channels, label."""

from __future__ import annotations

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
