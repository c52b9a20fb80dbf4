"""crack_moments (the point path's measurements without outlines) equals the traced path bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color, data, filters, measure

from fractal_roi_tasks.rois import crack_moments as cm
from fractal_roi_tasks.rois import extract_rois
from fractal_roi_tasks.rois.blocked import extract_rois_blocked
from fractal_roi_tasks.rois.boundaries import trace_rings
from fractal_roi_tasks.rois.measure import plane_moments

FIELDS = ("labels", "area", "centroid", "bbox_start", "bbox_stop", "perimeter")


def _real_planes():
    coins = data.coins()
    camera = data.camera()
    cell = data.cell()
    retina = color.rgb2gray(data.retina())
    return {
        "coins": measure.label(coins > filters.threshold_otsu(coins)).astype(np.uint16),
        # grey levels as labels: many-piece objects, holes, diagonal touches
        "camera_levels": (camera // 40).astype(np.uint8),
        "camera_pieces": measure.label(camera // 40, background=-1).astype(np.int32),
        "cell": measure.label(cell > filters.threshold_otsu(cell)).astype(np.uint32),
        "retina": measure.label(retina > filters.threshold_otsu(retina)),
    }


def _random_planes():
    rng = np.random.default_rng(7)
    planes = {}
    for h, w in [(1, 1), (1, 9), (8, 1), (5, 5), (37, 41), (150, 120)]:
        for n in (2, 3, 7):
            planes[f"random_{h}x{w}_{n}"] = rng.integers(0, n, (h, w)).astype(np.uint8)
    huge = rng.integers(0, 4, (90, 70)).astype(np.uint64) * np.uint64(2**40) + np.uint64(3)
    planes["huge_ids"] = huge * (rng.random((90, 70)) > 0.3)
    planes["full"] = np.full((6, 9), 4, np.uint16)
    return planes


def _assert_same(a, b):
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        assert x.tobytes() == y.tobytes(), field


@pytest.mark.parametrize("name", [*_real_planes(), *_random_planes()])
def test_equals_traced_moments(name):
    plane = {**_real_planes(), **_random_planes()}[name]
    fast = cm.crack_moments(plane)
    _assert_same(fast, plane_moments(trace_rings(plane)))
    assert np.isnan(fast.covariance).all()


def test_objects_beyond_the_exact_bound_are_traced(monkeypatch):
    plane = _real_planes()["camera_pieces"]
    traced = plane_moments(trace_rings(plane))
    calls = []
    real = cm._traced
    monkeypatch.setattr(cm, "_traced", lambda *a: calls.append(int(a[2].sum())) or real(*a))
    # A bound that only the smallest objects pass: both paths in one plane.
    monkeypatch.setattr(cm, "EXACT_BOUND", 1e12)
    _assert_same(cm.crack_moments(plane), traced)
    assert 0 < calls[0] < len(traced.labels)


def test_empty_plane():
    m = cm.crack_moments(np.zeros((4, 5), np.uint16))
    _assert_same(m, plane_moments(trace_rings(np.zeros((4, 5), np.uint16))))
    with pytest.raises(ValueError, match="must be 2D"):
        cm.crack_moments(np.zeros((2, 3, 4), np.uint8))


def _features_equal(a, b):
    assert list(a.columns) == list(b.columns)
    for column in a.columns:
        assert a[column].to_numpy().tobytes() == b[column].to_numpy().tobytes(), column


def test_point_rois_equal_polygon_path_features_2d_and_3d():
    """The point path (no tracing) gives the features the traced path gives, in 2D and 3D."""
    blobs = measure.label(data.binary_blobs(48, volume_fraction=0.4, n_dim=3, rng=3))
    for image in (_real_planes()["coins"], blobs.astype(np.uint32)):
        spacing = (0.4,) * image.ndim
        point = extract_rois(image, shape="point", spacing=spacing, min_area_px=5)
        polygon = extract_rois(image, shape="polygon", spacing=spacing, min_area_px=5)
        _features_equal(point.features, polygon.features)
        assert point.n_too_small == polygon.n_too_small
        assert [r.label for r in point.rois] == [r.label for r in polygon.rois] != []
        centroid = np.asarray([r.shapes[0].position for r in point.rois])
        axes = ("y", "x") if image.ndim == 2 else ("z", "y", "x")
        expected = point.features[[f"centroid_{a}_px" for a in axes]].to_numpy()
        assert np.array_equal(centroid, expected)


def test_point_rois_equal_blocked_path():
    image = _real_planes()["camera_pieces"]
    whole = extract_rois(image, shape="point", spacing=(0.5, 0.5))
    blocked = extract_rois_blocked(
        lambda z, r, c: image[r, c], image.shape, image.dtype, block_shape=(97, 130),
        shape="point", spacing=(0.5, 0.5),
    )
    _features_equal(whole.features, blocked.features)
    assert [r.shapes for r in whole.rois] == [r.shapes for r in blocked.rois]
