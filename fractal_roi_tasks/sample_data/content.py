"""The pixels of a whole sample image: its FOVs laid side by side, as a converter writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.sample_data.artefacts import add_noise, add_saturated_blob, background_fov
from fractal_roi_tasks.sample_data.constants import CHANNELS, FOV_SIZE_PX
from fractal_roi_tasks.sample_data.fovs import (
    dihedral,
    nuclei_stacks,
    retina_crop_origin,
    retina_stack,
    sample_fov,
    sample_fov_labels,
)

# Gaussian noise (grey values) of an empty FOV of a plate made without noise.
_EMPTY_FOV_NOISE = 300.0


@dataclass(frozen=True)
class FovLayout:
    """Where the FOVs of a sample image sit.

    Attributes:
        fov_grid: (rows, columns) of FOVs.
        z_planes: number of planes.
    """

    fov_grid: tuple[int, int]
    z_planes: int

    @property
    def n_fovs(self) -> int:
        return self.fov_grid[0] * self.fov_grid[1]

    @property
    def fov_shape(self) -> tuple[int, ...]:
        """Shape of one FOV in the image's spatial axes ((z,) y, x)."""
        yx = (FOV_SIZE_PX, FOV_SIZE_PX)
        return yx if self.z_planes == 1 else (self.z_planes, *yx)

    @property
    def yx_shape(self) -> tuple[int, int]:
        return (self.fov_grid[0] * FOV_SIZE_PX, self.fov_grid[1] * FOV_SIZE_PX)

    def fov_origins_px(self) -> list[tuple[int, int]]:
        """Top-left (y, x) pixel of every FOV, in row-major order."""
        rows, columns = self.fov_grid
        return [
            (r * FOV_SIZE_PX, c * FOV_SIZE_PX)
            for r in range(rows)
            for c in range(columns)
        ]


@dataclass(frozen=True)
class SampleContent:
    """The pixels of one sample image.

    Attributes:
        image: (C, Z, Y, X) uint16.
        label: (Z, Y, X) uint32, ids unique across FOVs.
    """

    image: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class FovSpec:
    """How one FOV of one acquisition differs from the plain sample.

    Attributes:
        displacement: (dz, dy, dx) of the content in pixels (z in planes).
        empty: no sample in the field: background and noise only.
        artefact: a saturated blob in the DAPI channel.
    """

    displacement: tuple[float, float, float] = (0.0, 0.0, 0.0)
    empty: bool = False
    artefact: bool = False


PLAIN_FOV = FovSpec()


def build_content(
    layout: FovLayout,
    *,
    well_index: int,
    specs: Sequence[FovSpec] | None = None,
    noise: float = 0.0,
    seed: Sequence[int] = (0,),
) -> SampleContent:
    """Lay the FOVs of the ``well_index``-th well of a plate side by side.

    ``specs`` (one per FOV) displace, empty or spoil FOVs; ``noise`` adds
    gaussian noise of that many grey values to every channel, seeded by
    ``seed`` plus the FOV and channel.
    """
    specs = list(specs) if specs is not None else [PLAIN_FOV] * layout.n_fovs
    raw_stack, label_stack, n_ids = nuclei_stacks(layout.z_planes)
    retina = retina_stack(layout.z_planes)
    image = np.empty((len(CHANNELS), layout.z_planes, *layout.yx_shape), np.uint16)
    label = np.empty((layout.z_planes, *layout.yx_shape), np.uint32)
    for fov_index, (y0, x0) in enumerate(layout.fov_origins_px()):
        spec = specs[fov_index]
        global_index = well_index * layout.n_fovs + fov_index
        window = (slice(y0, y0 + FOV_SIZE_PX), slice(x0, x0 + FOV_SIZE_PX))
        z_shape = (layout.z_planes, FOV_SIZE_PX, FOV_SIZE_PX)
        if spec.empty:
            for channel in range(len(CHANNELS)):
                image[(channel, slice(None), *window)] = background_fov(
                    z_shape,
                    read_noise=noise or _EMPTY_FOV_NOISE,
                    seed=(*seed, fov_index, channel),
                )
            label[(slice(None), *window)] = 0
            continue
        if spec.displacement == (0.0, 0.0, 0.0):
            dapi = dihedral(raw_stack, global_index)
            cy, cx = retina_crop_origin(global_index)
            gfp = retina[:, cy : cy + FOV_SIZE_PX, cx : cx + FOV_SIZE_PX]
            fov_labels = dihedral(label_stack, global_index)
        else:
            dapi, gfp = (
                sample_fov(
                    global_index, spec.displacement, z_planes=layout.z_planes, channel=name
                ).reshape(z_shape)
                for name, _ in CHANNELS
            )
            fov_labels = sample_fov_labels(
                global_index, spec.displacement, z_planes=layout.z_planes
            ).reshape(z_shape)
        if spec.artefact:
            dapi = add_saturated_blob(dapi)
        if noise > 0:
            dapi = add_noise(dapi, read_noise=noise, seed=(*seed, fov_index, 0))
            gfp = add_noise(gfp, read_noise=noise, seed=(*seed, fov_index, 1))
        image[(0, slice(None), *window)] = dapi
        image[(1, slice(None), *window)] = gfp
        offset = np.uint32(fov_index * n_ids)
        label[(slice(None), *window)] = np.where(fov_labels > 0, fov_labels + offset, 0)
    return SampleContent(image=image, label=label)
