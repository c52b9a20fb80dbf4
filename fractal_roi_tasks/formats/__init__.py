"""ROI file formats, one module each, looked up by name.

Every format module offers ``EXTENSION``, ``to_bytes(roi_set, *, context)``,
``from_bytes(data)`` and ``write(path, roi_set, *, context)``; adding a format
is adding a module and one line in `FORMATS`.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from fractal_roi_tasks.errors import InvalidInputError

# name -> module; modules load on first use so a task imports only what it writes.
FORMATS: dict[str, str] = {
    "json": "fractal_roi_tasks.formats.roi_json",
}


def get_format(name: str) -> ModuleType:
    """The format module registered as `name`."""
    try:
        return import_module(FORMATS[name])
    except KeyError:
        raise InvalidInputError(
            f"Unknown ROI export format {name!r}; available: {sorted(FORMATS)}."
        ) from None
