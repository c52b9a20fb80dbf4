"""The ROI core on arrays: exact outlines, measurements, shapes."""

import numpy as np
import pytest
from skimage.draw import disk, ellipse
from skimage.draw import polygon as fill_polygon
from skimage.measure import find_contours, regionprops, regionprops_table

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois import Ellipse, Mask, Point, Polygon, extract_rois
from fractal_roi_tasks.rois.boundaries import trace_rings
from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei
from tests.label_cases import hard_cases_2d


def rasterize(polygons, shape):
    """Pixels whose centre lies inside the polygons (even-odd over all rings)."""
    out = np.zeros(shape, bool)
    for poly in polygons:
        for ring in (poly.exterior, *poly.holes):
            rr, cc = fill_polygon(ring[:, 0], ring[:, 1], shape=shape)
            inside = np.zeros(shape, bool)
            inside[rr, cc] = True
            out ^= inside
    return out


def assert_polygons_exact(label_image, roi_set):
    assert [r.label for r in roi_set.rois] == sorted(set(np.unique(label_image)) - {0})
    for roi in roi_set.rois:
        got = rasterize(roi.shapes, label_image.shape)
        np.testing.assert_array_equal(got, label_image == roi.label, err_msg=f"label {roi.label}")


@pytest.fixture(scope="module")
def nuclei():
    return load_cardiomyocyte_nuclei()[1]


def test_polygons_rasterize_to_exactly_the_real_nuclei(nuclei):
    roi_set = extract_rois(nuclei)
    assert len(roi_set.rois) == len(np.unique(nuclei)) - 1
    assert_polygons_exact(nuclei, roi_set)


def test_measurements_match_regionprops(nuclei):
    feats = extract_rois(nuclei, spacing=(0.325, 0.325)).features
    ref = regionprops_table(nuclei, properties=("label", "area", "centroid", "bbox"))
    np.testing.assert_array_equal(feats["label"], ref["label"])
    np.testing.assert_array_equal(feats["area_px"], ref["area"])
    np.testing.assert_allclose(feats["centroid_y_px"], ref["centroid-0"], atol=1e-9)
    np.testing.assert_allclose(feats["centroid_x_px"], ref["centroid-1"], atol=1e-9)
    np.testing.assert_array_equal(feats["bbox_y_px"], ref["bbox-0"])
    np.testing.assert_array_equal(feats["bbox_x_px"], ref["bbox-1"])
    np.testing.assert_array_equal(feats["bbox_len_y_px"], ref["bbox-2"] - ref["bbox-0"])
    np.testing.assert_array_equal(feats["bbox_len_x_px"], ref["bbox-3"] - ref["bbox-1"])
    np.testing.assert_allclose(feats["area_um2"], ref["area"] * 0.325**2)
    np.testing.assert_allclose(feats["centroid_x_um"], (ref["centroid-1"] + 0.5) * 0.325)
    # The perimeter is the length of skimage's 0.5 iso-contour of the object.
    for lab, perimeter in zip(feats["label"][:20], feats["perimeter_px"][:20]):
        contours = find_contours(np.pad(nuclei == lab, 1), 0.5, fully_connected="high")
        expected = sum(np.hypot(*np.diff(c, axis=0).T).sum() for c in contours)
        assert perimeter == pytest.approx(expected, rel=1e-9)


def test_hard_cases_are_exact():
    img = hard_cases_2d()
    roi_set = extract_rois(img)
    assert_polygons_exact(img, roi_set)
    by_label = {r.label: r for r in roi_set.rois}
    assert len(by_label[70_000].shapes) == 2
    assert len(by_label[3].shapes) == 2  # ring and island
    assert sum(len(p.holes) for p in by_label[3].shapes) == 1
    assert len(by_label[11].shapes) == 1  # diagonal pixels stay one piece
    assert len(by_label[13].shapes[0].holes) == 1
    np.testing.assert_array_equal(
        roi_set.features["area_px"], [np.sum(img == r.label) for r in roi_set.rois]
    )


def test_shoelace_area_equals_pixel_count():
    rng = np.random.default_rng(0)
    img = (rng.random((60, 60)) < 0.4).astype(np.uint16) * rng.integers(1, 5, (60, 60)).astype(
        np.uint16
    )
    rings = trace_rings(img)
    area = {}
    for lab, a in zip(rings.labels.tolist(), rings.signed_area.tolist()):
        area[lab] = area.get(lab, 0) + a
    assert area == {v: float(np.sum(img == v)) for v in range(1, 5)}
    assert_polygons_exact(img, extract_rois(img))


def test_empty_image_gives_no_rois():
    roi_set = extract_rois(np.zeros((8, 8), np.uint8))
    assert roi_set.rois == ()
    assert len(roi_set.features) == 0
    assert "area_px" in roi_set.features


def test_min_area_drops_small_objects():
    img = np.zeros((20, 20), np.uint16)
    img[1:3, 1:3] = 1  # 4 px
    img[5:15, 5:15] = 2  # 100 px
    roi_set = extract_rois(img, min_area_px=5)
    assert [r.label for r in roi_set.rois] == [2]
    assert roi_set.n_too_small == 1


def test_ellipse_recovers_a_drawn_ellipse():
    img = np.zeros((200, 200), np.uint8)
    rr, cc = ellipse(100, 90, 30, 60, rotation=np.deg2rad(25))
    img[rr, cc] = 1
    (roi,) = extract_rois(img, shape="ellipse").rois
    (shape,) = roi.shapes
    assert isinstance(shape, Ellipse)
    assert shape.center == pytest.approx((100, 90), abs=0.1)
    assert shape.semi_axes == pytest.approx((60, 30), rel=0.02)
    # skimage's rotation turns the column axis towards -row; ours is from +x to +y.
    major_direction = np.array([np.cos(shape.angle), np.sin(shape.angle)])
    expected = np.array([np.cos(np.deg2rad(25)), -np.sin(np.deg2rad(25))])
    assert abs(major_direction @ expected) == pytest.approx(1, abs=1e-3)


def test_point_and_mask_shapes():
    img = np.zeros((30, 30), np.uint16)
    rr, cc = disk((10, 12), 5)
    img[rr, cc] = 4
    img[11, 12] = 0
    (point_roi,) = extract_rois(img, shape="point").rois
    (point,) = point_roi.shapes
    assert isinstance(point, Point)
    assert point.position == pytest.approx(regionprops(img)[0].centroid)
    (mask_roi,) = extract_rois(img, shape="mask").rois
    (mask,) = mask_roi.shapes
    assert isinstance(mask, Mask)
    back = np.zeros(img.shape, bool)
    y, x = mask.origin
    back[y : y + mask.mask.shape[0], x : x + mask.mask.shape[1]] = mask.mask
    np.testing.assert_array_equal(back, img == 4)


def test_3d_polygons_per_plane_and_3d_boxes():
    vol = np.zeros((4, 30, 30), np.uint32)
    vol[1:3, 5:10, 5:12] = 2
    vol[0, 20:25, 20:22] = 5
    vol[3, 0:2, 0:30] = 5
    roi_set = extract_rois(vol, spacing=(2.0, 0.5, 0.5))
    feats = roi_set.features.set_index("label")
    assert feats.loc[2, "bbox_z_px"] == 1 and feats.loc[2, "bbox_len_z_px"] == 2
    assert feats.loc[5, "bbox_len_z_px"] == 4
    assert feats.loc[5, "volume_um3"] == pytest.approx(70 * 2.0 * 0.25)
    assert feats.loc[2, "centroid_z_px"] == pytest.approx(1.5)
    assert "perimeter_px" not in feats
    for roi in roi_set.rois:
        for z in range(vol.shape[0]):
            in_plane = [p for p in roi.shapes if p.z == z]
            assert isinstance(roi.shapes[0], Polygon)
            np.testing.assert_array_equal(
                rasterize(in_plane, vol.shape[1:]), vol[z] == roi.label
            )


def test_bad_inputs_are_named():
    with pytest.raises(InvalidInputError, match="integer labels"):
        extract_rois(np.zeros((4, 4), float))
    with pytest.raises(InvalidInputError, match="2D .* or 3D"):
        extract_rois(np.zeros((2, 2, 2, 2), np.uint8))
    with pytest.raises(InvalidInputError, match="shape must be one of"):
        extract_rois(np.zeros((4, 4), np.uint8), shape="blob")
    with pytest.raises(InvalidInputError, match="spacing"):
        extract_rois(np.zeros((4, 4), np.uint8), spacing=(1.0,))


def test_input_is_not_mutated():
    img = hard_cases_2d()
    before = img.copy()
    extract_rois(img, shape="mask")
    np.testing.assert_array_equal(img, before)


def _rings_through_edge_list(plane):
    """The reference route: every directed edge, successors found by sorting."""
    from fractal_roi_tasks.rois.boundaries import _directed_edges, trace_edges

    labels, rows, cols, dirs, padded_shape = _directed_edges(plane)
    return trace_edges(labels, rows, cols, dirs, padded_shape[1] + 1, dtype=plane.dtype)


def test_trace_rings_equals_the_edge_list_route_bit_for_bit():
    rng = np.random.default_rng(7)
    planes = [hard_cases_2d(), np.zeros((4, 6), np.uint8), np.full((3, 5), 2**40, np.uint64),
              load_cardiomyocyte_nuclei()[1][:300, :400]]
    for k in range(150):
        h, w = rng.integers(1, 25, 2)
        dtype = (np.uint8, np.uint16, np.uint32, np.int64, np.uint64)[k % 5]
        plane = rng.integers(0, 2 + k % 5, (h, w)).astype(dtype)
        if dtype == np.uint64 and k % 2:
            plane = plane * np.uint64(2**40 + 3)  # sparse huge ids
        planes.append(plane)
    for plane in planes:
        got, want = trace_rings(plane), _rings_through_edge_list(plane)
        for field in ("points", "bounds", "labels", "signed_area", "object_labels", "perimeter"):
            a, b = getattr(got, field), getattr(want, field)
            assert a.dtype == b.dtype, field
            np.testing.assert_array_equal(a, b, err_msg=f"{field} of a {plane.shape} plane")


def test_gc_paused_restores_the_collector_state_even_on_error():
    import gc

    from fractal_roi_tasks.rois.gc_pause import gc_paused

    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError, match="division"):
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():  # nested: the inner exit must not re-enable
                pass
            assert not gc.isenabled()
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own pause is left alone
    finally:
        gc.enable()
