"""Overlapping tiles cut from bundled real images at known sub-pixel positions.

The ground truth for stitching: `tile_grid` lays a grid of tiles over a real
image (see `fractal_roi_tasks.sample_data.load_source`), moves every tile off
its nominal grid place by a random stage error, cuts it there with sub-pixel
precision (cubic spline), and adds what a microscope adds: vignetting and
camera noise. It keeps what a stitcher should recover: the true position of
every tile, next to the nominal one the stage reports.

Frames and units: everything is in pixels of the tiles. The *mosaic frame*
has its origin at the top-left of the returned ``mosaic`` array;
``positions_px[i]`` is where tile ``i``'s pixel (0, 0) lies in it, so
``tiles[i][y, x] == mosaic(positions_px[i] + (y, x))`` (interpolated, before
vignetting and noise). Tiles are numbered row-major.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

_CUT_PAD_PX = 8
"""Extra pixels around a tile for the spline interpolation."""


@dataclass(frozen=True)
class TileGrid:
    """Tiles of one mosaic and their ground truth.

    Attributes:
        tiles: (N, Y, X) or (N, Z, Y, X) float32, row-major over the grid,
            vignetting and noise included.
        positions_px: (N, 2) float64, true (y, x) of each tile's top-left pixel
            in the mosaic frame.
        stage_px: (N, 2) float64, the nominal grid positions, what the stage
            reports (``positions_px`` minus the stage error).
        grid: (rows, columns) of tiles.
        mosaic: ((Z,) Y, X) float32, the image the tiles were cut from.
        labels: (N, (Z,) Y, X) uint32 tile-by-tile labels (each tile numbered
            from 1 on its own, a true object cut by the tile border, or
            split into pieces by it, gets one id per piece), or None.
        object_labels: ((Z,) Y, X) uint32, the true objects in the mosaic
            frame, or None.
    """

    tiles: np.ndarray
    positions_px: np.ndarray
    stage_px: np.ndarray
    grid: tuple[int, int]
    mosaic: np.ndarray
    labels: np.ndarray | None = None
    object_labels: np.ndarray | None = None

    @property
    def tile_shape(self) -> tuple[int, ...]:
        return tuple(self.tiles.shape[1:])

    @property
    def label_positions_px(self) -> np.ndarray:
        """(N, 2) int64, where each tile's labels were cut: the rounded positions."""
        return np.round(self.positions_px).astype(np.int64)


def _check(grid, tile_shape, overlap, jitter_px, noise, vignetting, magnify, z_planes) -> None:
    if len(grid) != 2 or min(grid) < 1:
        raise InvalidInputError(f"grid must be (rows, columns) >= 1, got {grid!r}.")
    if len(tile_shape) != 2 or min(tile_shape) < 16:
        raise InvalidInputError(f"tile_shape must be (height, width) >= 16, got {tile_shape!r}.")
    if not 0 <= overlap < 0.9:
        raise InvalidInputError(f"overlap must be a fraction in [0, 0.9), got {overlap!r}.")
    for name, value in (("jitter_px", jitter_px), ("noise", noise), ("vignetting", vignetting)):
        if not value >= 0:
            raise InvalidInputError(f"{name} must be >= 0, got {value!r}.")
    if vignetting >= 1:
        raise InvalidInputError(f"vignetting must be below 1, got {vignetting!r}.")
    if magnify < 1 or z_planes < 1:
        raise InvalidInputError(f"magnify and z_planes must be >= 1, got {magnify!r}, {z_planes!r}.")


def _mirror_to(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``image`` continued by mirror symmetry to at least ``shape`` (y, x)."""
    extra = [(0, max(0, want - have)) for want, have in zip(shape, image.shape, strict=True)]
    while any(after > 0 for _, after in extra):
        step = [(0, min(after, have)) for (_, after), have in zip(extra, image.shape, strict=True)]
        image = np.pad(image, step, mode="symmetric")
        extra = [(0, max(0, want - have)) for want, have in zip(shape, image.shape, strict=True)]
    return image[: shape[0], : shape[1]]


def _stack(plane: np.ndarray, z_planes: int) -> np.ndarray:
    """A defocus stack around ``plane``: gaussian sigma ``|k - mid|`` in plane ``k``."""
    from scipy import ndimage

    if z_planes == 1:
        return plane
    mid = z_planes // 2
    return np.stack(
        [plane if k == mid else ndimage.gaussian_filter(plane, abs(k - mid)) for k in range(z_planes)]
    )


def _cut(mosaic: np.ndarray, position: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mosaic`` sampled at ``position + (y, x)`` on a (Y, X) grid (cubic spline)."""
    from scipy import ndimage

    start = np.floor(position).astype(int)
    fraction = position - start
    pad = _CUT_PAD_PX
    box = (
        ...,
        slice(start[0] - pad, start[0] + shape[0] + pad),
        slice(start[1] - pad, start[1] + shape[1] + pad),
    )
    crop = mosaic[box].astype(np.float32)
    shift = (0,) * (crop.ndim - 2) + tuple(-fraction)
    moved = ndimage.shift(crop, shift, order=3, mode="mirror")
    return moved[..., pad : pad + shape[0], pad : pad + shape[1]]


def _vignette(shape: tuple[int, int], strength: float) -> np.ndarray:
    """1 at the centre falling to ``1 - strength`` at the corners (quadratic)."""
    y = (np.arange(shape[0]) - (shape[0] - 1) / 2) / (shape[0] / 2)
    x = (np.arange(shape[1]) - (shape[1] - 1) / 2) / (shape[1] / 2)
    radius2 = (y[:, None] ** 2 + x[None, :] ** 2) / 2
    return (1 - strength * radius2).astype(np.float32)


def tile_grid(
    source: np.ndarray,
    *,
    grid: tuple[int, int] = (3, 3),
    tile_shape: tuple[int, int] = (256, 256),
    overlap: float = 0.15,
    jitter_px: float = 3.0,
    noise: float = 0.0,
    vignetting: float = 0.0,
    magnify: int = 1,
    z_planes: int = 1,
    object_labels: np.ndarray | None = None,
    seed: int = 0,
) -> TileGrid:
    """Cut a grid of overlapping tiles from ``source`` at known sub-pixel positions.

    Nominal tile ``(r, c)`` starts at ``margin + (r * step_y, c * step_x)``
    with ``step = round(tile * (1 - overlap))`` and a margin of ``4 *
    jitter_px + 8`` pixels; its true position adds a stage error drawn from
    a gaussian of ``jitter_px`` per axis, clipped to 3 ``jitter_px``.
    ``source`` (magnified, then continued by mirror symmetry where the mosaic
    is larger) is the mosaic.

    Args:
        source: (Y, X) real image, e.g. ``load_source("retina")``.
        grid: (rows, columns) of tiles.
        tile_shape: (height, width) of a tile in pixels.
        overlap: nominal overlap of neighbours, as a fraction of the tile.
        jitter_px: standard deviation of the stage error in pixels.
        noise: standard deviation of gaussian noise added to each tile, as a
            fraction of ``source``'s range (max - min).
        vignetting: each tile is multiplied by 1 at its centre falling to
            ``1 - vignetting`` at its corners (same for every tile).
        magnify: enlarge ``source`` by this factor first (cubic), making its
            texture coarser.
        z_planes: 1 for 2D tiles; more for a defocus stack (planes blurred by
            a gaussian of sigma ``|k - z_planes // 2|``), every plane of a tile
            at the same (y, x) position.
        object_labels: (Y, X) integer label image of the objects in ``source``
            (same shape); the tiles then carry labels, cut at the rounded
            positions and numbered tile by tile.
        seed: seed of the stage errors and the noise.

    Returns:
        A `TileGrid`.

    Raises:
        InvalidInputError: (a ValueError) for an invalid option.

    >>> from fractal_roi_tasks.sample_data import load_source
    >>> tiles = tile_grid(load_source("coins"), grid=(2, 2), tile_shape=(96, 96))
    >>> tiles.tiles.shape, tiles.positions_px.shape
    ((4, 96, 96), (4, 2))
    """
    from scipy import ndimage
    from skimage.measure import label as connected

    _check(grid, tile_shape, overlap, jitter_px, noise, vignetting, magnify, z_planes)
    source = np.asarray(source, dtype=np.float32)
    if source.ndim != 2:
        raise InvalidInputError(f"source must be a 2D image, got shape {source.shape}.")
    if object_labels is not None and np.shape(object_labels) != source.shape:
        raise InvalidInputError(
            f"object_labels has shape {np.shape(object_labels)}, source {source.shape}: they must match."
        )
    rng = np.random.default_rng(seed)
    rows, columns = grid
    step = np.array([round(t * (1 - overlap)) for t in tile_shape])
    margin = math.ceil(4 * jitter_px) + _CUT_PAD_PX
    mosaic_shape = (
        2 * margin + (rows - 1) * step[0] + tile_shape[0],
        2 * margin + (columns - 1) * step[1] + tile_shape[1],
    )
    if magnify > 1:
        source = ndimage.zoom(source, magnify, order=3)
    plane = _mirror_to(source, mosaic_shape)
    mosaic = _stack(plane, z_planes)
    stage = np.array(
        [(margin + r * step[0], margin + c * step[1]) for r in range(rows) for c in range(columns)],
        dtype=np.float64,
    )
    error = np.clip(rng.normal(0.0, jitter_px, stage.shape), -3 * jitter_px, 3 * jitter_px)
    positions = stage + error

    tiles = np.stack([_cut(mosaic, p, tile_shape) for p in positions])
    if vignetting:
        tiles *= _vignette(tile_shape, vignetting)
    if noise:
        spread = float(source.max() - source.min()) or 1.0
        tiles += rng.normal(0.0, noise * spread, tiles.shape).astype(np.float32)

    labels = truth = None
    if object_labels is not None:
        labels_in = np.asarray(object_labels)
        if magnify > 1:
            labels_in = np.kron(labels_in, np.ones((magnify, magnify), labels_in.dtype))
        # Mirror copies of an object are new objects (joined to it across the edge).
        truth = connected(_mirror_to(labels_in, mosaic_shape), background=0).astype(np.uint32)
        cuts = []
        for p in np.round(positions).astype(int):
            crop = truth[p[0] : p[0] + tile_shape[0], p[1] : p[1] + tile_shape[1]]
            cuts.append(connected(crop, background=0).astype(np.uint32))
        labels = np.stack(cuts)
        if z_planes > 1:
            labels = np.repeat(labels[:, None], z_planes, axis=1)
            truth = np.repeat(truth[None], z_planes, axis=0)
    return TileGrid(
        tiles=tiles.astype(np.float32, copy=False),
        positions_px=positions,
        stage_px=stage,
        grid=(rows, columns),
        mosaic=mosaic.astype(np.float32, copy=False),
        labels=labels,
        object_labels=truth,
    )

