"""Blockwise ROI extraction equals `extract_rois` on the whole array, bit for bit."""

import numpy as np
import pytest
from skimage.measure import label

from fractal_roi_tasks.rois import extract_rois
from fractal_roi_tasks.rois.blocked import extract_rois_blocked


def _reader(array):
    return lambda z, rows, cols: (array if array.ndim == 2 else array[z])[rows, cols]


def _assert_same(whole, blocked, shape):
    assert blocked.features.columns.tolist() == whole.features.columns.tolist()
    assert blocked.features.equals(whole.features)
    assert blocked.n_too_small == whole.n_too_small
    assert [r.label for r in blocked.rois] == [r.label for r in whole.rois]
    for a, b in zip(whole.rois, blocked.rois):
        assert len(a.shapes) == len(b.shapes)
        for s, t in zip(a.shapes, b.shapes):
            if shape == "polygon":
                assert s.z == t.z
                assert np.array_equal(s.exterior, t.exterior)
                assert len(s.holes) == len(t.holes)
                assert all(np.array_equal(h, k) for h, k in zip(s.holes, t.holes))
            elif shape == "mask":
                assert s.origin == t.origin
                assert np.array_equal(s.mask, t.mask)
            else:
                assert s == t


def _scene(seed):
    rng = np.random.default_rng(seed)
    labels = label(rng.random((61, 83)) > 0.5).astype(np.uint64)
    labels[labels > 0] += 2**40  # ids above 2**32
    labels[10:50, 10:70] = 2**33 + 5  # one object over many blocks, with a hole
    labels[20:30, 20:30] = 0
    labels[22:25, 22:25] = 9  # an object inside the hole
    labels[40:45, :] = 7  # one label in several pieces, across every block column
    labels[0:3, 0:3] = 7
    return labels, rng.integers(0, 1000, labels.shape).astype(np.uint16)


@pytest.mark.parametrize("shape", ["polygon", "mask", "ellipse", "point"])
@pytest.mark.parametrize("block_shape", [(7, 11), (16, 16), (5, 100), (61, 83)])
def test_2d_equals_whole_array(shape, block_shape):
    labels, intensity = _scene(0)
    whole = extract_rois(labels, shape=shape, min_area_px=2, spacing=(0.5, 0.25),
                         intensity_image=intensity)
    blocked = extract_rois_blocked(
        _reader(labels), labels.shape, labels.dtype, block_shape=block_shape, shape=shape,
        min_area_px=2, spacing=(0.5, 0.25), read_intensity=_reader(intensity),
    )
    _assert_same(whole, blocked, shape)
    assert len(blocked.rois) > 5
    big = [r for r in blocked.rois if r.label == 2**33 + 5][0]
    if shape == "polygon":
        assert len(big.shapes[0].holes) == 1


@pytest.mark.parametrize("shape", ["polygon", "mask", "ellipse", "point"])
def test_3d_equals_whole_array(shape):
    rng = np.random.default_rng(1)
    labels = label(rng.random((4, 40, 50)) > 0.5).astype(np.uint32)
    labels[:, 5:35, 5:45] = 3_000_000_000
    labels[1:3, 10:20, 10:20] = 0
    intensity = rng.integers(0, 255, labels.shape).astype(np.uint8)
    whole = extract_rois(labels, shape=shape, spacing=(2.0, 0.5, 0.5), intensity_image=intensity)
    blocked = extract_rois_blocked(
        _reader(labels), labels.shape, labels.dtype, block_shape=(9, 13), shape=shape,
        spacing=(2.0, 0.5, 0.5), read_intensity=_reader(intensity),
    )
    _assert_same(whole, blocked, shape)


def test_reads_only_blocks():
    labels, _ = _scene(2)
    seen = []

    def read(z, rows, cols):
        seen.append((rows.stop - rows.start) * (cols.stop - cols.start))
        return labels[rows, cols]

    extract_rois_blocked(read, labels.shape, labels.dtype, block_shape=(16, 16))
    assert max(seen) <= 18 * 18 < labels.size


def test_empty_image():
    labels = np.zeros((20, 30), np.uint32)
    blocked = extract_rois_blocked(_reader(labels), labels.shape, labels.dtype, block_shape=(8, 8))
    _assert_same(extract_rois(labels), blocked, "polygon")
    assert len(blocked.rois) == 0


def test_bad_shape_is_refused():
    with pytest.raises(ValueError, match="shape must be one of"):
        extract_rois_blocked(lambda z, r, c: None, (4, 4), np.uint32, shape="blob")
