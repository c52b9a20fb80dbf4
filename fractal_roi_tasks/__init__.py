"""Fractal tasks for OME-Zarr: ROIs, multiplexing registration, stitching."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fractal-roi-tasks")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"
