"""Passes over a label image in which no two labels touch.

A tool that only sees a mask (skan's pixel graph, skimage's thinning) would
merge labels that touch. Giving every label a pass (a colour) such that
touching labels never share one lets such a tool run once per pass, on many
labels at once: one pass when nothing touches, a handful for a dense
segmentation. Two pixels touch when they are 8-neighbours in 2D (26 in 3D),
corners included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelPixels:
    """The foreground pixels of a label image and their full neighbourhood.

    Attributes:
        shape: the image shape.
        flat: raveled index of every foreground pixel in the image padded by
            one pixel on every side (sorted).
        values: the label of each pixel.
        same_neighbours: how many of its 8 (26 in 3D) neighbours have its label.
        touching: (K, 2) unique pairs a < b of labels with touching pixels.

    Example:
        >>> labels = np.array([[1, 1, 0, 3], [0, 2, 0, 0]])
        >>> pixels = LabelPixels.of(labels)
        >>> pixels.values.tolist(), pixels.same_neighbours.tolist()
        ([1, 1, 3, 2], [1, 1, 0, 0])
        >>> pixels.touching.tolist()
        [[1, 2]]
        >>> pixels.colours().tolist()  # 1 and 2 touch; 3 touches nothing
        [0, 0, 0, 1]
        >>> [c.tolist() for c in pixels.coordinates(pixels.values == 2)]
        [[1], [1]]
    """

    shape: tuple[int, ...]
    flat: np.ndarray
    values: np.ndarray
    same_neighbours: np.ndarray
    touching: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray) -> LabelPixels:
        """The pixels of a (Y, X) or (Z, Y, X) integer label image (0 is background)."""
        padded = np.pad(labels, 1)
        lookup = padded.reshape(-1)
        flat = np.flatnonzero(lookup)
        values = lookup[flat]
        same = np.zeros(flat.size, np.uint8)
        pairs = []
        for step in neighbour_steps(padded.shape):
            neighbour = lookup[flat + step]
            same += neighbour == values
            other = (neighbour != 0) & (neighbour != values)
            if other.any():
                a, b = values[other], neighbour[other]
                pairs.append(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1))
        touching = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2))
        return cls(tuple(labels.shape), flat, values, same, touching.astype(np.int64))

    def coordinates(self, selected: np.ndarray) -> tuple[np.ndarray, ...]:
        """Image coordinates (one array per axis) of the selected pixels."""
        padded_shape = tuple(n + 2 for n in self.shape)
        return tuple(c - 1 for c in np.unravel_index(self.flat[selected], padded_shape))

    def colours(self) -> np.ndarray:
        """Pass index per pixel such that touching labels never share a pass."""
        colour = np.zeros(self.flat.size, np.int64)
        if len(self.touching) == 0:
            return colour
        labs, colours = greedy_colouring(self.touching)
        pos = np.minimum(np.searchsorted(labs, self.values), len(labs) - 1)
        hit = labs[pos] == self.values
        colour[hit] = colours[pos[hit]]
        return colour


def neighbour_steps(padded_shape: tuple[int, ...]) -> list[int]:
    """Raveled index steps to the 8 (2D) or 26 (3D) neighbours.

    Example:
        >>> neighbour_steps((3, 4))
        [-5, -4, -3, -1, 1, 3, 4, 5]
    """
    strides = np.cumprod((1, *padded_shape[:0:-1]))[::-1]
    offsets = np.stack(np.meshgrid(*[(-1, 0, 1)] * len(padded_shape), indexing="ij"), -1)
    offsets = offsets.reshape(-1, len(padded_shape))
    offsets = offsets[np.any(offsets != 0, axis=1)]
    return (offsets @ strides).tolist()


def greedy_colouring(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted labels, colour of each) with no edge of `pairs` inside a colour.

    Welsh-Powell: most-connected labels first, each takes the smallest colour
    none of its coloured neighbours has. A segmentation's touch graph is
    nearly planar, so this needs a handful of colours.

    Example:
        >>> labs, colours = greedy_colouring(np.array([[1, 2], [2, 3], [1, 3], [3, 4]]))
        >>> labs.tolist(), colours.tolist()
        ([1, 2, 3, 4], [1, 2, 0, 1])
    """
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    labs, starts, degree = np.unique(both[:, 0], return_index=True, return_counts=True)
    neighbours = np.searchsorted(labs, both[:, 1])
    colours = np.full(len(labs), -1, np.int64)
    for i in np.argsort(-degree, kind="stable").tolist():
        taken = set(colours[neighbours[starts[i] : starts[i] + degree[i]]].tolist())
        c = 0
        while c in taken:
            c += 1
        colours[i] = c
    return labs, colours
