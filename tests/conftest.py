"""Shared fixtures: sample plates and images built from the real images shipped in packages."""

import shutil
from dataclasses import replace

import pytest

from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei, make_plate

_PLATES: dict = {}


@pytest.fixture(scope="session")
def _plate_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("plates")


@pytest.fixture(scope="session")
def nuclei():
    """ngio's real cardiomyocyte nuclei label image (2D, uint32); tests must not modify it."""
    return load_cardiomyocyte_nuclei()[1]


@pytest.fixture(params=["0.4", "0.5"])
def plate(request, _plate_cache, tmp_path):
    """A 2-well, 2x2-FOV 2D plate (NGFF 0.4 and 0.5), one acquisition."""
    return _cached_plate(_plate_cache, tmp_path, ngff_version=request.param)


@pytest.fixture
def plate_v04(_plate_cache, tmp_path):
    """The NGFF 0.4 2D plate only."""
    return _cached_plate(_plate_cache, tmp_path, ngff_version="0.4")


@pytest.fixture
def plate_3d(_plate_cache, tmp_path):
    """A 3D (5 planes) NGFF 0.4 plate."""
    return _cached_plate(_plate_cache, tmp_path, ngff_version="0.4", z_planes=5)


def _cached_plate(cache, tmp_path, *, ngff_version, z_planes=1):
    key = (ngff_version, z_planes)
    source = cache / f"v{ngff_version}_z{z_planes}"
    if key not in _PLATES:
        _PLATES[key] = make_plate(source, ngff_version=ngff_version, z_planes=z_planes)
    cached = _PLATES[key]
    target = tmp_path / source.name
    shutil.copytree(source, target)
    plate_url = cached.plate_url.replace(str(source), str(target))
    images = [
        replace(img, zarr_url=img.zarr_url.replace(str(source), str(target)))
        for img in cached.images
    ]
    return replace(cached, plate_url=plate_url, images=images)
