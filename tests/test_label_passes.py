"""Passes in which no two labels touch, on a dense real segmentation."""

import numpy as np
from scipy import ndimage as ndi
from skimage import data, filters, measure
from skimage.segmentation import expand_labels

from fractal_roi_tasks.rois.label_passes import LabelPixels


def test_touching_labels_never_share_a_pass_and_passes_are_few():
    coins = data.coins()
    labels = expand_labels(measure.label(coins > filters.threshold_otsu(coins)), 6)
    pixels = LabelPixels.of(labels)
    assert len(pixels.touching) > 10  # the expansion makes many coins touch
    colour = pixels.colours()
    pass_of = dict(zip(pixels.values.tolist(), colour.tolist()))
    assert len(pass_of) == len(np.unique(labels)) - 1
    for a, b in pixels.touching.tolist():
        assert pass_of[a] != pass_of[b]
    assert max(pass_of.values()) < 6
    # every label lies in one pass: no pixel of it elsewhere
    for lab, c in pass_of.items():
        assert set(colour[pixels.values == lab].tolist()) == {c}


def test_pixels_and_touching_pairs_match_scipy_3d():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(5, 6, 7)).astype(np.uint16)
    pixels = LabelPixels.of(labels)
    np.testing.assert_array_equal(pixels.values, labels[labels > 0])  # raster order
    back = np.zeros_like(labels)
    back[pixels.coordinates(np.ones(pixels.values.size, bool))] = pixels.values
    np.testing.assert_array_equal(back, labels)
    cube = np.ones((3, 3, 3), int)
    for lab in (1, 2, 3):
        own = (labels == lab).astype(int)
        same = ndi.convolve(own, cube, mode="constant") - own
        np.testing.assert_array_equal(pixels.same_neighbours[pixels.values == lab], same[own > 0])
    assert pixels.touching.tolist() == [[1, 2], [1, 3], [2, 3]]
