"""Where an image sits: its well and its name, read from the OME-Zarr metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ImageContext:
    """An image's place: `well` (e.g. "B03") is None outside a plate."""

    image: str
    well: str | None

    @property
    def file_prefix(self) -> str:
        """``{well}_{image}_`` in a plate, ``{image}_`` outside one."""
        return f"{self.well}_{self.image}_" if self.well else f"{self.image}_"


def _attrs(group: Path) -> dict:
    """NGFF attributes of a local zarr group (v2 .zattrs or v3 zarr.json)."""
    v3 = group / "zarr.json"
    if v3.is_file():
        attrs = json.loads(v3.read_text()).get("attributes", {})
        return attrs.get("ome", attrs)
    v2 = group / ".zattrs"
    if v2.is_file():
        return json.loads(v2.read_text())
    return {}


def image_context(zarr_url: str) -> ImageContext:
    """The well and image name of the image at `zarr_url`.

    An image is in a plate when its parent group carries ``well`` metadata;
    the well is then named by its row and column (``B/03`` -> ``B03``).
    """
    path = Path(zarr_url.rstrip("/"))
    image = path.name.removesuffix(".zarr")
    if "well" in _attrs(path.parent):
        return ImageContext(image=image, well=f"{path.parent.parent.name}{path.parent.name}")
    return ImageContext(image=image, well=None)
