"""GeoJSON export for QuPath: written, read back, filled as QuPath fills.

QuPath fills its (JTS -> Java2D) shapes by pixel centre: pixel (x, y) is in
when (x + 0.5, y + 0.5) is inside, even-odd over a polygon's rings;
`consumer_raster.fill_even_odd` implements it.
"""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import shapely.geometry as shapely_geometry

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import geojson, get_format
from fractal_roi_tasks.formats.coordinates import ELLIPSE_VERTICES
from fractal_roi_tasks.rois import Point, extract_rois
from tests.consumer_raster import fill_even_odd, paint
from tests.label_cases import hard_cases_2d, hard_cases_3d
from tests.shape_cases import (
    assert_same_ellipses,
    axis_aligned_blobs,
    ellipse_covariance,
    skeleton_roi_set,
)


def _roundtrip(tmp_path, roi_set, context=None):
    path = geojson.write(tmp_path / f"rois{geojson.EXTENSION}", roi_set, context=context)
    # strict JSON: no NaN/Infinity anywhere (QuPath's parser would choke)
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON number {c}"))
    return geojson.read(path)["features"]


def _label(feature):
    return int(feature["properties"]["metadata"]["label"])


def _rebuild(features, shape, *, planes=None):
    out = np.zeros(shape if planes is None else (planes, *shape), np.int64)
    for feature in features:
        target = out if planes is None else out[feature["geometry"]["plane"]["z"]]
        paint(target, fill_even_odd(geojson.feature_rings(feature), shape), _label(feature))
    return out


def _signed_area(ring):
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


# --------------------------------------------------------------------------
# Outlines


@pytest.mark.parametrize("kind", ["polygon", "mask"])
@pytest.mark.parametrize("case", ["hard", "nuclei"])
def test_outlines_fill_back_to_exactly_the_labels(tmp_path, nuclei, kind, case):
    labels = hard_cases_2d() if case == "hard" else nuclei
    features = _roundtrip(tmp_path, extract_rois(labels, shape=kind))
    assert len(features) == len(np.unique(labels)) - 1
    np.testing.assert_array_equal(_rebuild(features, labels.shape), labels)
    assert all("plane" not in f["geometry"] for f in features)  # 2D: QuPath's default plane


def test_pieces_are_multipolygons_rings_closed_and_right_handed(tmp_path):
    features = {_label(f): f for f in _roundtrip(tmp_path, extract_rois(hard_cases_2d()))}
    assert features[70_000]["geometry"]["type"] == "MultiPolygon"
    assert len(features[70_000]["geometry"]["coordinates"]) == 2
    assert features[3]["geometry"]["type"] == "MultiPolygon"  # square with hole + island
    outer, island = features[3]["geometry"]["coordinates"]
    assert len(outer) == 2 and len(island) == 1  # exterior + hole, then the island
    assert features[13]["geometry"]["type"] == "Polygon"
    assert len(features[13]["geometry"]["coordinates"]) == 2  # exterior + hole
    for feature in features.values():
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        )
        for polygon in polygons:
            rings = [np.asarray(r, float) for r in polygon]
            for ring in rings:
                assert len(ring) >= 4 and np.array_equal(ring[0], ring[-1])
            assert _signed_area(rings[0]) > 0  # RFC 7946: exterior counter-clockwise (y up)
            assert all(_signed_area(h) < 0 for h in rings[1:])
    # the one-pixel object on the top border: the unit square x 30..31, y 0..1
    (ring,) = geojson.feature_rings(features[9])
    assert {tuple(p) for p in ring.tolist()} == {(30, 0), (31, 0), (31, 1), (30, 1)}


@pytest.mark.parametrize("kind", ["polygon", "mask"])
def test_3d_outlines_fill_back_plane_by_plane(tmp_path, kind):
    labels = hard_cases_3d()
    features = _roundtrip(tmp_path, extract_rois(labels, shape=kind))
    np.testing.assert_array_equal(_rebuild(features, labels.shape[1:], planes=3), labels)
    assert all(
        f["geometry"]["plane"]["c"] == -1 and f["geometry"]["plane"]["t"] == 0 for f in features
    )
    planes_of_9 = [f["geometry"]["plane"]["z"] for f in features if _label(f) == 9]
    assert planes_of_9 == [0, 2]
    keys = [(f["properties"]["name"], f["geometry"]["plane"]["z"]) for f in features]
    assert len(set(keys)) == len(keys)  # one feature per object and plane


def test_scale_doubles_coordinates_around_pixel_corners(tmp_path):
    labels = np.zeros((6, 8), np.uint16)
    labels[1:3, 1:4] = 5
    (feature,) = _roundtrip(tmp_path, extract_rois(labels), context={"scale": (2.0, 2.0)})
    (ring,) = geojson.feature_rings(feature)
    assert {tuple(p) for p in ring.tolist()} == {(2, 2), (8, 2), (8, 6), (2, 6)}
    features = _roundtrip(tmp_path, extract_rois(hard_cases_2d()), context={"scale": (2.0, 2.0)})
    full = np.kron(hard_cases_2d(), np.ones((2, 2), np.uint32))
    np.testing.assert_array_equal(_rebuild(features, full.shape), full)


# --------------------------------------------------------------------------
# Properties, files


def test_features_are_qupath_detections_with_measurements(tmp_path, nuclei):
    roi_set = extract_rois(nuclei, spacing=(0.5, 0.5))
    features = _roundtrip(tmp_path, roi_set, context={"label_name": "nuclei"})
    table = roi_set.features.set_index("label")
    assert len(features) == 168
    names = [f["properties"]["name"] for f in features]
    assert len(set(names)) == 168 and names == sorted(names)
    for feature in features:
        assert feature["type"] == "Feature"
        props = feature["properties"]
        assert props["objectType"] == "detection"
        assert props["name"] == f"label-{_label(feature):04d}"
        assert props["classification"]["name"] == "nuclei"
        color = props["classification"]["color"]
        assert len(color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in color)
        measurements = props["measurements"]
        assert all(isinstance(v, (int, float)) for v in measurements.values())
        row = table.loc[_label(feature)]
        assert measurements["label"] == _label(feature)
        for column in ("area_px", "area_um2", "perimeter_um", "centroid_x_um", "bbox_len_y_px"):
            assert measurements[column] == pytest.approx(row[column], rel=1e-15)


def test_non_finite_measurements_are_left_out(tmp_path):
    roi_set = extract_rois(hard_cases_2d())
    roi_set.features["mean_intensity"] = np.nan
    features = _roundtrip(tmp_path, roi_set)
    assert all("mean_intensity" not in f["properties"]["measurements"] for f in features)
    assert all("area_px" in f["properties"]["measurements"] for f in features)


def test_a_channel_goes_into_the_plane(tmp_path):
    features = _roundtrip(tmp_path, extract_rois(hard_cases_2d()), context={"channel": 1})
    assert {json.dumps(f["geometry"]["plane"]) for f in features} == {'{"c": 1, "z": 0, "t": 0}'}


def test_second_write_replaces_the_first(tmp_path):
    path = tmp_path / "x" / "rois.geojson"
    geojson.write(path, extract_rois(hard_cases_2d()))
    geojson.write(path, extract_rois(np.where(hard_cases_2d() == 12, 12, 0)))
    assert [_label(f) for f in geojson.read(path)["features"]] == [12]
    assert [p.name for p in path.parent.iterdir()] == ["rois.geojson"]


def test_reader_refuses_what_is_not_a_feature_collection():
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        geojson.from_bytes(b"{nope")
    with pytest.raises(
        InvalidInputError, match="Expected a GeoJSON FeatureCollection, got type 'Feature'"
    ):
        geojson.from_bytes(b'{"type": "Feature"}')
    with pytest.raises(InvalidInputError, match="Only Polygon and MultiPolygon"):
        geojson.feature_rings({"geometry": {"type": "Point", "coordinates": [1, 2]}})
    with pytest.raises(InvalidInputError, match=r"scale.*3 values"):
        geojson.to_bytes(extract_rois(hard_cases_3d()), context={"scale": (2.0, 2.0)})


def test_registry_finds_the_module():
    assert get_format("geojson") is geojson
    assert geojson.EXTENSION == ".geojson"


# --------------------------------------------------------------------------
# Points, ellipses, lines


def test_points_sit_on_pixel_centres(tmp_path):
    features = {
        _label(f): f for f in _roundtrip(tmp_path, extract_rois(hard_cases_2d(), shape="point"))
    }
    assert features[9]["geometry"] == {"type": "Point", "coordinates": [30.5, 0.5]}
    assert features[11]["geometry"]["coordinates"] == [16.0, 16.0]
    roi_set = extract_rois(hard_cases_3d(), shape="point")
    features_3d = _roundtrip(tmp_path, roi_set)
    for feature, row in zip(features_3d, roi_set.features.itertuples()):
        assert feature["geometry"]["coordinates"] == [
            row.centroid_x_px + 0.5,
            row.centroid_y_px + 0.5,
        ]
        assert feature["geometry"]["plane"]["z"] == round(row.centroid_z_px)


def _ellipse_from_feature(feature):
    """(centre, covariance) the way a reader gets it back from the ring."""
    (ring,) = geojson.feature_rings(feature)
    ring = ring[:-1]
    assert len(ring) == ELLIPSE_VERTICES
    if feature["geometry"].get("isEllipse"):  # QuPath: EllipseROI from the bounding box
        lo, hi = ring.min(axis=0), ring.max(axis=0)
        a, b = (hi - lo) / 2
        return (lo + hi) / 2, np.diag([a * a, b * b])
    centre = ring.mean(axis=0)
    major = ring[0] - centre  # first vertex: end of the major axis
    minor = ring[len(ring) // 4] - centre
    angle = math.atan2(major[1], major[0])
    return centre, ellipse_covariance(np.linalg.norm(major), np.linalg.norm(minor), angle)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_ellipses_round_trip(tmp_path, nuclei, scale):
    roi_set = extract_rois(nuclei, shape="ellipse")
    features = _roundtrip(tmp_path, roi_set, context={"scale": (scale, scale)})
    flags = [bool(f["geometry"].get("isEllipse")) for f in features]
    assert not all(flags)  # rotated nuclei stay polygons (QuPath ellipses are axis-aligned)
    for feature, original in zip(features, roi_set.rois):
        (ellipse,) = original.shapes
        centre, cov = _ellipse_from_feature(feature)
        a, b = (s * scale for s in ellipse.semi_axes)
        np.testing.assert_allclose(
            centre, (np.array(ellipse.center[::-1]) + 0.5) * scale, atol=1e-9
        )
        np.testing.assert_allclose(cov, ellipse_covariance(a, b, ellipse.angle), atol=1e-9 * a * a)


def test_axis_aligned_ellipses_are_qupath_ellipses(tmp_path):
    roi_set = extract_rois(axis_aligned_blobs(), shape="ellipse")
    features = _roundtrip(tmp_path, roi_set)
    assert [f["geometry"].get("isEllipse") for f in features] == [True, True]
    read_back = [_ellipse_from_feature(f) for f in features]
    assert_same_ellipses(read_back, roi_set, atol=(1e-9, 1e-9))


def test_2d_branches_are_linestrings_through_pixel_centres(tmp_path):
    features = _roundtrip(tmp_path, skeleton_roi_set(2), context={"label_name": "retic"})
    summary = [(f["properties"]["name"], f["geometry"]) for f in features]
    assert summary == [
        (
            "label-0005-branch-000",
            {"type": "LineString", "coordinates": [[3.5, 2.5], [4.5, 2.5], [5.5, 3.5]]},
        ),
        (
            "label-0005-branch-001",
            {
                "type": "LineString",
                "coordinates": [[10.5, 10.5], [11.5, 10.5], [11.5, 11.5], [10.5, 10.5]],
            },
        ),
        ("label-0008-branch-000", {"type": "Point", "coordinates": [20.5, 20.5]}),
    ]
    assert [f["properties"]["metadata"]["branch"] for f in features] == ["0", "1", "0"]
    assert [f["properties"]["measurements"]["length_px"] for f in features] == [3.0, 3.0, 1.0]


def test_3d_branches_split_into_runs_of_constant_z(tmp_path):
    features = _roundtrip(tmp_path, skeleton_roi_set(3))
    summary = [
        (
            f["properties"]["name"],
            f["geometry"]["type"],
            f["geometry"]["plane"]["z"],
            f["geometry"]["coordinates"],
        )
        for f in features
    ]
    assert summary == [
        ("label-0005-branch-000", "LineString", 0, [[3.5, 2.5], [4.5, 2.5]]),
        ("label-0005-branch-000", "LineString", 1, [[5.5, 3.5], [5.5, 4.5]]),
        ("label-0005-branch-000", "Point", 2, [5.5, 5.5]),
        # a branch back on the plane it left: one feature per run, the plane repeated
        ("label-0005-branch-001", "Point", 0, [1.5, 1.5]),
        ("label-0005-branch-001", "Point", 1, [2.5, 1.5]),
        ("label-0005-branch-001", "LineString", 0, [[3.5, 1.5], [4.5, 1.5]]),
        ("label-0008-branch-000", "LineString", 2, [[20.5, 20.5], [21.5, 21.5]]),
    ]


@pytest.mark.parametrize("kind", ["polygon", "mask", "ellipse", "point"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_text_is_what_json_dumps_writes(kind, ndim):
    """The collection, built as text in bulk, is the compact JSON json.dumps writes for it."""
    labels = hard_cases_3d() if ndim == 3 else hard_cases_2d()
    roi_set = extract_rois(labels, shape=kind, spacing=(1.0, 0.5, 0.5)[-ndim:])
    roi_set.features["mean_intensity"] = np.nan
    roi_set.features["kind"] = 'a "b"\tc'
    for context in (None, {"scale": (1.0, 1.5, 1.5)[-ndim:], "channel": 1, "label_name": "n\u00e9"}):
        text = geojson.to_bytes(roi_set, context=context).decode()
        assert json.dumps(json.loads(text), separators=(",", ":"), allow_nan=False) == text
    for roi_set in (skeleton_roi_set(2), skeleton_roi_set(3)):
        text = geojson.to_bytes(roi_set).decode()
        assert json.dumps(json.loads(text), separators=(",", ":"), allow_nan=False) == text


def test_non_finite_coordinates_are_refused():
    roi_set = extract_rois(hard_cases_2d(), shape="point")
    with pytest.raises(InvalidInputError, match="one positive factor per image axis"):
        geojson.to_bytes(roi_set, context={"scale": (np.inf, np.inf)})
    first = roi_set.rois[0]
    broken = replace(first, shapes=(Point(position=(np.nan, 1.0)),))
    with pytest.raises(InvalidInputError, match="finite numbers"):
        geojson.to_bytes(replace(roi_set, rois=(broken, *roi_set.rois[1:])))


# --------------------------------------------------------------------------
# Valid Simple Features (GEOS, as JTS in QuPath)


@pytest.mark.parametrize("case", ["2d", "3d"])
def test_features_of_the_hard_cases_are_valid_simple_features(tmp_path, case):
    labels = hard_cases_2d() if case == "2d" else hard_cases_3d()
    features = _roundtrip(tmp_path, extract_rois(labels))
    invalid = [
        _label(f) for f in features if not shapely_geometry.shape(f["geometry"]).is_valid
    ]
    assert invalid == []
    if case == "2d":
        rebuilt = _rebuild(features, labels.shape)
    else:
        rebuilt = _rebuild(features, labels.shape[1:], planes=labels.shape[0])
    np.testing.assert_array_equal(rebuilt, labels)


def test_holes_touching_the_outline_around_a_cycle_become_valid_parts(tmp_path):
    # A square cut along its diagonal by background pixels meeting only at
    # corners: one 8-connected object, two 4-connected halves. Written as one
    # polygon its holes touch the outline at both ends ("Interior is
    # disconnected"); the valid form is a MultiPolygon of the two halves.
    labels = np.ones((7, 7), np.uint8)
    for i in range(7):
        labels[i, i] = 0
    labels = np.pad(labels, 1)
    (feature,) = _roundtrip(tmp_path, extract_rois(labels))
    geometry = shapely_geometry.shape(feature["geometry"])
    assert geometry.is_valid
    assert feature["geometry"]["type"] == "MultiPolygon" and len(geometry.geoms) == 2
    np.testing.assert_array_equal(_rebuild([feature], labels.shape), labels)


def test_ten_thousand_noisy_objects_are_valid_and_fill_back(tmp_path):
    # Thresholded smoothed noise: objects with holes, pinches and holes that
    # touch their outline, as a noisy segmentation gives them.
    from scipy import ndimage as ndi
    from skimage.measure import label

    noise = ndi.gaussian_filter(np.random.default_rng(0).random((2048, 3072)), 2)
    labels = label(noise > np.quantile(noise, 0.55), connectivity=2).astype(np.uint32)
    roi_set = extract_rois(labels)
    assert len(roi_set.rois) >= 10_000
    features = geojson.from_bytes(geojson.to_bytes(roi_set))["features"]
    invalid = [_label(f) for f in features if not shapely_geometry.shape(f["geometry"]).is_valid]
    assert invalid == []
    # Fill back every object in its own box (a whole-image fill per object is slow).
    boxes = roi_set.features.set_index("label")
    for feature in features:
        lab = _label(feature)
        y0, x0 = int(boxes.at[lab, "bbox_y_px"]), int(boxes.at[lab, "bbox_x_px"])
        h, w = int(boxes.at[lab, "bbox_len_y_px"]), int(boxes.at[lab, "bbox_len_x_px"])
        rings = [ring - (x0, y0) for ring in geojson.feature_rings(feature)]
        np.testing.assert_array_equal(
            fill_even_odd(rings, (h, w)), labels[y0 : y0 + h, x0 : x0 + w] == lab
        )
