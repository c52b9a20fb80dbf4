"""The napari reader, called directly (napari is not installed, nor needed)."""

import importlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import fractal_roi_tasks
from fractal_roi_tasks.formats import roi_json
from fractal_roi_tasks.napari_reader import (
    EXTERIOR_COLOR,
    HOLE_COLOR,
    ellipse_corners,
    get_reader,
    read_rois,
)
from fractal_roi_tasks.rois import extract_rois
from fractal_roi_tasks.rois.shapes import ObjectRoi, Polyline, RoiSet
from tests.label_cases import hard_cases_2d, hard_cases_3d

SPACING_2D = (0.65, 0.65)
SPACING_3D = (1.0, 0.65, 0.65)


def write_rois(folder, roi_set, label_name="nuclei", **context):
    path = Path(folder) / label_name / f"B03_0_{label_name}_rois.json"
    roi_json.write(path, roi_set, context={"label_name": label_name, **context})
    return path


def read_one(path):
    reader = get_reader(str(path))
    assert reader is not None
    layers = reader(str(path))
    assert len(layers) == 1
    return layers[0]


def test_polygons_with_holes_are_rings_marked_is_hole(tmp_path):
    labels = hard_cases_2d()
    roi_set = extract_rois(labels, shape="polygon", spacing=SPACING_2D)
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set))
    assert layer_type == "shapes"
    assert kwargs["shape_type"] == "polygon" and kwargs["ndim"] == 2
    assert kwargs["name"] == "nuclei polygons"
    assert kwargs["scale"] == SPACING_2D and kwargs["translate"] == (0.0, 0.0)
    n_rings = sum(1 + len(p.holes) for roi in roi_set.rois for p in roi.shapes)
    assert len(data) == n_rings
    features = kwargs["features"]
    assert isinstance(features, pd.DataFrame) and len(features) == len(data)
    assert {"label", "roi_name", "is_hole", "area_px", "area_um2"} <= set(features.columns)
    per_label = features.groupby("label")["is_hole"].agg(["size", "sum"])
    # 3: ring with a hole + the island inside it; 13: holed by a pixel of 14;
    # 14 and 70000: two pieces each; the others one ring.
    assert per_label.loc[3].tolist() == [3, 1]
    assert per_label.loc[13].tolist() == [2, 1]
    assert per_label.loc[14].tolist() == [2, 0]
    assert per_label.loc[70_000].tolist() == [2, 0]
    assert per_label["size"].sum() == len(data)
    # The object's measurements repeat on each of its shapes.
    area_3 = roi_set.features.set_index("label").loc[3, "area_px"]
    assert (features.loc[features["label"] == 3, "area_px"] == area_3).all()
    colors = np.asarray(kwargs["edge_color"])
    np.testing.assert_array_equal(colors[features["is_hole"]], [HOLE_COLOR] * 2)
    np.testing.assert_array_equal(colors[~features["is_hole"]][0], EXTERIOR_COLOR)
    assert kwargs["face_color"] == "transparent"
    # Vertices stay in the file's pixels (napari's pixel centres are integers too).
    square = data[features.index[features["label"] == 12][0]]
    assert (square.min(axis=0).tolist(), square.max(axis=0).tolist()) == (
        [34.5, 44.5],
        [39.5, 49.5],
    )


def test_3d_shapes_carry_z_first(tmp_path):
    labels = hard_cases_3d()
    roi_set = extract_rois(labels, shape="polygon", spacing=SPACING_3D)
    data, kwargs, _ = read_one(write_rois(tmp_path, roi_set))
    assert kwargs["ndim"] == 3 and kwargs["scale"] == SPACING_3D
    expected_z = [float(p.z) for roi in roi_set.rois for p in roi.shapes for _ in (0, *p.holes)]
    assert [v.shape[1] for v in data] == [3] * len(data)
    assert [float(v[0, 0]) for v in data] == expected_z
    assert all(np.all(v[:, 0] == v[0, 0]) for v in data)
    assert set(expected_z) == {0.0, 1.0, 2.0}
    # Object 9 is absent from the middle plane.
    nine = kwargs["features"]["label"] == 9
    assert sorted(float(data[i][0, 0]) for i in np.flatnonzero(nine)) == [0.0, 2.0]


@pytest.mark.parametrize("ndim", [2, 3])
def test_ellipses_are_rotated_box_corners(tmp_path, ndim):
    labels = hard_cases_3d() if ndim == 3 else hard_cases_2d()
    roi_set = extract_rois(labels, shape="ellipse")
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set))
    assert layer_type == "shapes" and kwargs["shape_type"] == "ellipse"
    ellipses = [e for roi in roi_set.rois for e in roi.shapes]
    assert len(data) == len(ellipses) == len(kwargs["features"])
    for corners, e in zip(data, ellipses):
        assert corners.shape == (4, ndim)
        if ndim == 3:
            assert np.all(corners[:, 0] == e.z)
        yx = corners[:, -2:]
        np.testing.assert_allclose(yx.mean(axis=0), e.center, atol=1e-9)
        major, minor = e.semi_axes
        assert np.linalg.norm(yx[1] - yx[0]) == pytest.approx(2 * major)
        assert np.linalg.norm(yx[2] - yx[1]) == pytest.approx(2 * minor)
        direction = (yx[1] - yx[0]) / max(2 * major, 1e-12)
        if major > 0:
            np.testing.assert_allclose(direction, [np.sin(e.angle), np.cos(e.angle)], atol=1e-9)


def test_ellipse_corners_follow_the_angle():
    from fractal_roi_tasks.rois.shapes import Ellipse

    corners = ellipse_corners(Ellipse(center=(0.0, 0.0), semi_axes=(2.0, 1.0), angle=np.pi / 2))
    # Major axis along +y (rows): the box is 4 tall and 2 wide.
    np.testing.assert_allclose(corners, [[-2, 1], [2, 1], [2, -1], [-2, -1]], atol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
def test_points_layer(tmp_path, ndim):
    labels = hard_cases_3d() if ndim == 3 else hard_cases_2d()
    roi_set = extract_rois(labels, shape="point")
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set))
    assert layer_type == "points"
    assert data.shape == (len(roi_set.rois), ndim)
    np.testing.assert_array_equal(data, [r.shapes[0].position for r in roi_set.rois])
    assert kwargs["features"]["label"].tolist() == [r.label for r in roi_set.rois]


@pytest.mark.parametrize("ndim", [2, 3])
def test_masks_become_a_labels_layer(tmp_path, ndim):
    labels = hard_cases_3d() if ndim == 3 else hard_cases_2d()
    roi_set = extract_rois(labels, shape="mask")
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set))
    assert layer_type == "labels"
    np.testing.assert_array_equal(data, labels)
    features = kwargs["features"]
    assert features["index"].tolist() == features["label"].tolist()
    assert features["label"].tolist() == [r.label for r in roi_set.rois]


def test_skeleton_branches_are_paths(tmp_path):
    rois = (
        ObjectRoi(4, "4-0", (Polyline(np.array([[0, 1, 1], [1, 2, 2], [1, 2, 3.0]])),), 0),
        ObjectRoi(4, "4-1", (Polyline(np.array([[2, 5, 5], [2, 5, 6], [2, 6, 6.0]]), True),), 1),
    )
    features = pd.DataFrame({"label": [4, 4], "branch_length_px": [2.4, 3.0]})
    roi_set = RoiSet("skeleton", rois, features, (3, 10, 10), SPACING_3D)
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set, label_name="skeleton"))
    assert layer_type == "shapes" and kwargs["shape_type"] == "path"
    assert [len(p) for p in data] == [3, 4]  # the closed branch returns to its start
    np.testing.assert_array_equal(data[0][:, 0], [0, 1, 1])  # z first, varying along the path
    np.testing.assert_array_equal(data[1][-1], data[1][0])
    assert kwargs["features"]["roi_name"].tolist() == ["4-0", "4-1"]
    assert kwargs["features"]["branch_length_px"].tolist() == [2.4, 3.0]


def test_rois_folder_gives_layers_for_every_label(tmp_path):
    rois_dir = tmp_path / "B" / "03" / "0" / "rois"
    write_rois(rois_dir, extract_rois(hard_cases_2d(), shape="polygon"), label_name="nuclei")
    write_rois(rois_dir, extract_rois(hard_cases_2d(), shape="point"), label_name="cells")
    (rois_dir / "nuclei" / "B03_0_nuclei_rois.roi.zip").write_bytes(b"PK")  # other exports
    layers = get_reader(str(rois_dir))(str(rois_dir))
    assert [(kw["name"], t) for _, kw, t in layers] == [
        ("cells centroids", "points"),
        ("nuclei polygons", "shapes"),
    ]
    # One label's folder alone.
    (layer,) = read_rois(rois_dir / "nuclei")
    assert layer[1]["name"] == "nuclei polygons"
    assert layer[1]["metadata"]["source"].endswith("B03_0_nuclei_rois.json")


def test_lower_level_rois_are_shifted_onto_full_resolution(tmp_path):
    roi_set = extract_rois(hard_cases_2d(), shape="point", spacing=(1.3, 1.3))
    _, kwargs, _ = read_one(write_rois(tmp_path, roi_set, scale=[2.0, 2.0], level="1"))
    # Level-1 pixel 0 spans full-resolution pixels 0 and 1: its centre is
    # half a full-resolution pixel (0.65 um) right of full-resolution pixel 0.
    assert kwargs["scale"] == (1.3, 1.3)
    assert kwargs["translate"] == pytest.approx((0.325, 0.325))


def test_empty_roi_set_gives_an_empty_layer(tmp_path):
    roi_set = extract_rois(np.zeros((5, 6), np.uint32), shape="polygon")
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set))
    assert (data, layer_type, len(kwargs["features"])) == ([], "shapes", 0)


def test_get_reader_declines_other_files(tmp_path):
    ours = write_rois(tmp_path / "rois", extract_rois(hard_cases_2d()))
    assert get_reader(str(ours)) is not None
    assert get_reader([str(ours)]) is not None
    foreign = tmp_path / "other_rois.json"
    foreign.write_text(json.dumps({"schema": "something-else", "rois": []}))
    renamed = tmp_path / "rois.json"
    renamed.write_bytes(ours.read_bytes())
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    image = tmp_path / "image.tif"
    image.write_bytes(b"II*\x00")
    for path in [foreign, renamed, empty_dir, image, tmp_path / "missing_rois.json"]:
        assert get_reader(str(path)) is None, path
    assert get_reader([str(ours), str(foreign)]) is None
    assert get_reader([]) is None


def test_manifest_declares_the_reader():
    root = Path(fractal_roi_tasks.__file__).parent
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text())
    entry = pyproject["project"]["entry-points"]["napari.manifest"]["fractal-roi-tasks"]
    module, _, filename = entry.partition(":")
    manifest = yaml.safe_load((root / filename).read_text())
    assert module == "fractal_roi_tasks" and manifest["name"] == pyproject["project"]["name"]
    (command,) = manifest["contributions"]["commands"]
    (reader,) = manifest["contributions"]["readers"]
    assert command["id"] == reader["command"] == "fractal-roi-tasks.read_rois"
    module_name, _, function = command["python_name"].partition(":")
    assert getattr(importlib.import_module(module_name), function) is get_reader
    assert reader["filename_patterns"] == ["*_rois.json"]
    assert reader["accepts_directories"] is True


def test_docstring_examples_run():
    import doctest

    from fractal_roi_tasks import napari_reader

    result = doctest.testmod(napari_reader)
    assert result.attempted > 0 and result.failed == 0
