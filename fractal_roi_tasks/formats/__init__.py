"""ROI file formats, one module each, looked up by name.

Every format module offers ``EXTENSION`` (e.g. ".roi.zip"),
``to_bytes(roi_set, *, context)``, ``from_bytes(data)`` (the format's parsed
content) and ``write(path, roi_set, *, context)``; adding a format is adding
a module and one line in `FORMATS`; a module that needs an optional package
also offers ``check_available()``. `context` is a dict describing where the
ROIs come from: ``label_name``, ``well``, ``image``, ``level``, ``zarr_url``
and ``scale`` (per axis, from the ROI set's pixels to full-resolution pixels;
see `coordinates`). Each module converts to its consumer's conventions itself.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from fractal_roi_tasks.errors import InvalidInputError

# name -> module; modules load on first use so a task imports only what it writes.
FORMATS: dict[str, str] = {
    "json": "fractal_roi_tasks.formats.roi_json",
    "imagej": "fractal_roi_tasks.formats.imagej",
    "geojson": "fractal_roi_tasks.formats.geojson",
    "ome_xml": "fractal_roi_tasks.formats.ome_xml",
}


def get_format(name: str) -> ModuleType:
    """The format module registered as `name`, checked to be usable.

    A format needing an optional package raises its install hint here, so a
    task can refuse it before writing anything.
    """
    try:
        module = import_module(FORMATS[name])
    except KeyError:
        raise InvalidInputError(
            f"Unknown ROI export format {name!r}; available: {sorted(FORMATS)}."
        ) from None
    check = getattr(module, "check_available", None)
    if check is not None:
        check()
    return module
