"""Figure panels as RGB arrays (uint8, (Y, X, 3)) drawn from numpy arrays.

Every function here takes arrays and returns a new array; nothing reads files
or imports matplotlib, so tests can check what a panel shows.
"""

from __future__ import annotations

import numpy as np

OUTLINE_RGB = (255, 220, 0)
BORDER_RGB = (255, 60, 60)


def to_grey(image: np.ndarray) -> np.ndarray:
    """Scale a (Y, X) image to [0, 1] between its 1st and 99.5th percentiles."""
    image = np.asarray(image, dtype=float)
    low, high = np.percentile(image, (1.0, 99.5)) if image.size else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """A (Y, X) image as a grey uint8 RGB array."""
    grey = (to_grey(image) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def boundary_mask(label_image: np.ndarray) -> np.ndarray:
    """Pixels of an object whose 4-neighbour differs (object edges, holes included)."""
    labels = np.asarray(label_image)
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    differs = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        differs |= padded[dy : dy + labels.shape[0], dx : dx + labels.shape[1]] != centre
    return differs & (labels != 0)


def outline_panel(image: np.ndarray, label_image: np.ndarray) -> np.ndarray:
    """The image in grey with every object's outline (and hole edges) in yellow."""
    rgb = grey_rgb(image)
    rgb[boundary_mask(label_image)] = OUTLINE_RGB
    return rgb


def two_colour_overlay(reference_image: np.ndarray, moving_image: np.ndarray) -> np.ndarray:
    """Reference in magenta, the other cycle in green: aligned objects turn white."""
    reference, moving = to_grey(reference_image), to_grey(moving_image)
    rgb = np.stack([reference, moving, reference], axis=2)
    return (rgb * 255).astype(np.uint8)


def correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation of two same-shape arrays."""
    a = np.asarray(first, float).ravel()
    b = np.asarray(second, float).ravel()
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator else 0.0


def mark_boxes(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]], *, width: int = 1,
               colour: tuple[int, int, int] = BORDER_RGB) -> np.ndarray:
    """A copy of `rgb` with the edges of (y0, x0, y1, x1) boxes drawn."""
    out = rgb.copy()
    height, wide = out.shape[:2]
    for y0, x0, y1, x1 in boxes:
        y0, y1 = max(0, y0), min(height, y1)
        x0, x1 = max(0, x0), min(wide, x1)
        if y0 >= y1 or x0 >= x1:
            continue
        out[y0 : min(y0 + width, y1), x0:x1] = colour
        out[max(y1 - width, y0) : y1, x0:x1] = colour
        out[y0:y1, x0 : min(x0 + width, x1)] = colour
        out[y0:y1, max(x1 - width, x0) : x1] = colour
    return out


def distinct_colours(n: int, *, seed: int = 0) -> np.ndarray:
    """`n` distinct bright RGB colours (uint8, (n, 3)), none of them black."""
    rng = np.random.default_rng(seed)
    colours = set()
    out = []
    while len(out) < n:
        colour = tuple(int(v) for v in rng.integers(60, 256, size=3))
        if colour not in colours:
            colours.add(colour)
            out.append(colour)
    return np.array(out, dtype=np.uint8).reshape(n, 3)


def object_colour_panel(label_image: np.ndarray) -> np.ndarray:
    """One distinct colour per label value on black."""
    labels = np.asarray(label_image)
    values, inverse = np.unique(labels, return_inverse=True)
    palette = np.zeros((len(values), 3), np.uint8)
    nonzero = values != 0
    palette[nonzero] = distinct_colours(int(nonzero.sum()))
    return palette[inverse.reshape(labels.shape)]


TILE_COLOURS = np.array([(80, 170, 255), (255, 150, 40)], np.uint8)


def tile_colour_panel(tile_index: np.ndarray, label_image: np.ndarray) -> np.ndarray:
    """Objects coloured by which tile they came from (two alternating colours), edges dark.

    `tile_index` (Y, X) holds the parity (0 or 1) of the tile each pixel was
    taken from; `label_image` the per-tile labels as placed, so an object cut
    at a tile border shows as two colours with a line between.
    """
    rgb = np.zeros((*label_image.shape, 3), np.uint8)
    inside = label_image != 0
    rgb[inside] = TILE_COLOURS[tile_index[inside] % 2]
    rgb[boundary_mask(label_image) | _index_edges(tile_index) & inside] = (30, 30, 30)
    return rgb


def _index_edges(index: np.ndarray) -> np.ndarray:
    padded = np.pad(index, 1, mode="edge")
    return (padded[1:-1, 2:] != index) | (padded[2:, 1:-1] != index)


def grey_limits(values: np.ndarray) -> tuple[float, float]:
    """(low, high): the 1st and 99.5th percentiles of `values`, so two panels can share one scale."""
    values = np.asarray(values, dtype=float)
    low, high = np.percentile(values, (1.0, 99.5)) if values.size else (0.0, 1.0)
    return float(low), float(max(high, low + 1e-12))


FLAG_RGB = (255, 150, 40)
GAP_PX = 6


def kymograph_panel(along_x: np.ndarray, along_y: np.ndarray, *, limits: tuple[float, float],
                    flagged: np.ndarray | None = None, height: int | None = None) -> np.ndarray:
    """Two kymographs side by side: (T, X) on the left, (T, Y) on the right, t down.

    Each time point is repeated over rows so the panel is about as tall as the
    wider kymograph (or `height` rows); both are scaled by `limits` (see
    `grey_limits`). Frames in `flagged` (T,) get an orange tick in the gap
    column between the two and at the left edge.

    >>> kymograph_panel(np.zeros((2, 4)), np.ones((2, 3)), limits=(0.0, 1.0), height=4).shape
    (4, 19, 3)
    """
    low, high = limits
    n_frames = along_x.shape[0]
    height = height or max(along_x.shape[1], along_y.shape[1])
    repeat = max(1, height // max(1, n_frames))

    def block(kymograph):
        grey = np.clip((np.asarray(kymograph, float) - low) / (high - low), 0.0, 1.0)
        grey = np.repeat((grey * 255).astype(np.uint8), repeat, axis=0)
        return np.repeat(grey[..., None], 3, axis=2)

    left, right = block(along_x), block(along_y)
    gap = np.full((left.shape[0], GAP_PX, 3), 255, np.uint8)
    edge = np.full((left.shape[0], GAP_PX, 3), 255, np.uint8)
    if flagged is not None:
        rows = np.repeat(np.asarray(flagged, bool), repeat)
        gap[rows] = FLAG_RGB
        edge[rows] = FLAG_RGB
    return np.concatenate([edge, left, gap, right], axis=1)
