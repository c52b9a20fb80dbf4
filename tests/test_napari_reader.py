"""The napari reader: its LayerData, and the layers napari 0.9 itself builds from them.

napari runs here without Qt: `napari.layers.Layer.create` builds each layer
exactly as a viewer does when our reader returns it, and a `ViewerModel`
(the viewer without its window) holds them next to an image layer.
"""

import importlib
import json
import tomllib
from pathlib import Path

import ngio
import numpy as np
import pandas as pd
import pytest
import yaml
from skimage.draw import ellipse as fill_ellipse
from skimage.draw import line_nd
from skimage.measure import regionprops

import fractal_roi_tasks
from fractal_roi_tasks.formats import roi_json
from fractal_roi_tasks.napari_reader import (
    EXTERIOR_COLOR,
    HOLE_COLOR,
    ellipse_corners,
    get_reader,
    layers_from_roi_set,
    placement_of,
    read_rois,
)
from fractal_roi_tasks.rois import extract_branches, extract_rois
from fractal_roi_tasks.rois.shapes import ObjectRoi, Polyline, RoiSet
from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois
from tests.label_cases import hard_cases_2d, hard_cases_3d
from tests.napari_imports import Image, Labels, Layer, Points, Shapes, ViewerModel

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


def hard_cases(ndim):
    return hard_cases_3d() if ndim == 3 else hard_cases_2d()


def hard_case_layer(folder, ndim, shape):
    """``(labels, roi_set, layer_data)``: the hard cases as ``shape`` ROIs, read back as a layer."""
    labels = hard_cases(ndim)
    roi_set = extract_rois(labels, shape=shape)
    return labels, roi_set, read_one(write_rois(folder, roi_set))


def test_polygons_with_holes_are_rings_marked_is_hole(tmp_path):
    labels = hard_cases_2d()
    roi_set = extract_rois(labels, shape="polygon", spacing=SPACING_2D)
    data, kwargs, layer_type = read_one(write_rois(tmp_path, roi_set))
    assert layer_type == "shapes"
    assert kwargs["shape_type"] == "polygon" and kwargs["ndim"] == 2
    assert kwargs["name"] == "nuclei polygons"
    assert kwargs["scale"] == SPACING_2D and kwargs["translate"] == (0.0, 0.0)
    assert kwargs["units"] == ("micrometer", "micrometer")
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
    _, roi_set, (data, kwargs, layer_type) = hard_case_layer(tmp_path, ndim, "ellipse")
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
    _, roi_set, (data, kwargs, layer_type) = hard_case_layer(tmp_path, ndim, "point")
    assert layer_type == "points"
    assert data.shape == (len(roi_set.rois), ndim)
    np.testing.assert_array_equal(data, [r.shapes[0].position for r in roi_set.rois])
    assert kwargs["features"]["label"].tolist() == [r.label for r in roi_set.rois]


@pytest.mark.parametrize("ndim", [2, 3])
def test_masks_become_a_labels_layer(tmp_path, ndim):
    labels, roi_set, (data, kwargs, layer_type) = hard_case_layer(tmp_path, ndim, "mask")
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


def test_a_file_away_from_its_image_is_placed_by_its_spacing(tmp_path):
    roi_set = extract_rois(hard_cases_2d(), shape="point", spacing=(1.3, 1.3))
    _, kwargs, _ = read_one(write_rois(tmp_path, roi_set, scale=[2.0, 2.0], level="1"))
    # No OME-Zarr around the file: ngio's pyramid convention (levels are
    # subsampled, without translation), so no half-pixel shift.
    assert kwargs["scale"] == (1.3, 1.3)
    assert kwargs["translate"] == (0.0, 0.0)
    assert kwargs["units"] == ("micrometer", "micrometer")
    assert kwargs["axis_labels"] == ("y", "x")
    assert kwargs["metadata"]["placement"] == "spacing_um of the file"


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


# --------------------------------------------------------------------------
# In napari itself: every layer opens, lies on the labels, carries the units


def drawn_skeletons(ndim):
    """A thin label image drawn line by line: a junction, a loop, a diagonal (2D); 3D paths."""
    if ndim == 2:
        image = np.zeros((50, 64), np.uint16)
        strokes = {
            1: [(5, 5), (15, 15), (15, 30)],
            2: [(30, 12), (37, 5), (44, 12), (37, 19), (30, 12)],  # a diamond: one cycle
            3: [(5, 40), (20, 55)],
        }
        branch_of_1 = [(15, 15), (25, 10)]
        pieces = [(lab, pts) for lab, pts in strokes.items()] + [(1, branch_of_1)]
    else:
        image = np.zeros((6, 30, 40), np.uint16)
        pieces = [(1, [(0, 2, 2), (5, 12, 20)]), (2, [(1, 25, 5), (1, 25, 30), (4, 15, 35)])]
    for label, points in pieces:
        for start, stop in zip(points[:-1], points[1:]):
            image[line_nd(start, stop, endpoint=True)] = label
    return image


def drawn_ellipses(ndim):
    """Filled, rotated ellipses (per plane in 3D, moving from plane to plane)."""
    image = np.zeros((80, 90), np.uint16)
    for label, (center, radii, rotation) in enumerate(
        [((20, 25), (12, 6), 0.5), ((45, 60), (8, 8), 0.0), ((60, 22), (14, 5), -1.0)], start=1
    ):
        image[fill_ellipse(*center, *radii, shape=image.shape, rotation=rotation)] = label
    if ndim == 2:
        return image
    return np.stack([np.roll(image, 3 * z, axis=1) for z in range(3)])


def label_image(kind, ndim):
    if kind == "skeleton":
        return drawn_skeletons(ndim)
    if kind == "ellipse":
        return drawn_ellipses(ndim)
    return hard_cases(ndim)


def roi_set_of(kind, labels, spacing):
    if kind == "skeleton":
        return extract_branches(labels, spacing=spacing).roi_set
    return extract_rois(labels, shape=kind, spacing=spacing)


LAYER_CLASS = {"polygon": Shapes, "ellipse": Shapes, "skeleton": Shapes, "point": Points, "mask": Labels}
SHAPE_TYPE = {"polygon": "polygon", "ellipse": "ellipse", "skeleton": "path"}


def napari_layers(path):
    """The layers napari builds from what our reader returns for `path`."""
    return [Layer.create(data, meta, layer_type) for data, meta, layer_type in read_rois(path)]


@pytest.mark.parametrize("empty", [False, True], ids=["objects", "empty"])
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", ["polygon", "mask", "ellipse", "point", "skeleton"])
def test_every_layer_opens_in_napari(tmp_path, kind, ndim, empty):
    labels = label_image(kind, ndim)
    if empty:
        labels = np.zeros_like(labels)
    spacing = SPACING_3D if ndim == 3 else SPACING_2D
    roi_set = roi_set_of(kind, labels, spacing)
    path = write_rois(tmp_path, roi_set, label_name=kind)
    (layer,) = napari_layers(path)
    assert type(layer) is LAYER_CLASS[kind]
    assert layer.ndim == ndim
    np.testing.assert_allclose(layer.scale, spacing)
    np.testing.assert_array_equal(layer.translate, [0.0] * ndim)
    assert [str(u) for u in layer.units] == ["micrometer"] * ndim
    assert layer.axis_labels == ("z", "y", "x")[-ndim:]
    features = layer.features
    if kind == "mask":
        assert layer.data.shape == labels.shape
        np.testing.assert_array_equal(layer.data, labels)
        assert features["index"].tolist() == [r.label for r in roi_set.rois]
    else:
        n_items = sum(
            1 + len(getattr(s, "holes", ())) for roi in roi_set.rois for s in roi.shapes
        )
        assert len(layer.data) == n_items == len(features)
        if kind != "point":
            assert layer.shape_type == [SHAPE_TYPE[kind]] * n_items
    assert {"label", "roi_name"} <= set(features.columns)
    assert set(roi_set.features.columns) <= set(features.columns)
    assert set(features["label"]) == {r.label for r in roi_set.rois}
    assert (len(features) == 0) == empty


@pytest.mark.parametrize("ndim", [2, 3])
def test_polygons_rasterise_in_napari_to_exactly_the_labels(tmp_path, ndim):
    labels = label_image("polygon", ndim)
    (layer,) = napari_layers(write_rois(tmp_path, extract_rois(labels, shape="polygon")))
    masks = layer.to_masks(labels.shape)  # napari's own fill, one mask per ring
    per_label = labels_from_rings(masks, layer.features)
    for label in np.unique(labels[labels > 0]):
        np.testing.assert_array_equal(per_label[label], labels == label, err_msg=f"label {label}")
    assert iou(np.any(list(per_label.values()), axis=0), labels > 0) == 1.0
    np.testing.assert_array_equal(
        np.asarray(layer.edge_color)[np.asarray(layer.features["is_hole"], bool)][0], HOLE_COLOR
    )


def labels_from_rings(masks, features):
    """Per label, the pixels its rings enclose, holes cut out (even-odd)."""
    drawn = {}
    for mask, label in zip(masks, features["label"]):
        drawn[label] = drawn.get(label, np.zeros(mask.shape, bool)) ^ mask
    return drawn


def iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@pytest.mark.parametrize("ndim", [2, 3])
def test_points_sit_on_the_object_centroids_in_napari(tmp_path, ndim):
    labels = label_image("point", ndim)
    (layer,) = napari_layers(write_rois(tmp_path, extract_rois(labels, shape="point")))
    expected = {r.label: r.centroid for r in regionprops(labels)}
    assert sorted(expected) == layer.features["label"].tolist()
    np.testing.assert_allclose(
        layer.data, [expected[lab] for lab in layer.features["label"]], atol=1e-9
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_masks_are_the_label_image_in_napari(tmp_path, ndim):
    labels = label_image("mask", ndim)
    (layer,) = napari_layers(write_rois(tmp_path, extract_rois(labels, shape="mask")))
    np.testing.assert_array_equal(layer.data, labels)
    some = labels.max()
    position = np.argwhere(labels == some)[0]
    assert layer.get_value(layer.data_to_world(position)) == some
    row = layer.features.set_index("index").loc[some]
    assert row["area_px"] == (labels == some).sum()


def test_skeleton_paths_run_through_the_skeleton_pixels_in_napari(tmp_path):
    skeleton = drawn_skeletons(2)
    (layer,) = napari_layers(write_rois(tmp_path, roi_set_of("skeleton", skeleton, None)))
    drawn = layer.to_masks(skeleton.shape)  # napari's own line drawing
    union = np.zeros(skeleton.shape, bool)
    for mask, vertices, label in zip(drawn, layer.data, layer.features["label"]):
        assert np.all(vertices == np.round(vertices))  # pixel centres are integers in napari
        assert np.all(skeleton[mask] == label)  # the path leaves no pixel of its skeleton
        union |= mask
    np.testing.assert_array_equal(union, skeleton > 0)  # and passes every one
    closed = [v for v in layer.data if np.array_equal(v[0], v[-1])]
    assert len(closed) == 1  # the diamond


def test_3d_skeleton_paths_step_from_skeleton_pixel_to_skeleton_pixel_in_napari(tmp_path):
    skeleton = drawn_skeletons(3)
    (layer,) = napari_layers(write_rois(tmp_path, roi_set_of("skeleton", skeleton, SPACING_3D)))
    visited = np.zeros(skeleton.shape, bool)
    assert len(np.unique(np.concatenate(layer.data)[:, 0])) == 6  # paths across all planes
    for vertices, label in zip(layer.data, layer.features["label"]):
        index = vertices.astype(int)
        np.testing.assert_array_equal(index, vertices)  # integer (z, y, x) pixel centres
        assert np.all(skeleton[tuple(index.T)] == label)
        assert np.abs(np.diff(index, axis=0)).max() == 1  # neighbours: no pixel skipped
        visited[tuple(index.T)] = True
    np.testing.assert_array_equal(visited, skeleton > 0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_ellipses_in_napari_cover_their_objects(tmp_path, ndim):
    labels = drawn_ellipses(ndim)
    (layer,) = napari_layers(write_rois(tmp_path, extract_rois(labels, shape="ellipse")))
    masks = layer.to_masks(labels.shape)  # napari's own fill of its ellipses
    assert len(masks) == (3 if ndim == 2 else 9)
    for mask, label in zip(masks, layer.features["label"]):
        obj = labels == label
        if ndim == 3:  # one ellipse per plane: compare in that plane
            (plane,) = np.unique(np.nonzero(mask)[0])
            mask, obj = mask[plane], obj[plane]
        # Same second moments as a filled ellipse: napari draws nearly that ellipse.
        assert iou(mask, obj) > 0.9, label
        np.testing.assert_allclose(
            np.argwhere(mask).mean(axis=0), np.argwhere(obj).mean(axis=0), atol=0.5
        )


def test_layers_share_the_image_units_in_a_viewer(tmp_path):
    labels = hard_cases_2d()
    roi_sets = [extract_rois(labels, shape=k, spacing=SPACING_2D) for k in ("polygon", "point")]
    paths = [write_rois(tmp_path, s, label_name=k) for s, k in zip(roi_sets, ("p", "q"))]
    viewer = ViewerModel()
    viewer.add_layer(
        Image(labels.astype(float), scale=SPACING_2D, units=("micrometer", "micrometer"))
    )
    for path in paths:
        for layer in napari_layers(path):
            viewer.add_layer(layer)
    # napari's canvas warns "Inconsistent units across layers" (and drops the
    # scale bar's unit) exactly when the layer list has no common units.
    assert viewer.layers.units is not None
    assert [str(u) for u in viewer.layers.units] == ["micrometer", "micrometer"]
    # What our layers did before they had units:
    data, meta, layer_type = read_rois(paths[0])[0]
    viewer.add_layer(Layer.create(data, {**meta, "units": None}, layer_type))
    assert viewer.layers.units is None


def ngff_level(url, name, level):
    """scale, translation and axis units of one label level, as written in its metadata."""
    group = Path(url) / "labels" / name
    if (group / "zarr.json").exists():  # NGFF 0.5
        attrs = json.loads((group / "zarr.json").read_text())["attributes"]["ome"]
    else:
        attrs = json.loads((group / ".zattrs").read_text())
    multiscale = attrs["multiscales"][0]
    (dataset,) = [d for d in multiscale["datasets"] if d["path"] == level]
    scale = np.ones(len(multiscale["axes"]))
    translation = np.zeros(len(multiscale["axes"]))
    for transform in dataset["coordinateTransformations"]:
        if transform["type"] == "scale":
            scale = np.asarray(transform["scale"], float)
        elif transform["type"] == "translation":
            translation = np.asarray(transform["translation"], float)
    units = [axis.get("unit") for axis in multiscale["axes"]]
    return scale, translation, units


def test_level_1_rois_lie_where_napari_ome_zarr_puts_the_level_1_labels(plate):
    image = plate.images[0]
    url = image.zarr_url
    ome_zarr = ngio.open_ome_zarr_container(url)
    pyramid = [
        np.squeeze(ome_zarr.get_label("nuclei", path=p).get_array()) for p in ("0", "1", "2")
    ]
    outputs = {}
    for shape in ("polygon", "point"):
        segment_to_rois(zarr_url=url, label_name="nuclei", level="1", shape=shape, exports=["json"])
        file = Path(url) / "rois" / "nuclei" / f"{image.well}_{image.path}_nuclei_rois.json"
        (outputs[shape],) = napari_layers(file)
    polygons, points = outputs["polygon"], outputs["point"]

    # napari-ome-zarr opens the labels as one multiscale layer placed by
    # level 0's NGFF transformations; napari draws level k at its downsample factor.
    scale0, translation0, units = ngff_level(url, "nuclei", "0")
    scale1, translation1, _ = ngff_level(url, "nuclei", "1")
    opened = Labels(pyramid, multiscale=True, scale=scale0, translate=translation0, units=units)
    factor = np.asarray(opened.downsample_factors[1])
    np.testing.assert_allclose(factor * scale0, scale1)
    for layer in (polygons, points):
        np.testing.assert_allclose(layer.scale, scale1)
        np.testing.assert_allclose(layer.translate, translation1)
        assert [str(u) for u in layer.units] == units
        assert "OME-NGFF" in layer.metadata["placement"]
        # Level-1 pixel j is where napari puts it as part of the pyramid.
        for j in ([0.0, 0.0], [10.0, 7.0], [100.0, 250.0]):
            np.testing.assert_allclose(
                layer.data_to_world(j), opened.data_to_world(np.asarray(j) * factor)
            )

    # The outlines fill exactly the level-1 labels (IoU 1.0, napari's own fill).
    level1 = pyramid[1]
    drawn = labels_from_rings(polygons.to_masks(level1.shape), polygons.features)
    for label, mask in drawn.items():
        np.testing.assert_array_equal(mask, level1 == label, err_msg=f"label {label}")
    # Level-1 centroids lie exactly where napari draws the level-1 labels'
    # own centroids, over the full-resolution image: the layer adds no shift.
    level1_centroids = {r.label: r.centroid for r in regionprops(level1)}
    as_napari_shows = np.array(
        [opened.data_to_world(np.asarray(level1_centroids[lab]) * factor) for lab in points.features["label"]]
    )
    ours = np.array([points.data_to_world(p) for p in points.data])
    np.testing.assert_allclose(ours, as_napari_shows, atol=1e-9)
    assert len(points.data) > 20

    # The pyramid itself: ngio 1.1.3 takes level-0 pixel 2j + 1 as level-1
    # pixel j while its metadata (scale only) puts it at 2j, so napari shows
    # level 1 (and, placed by that metadata, our level-1 ROIs) about one
    # full-resolution pixel up-left of level 0; the old half-pixel translate
    # gave half of that.
    np.testing.assert_array_equal(pyramid[0][1::2, 1::2], level1)
    full = {r.label: r.centroid for r in regionprops(pyramid[0])}
    at_full = np.array([opened.data_to_world(full[lab]) for lab in points.features["label"]])
    offset_px = (ours - at_full).mean(axis=0) / scale0
    np.testing.assert_allclose(offset_px, [-1.0, -1.0], atol=0.1)


def write_ngff_label(image, name, *, version, shapes, transforms, axes, global_transforms=()):
    """A label group's NGFF metadata as a writer would put it (no pixel data needed)."""
    group = image / "labels" / name
    multiscale = {
        "axes": axes,
        "datasets": [
            {"path": str(k), "coordinateTransformations": tr} for k, tr in enumerate(transforms)
        ],
    }
    if global_transforms:
        multiscale["coordinateTransformations"] = list(global_transforms)
    for k, shape in enumerate(shapes):
        (group / str(k)).mkdir(parents=True)
        if version == "0.4":
            (group / str(k) / ".zarray").write_text(json.dumps({"shape": shape}))
        else:
            (group / str(k) / "zarr.json").write_text(json.dumps({"shape": shape, "node_type": "array"}))
    if version == "0.4":
        (group / ".zattrs").write_text(json.dumps({"multiscales": [multiscale]}))
    else:
        attrs = {"ome": {"version": "0.5", "multiscales": [multiscale]}}
        (group / "zarr.json").write_text(json.dumps({"attributes": attrs, "node_type": "group"}))


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_placement_composes_the_levels_transformations_and_units(tmp_path, version):
    image = tmp_path / "plate.zarr" / "B" / "03" / "0"
    axes = [
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "nanometer"},
        {"name": "x", "type": "space", "unit": "nanometer"},
    ]
    write_ngff_label(
        image, "cells", version=version, axes=axes,
        shapes=[[1, 3, 40, 50], [1, 3, 20, 25]],
        transforms=[
            [{"type": "scale", "scale": [1, 2.0, 100.0, 100.0]}],
            [
                {"type": "scale", "scale": [1, 2.0, 200.0, 200.0]},
                {"type": "translation", "translation": [0, 0, 50.0, 50.0]},
            ],
        ],
        global_transforms=[{"type": "translation", "translation": [0, 10.0, 1000.0, 0.0]}],
    )
    labels = hard_cases_3d()[:, ::2, ::2]
    roi_set = extract_rois(labels, shape="point", spacing=(2.0, 0.2, 0.2))
    path = write_rois(image / "rois", roi_set, label_name="cells", level="1")
    (layer,) = napari_layers(path)
    np.testing.assert_allclose(layer.scale, [2.0, 200.0, 200.0])
    np.testing.assert_allclose(layer.translate, [10.0, 1050.0, 50.0])
    assert [str(u) for u in layer.units] == ["micrometer", "nanometer", "nanometer"]
    assert layer.axis_labels == ("z", "y", "x")
    placement = placement_of(roi_set, {"label_name": "cells", "level": "1"}, source=path)
    assert placement.origin.endswith("level 1") and "labels/cells" in placement.origin

    # The context's zarr_url finds the image when the file was moved away.
    moved = tmp_path / "elsewhere_rois.json"
    moved.write_bytes(path.read_bytes())
    _, context = roi_json.read(moved)
    context["zarr_url"] = str(image)
    assert placement_of(roi_set, context, source=moved).scale == (2.0, 200.0, 200.0)
    # A level whose array is not the file's shape is not the file's level.
    assert placement_of(roi_set, {**context, "level": "0"}, source=moved).origin == (
        "spacing_um of the file"
    )
    # Nor is a file of another label; without a context, its spacing places it.
    assert placement_of(roi_set, {}, source=moved).scale == (2.0, 0.2, 0.2)
    data, meta, layer_type = layers_from_roi_set(roi_set, {**context, "label_name": "nope"})[0]
    assert meta["scale"] == (2.0, 0.2, 0.2) and meta["units"] == ("micrometer",) * 3


def test_napari_finds_and_runs_the_reader_through_npe2(tmp_path):
    from npe2 import PluginManager, io_utils

    PluginManager.instance().discover()
    rois_dir = tmp_path / "image" / "rois"
    ellipses = extract_rois(hard_cases_2d(), shape="ellipse")
    write_rois(rois_dir, ellipses, label_name="nuclei")
    write_rois(rois_dir, extract_rois(np.zeros((5, 5), np.uint8), shape="point"), label_name="none")
    # What napari's File > Open (or `napari path`) does with a folder.
    layer_data = io_utils.read([str(rois_dir)], stack=False, plugin_name="fractal-roi-tasks")
    layers = [Layer.create(*item) for item in layer_data]
    n_ellipses = sum(len(roi.shapes) for roi in ellipses.rois)
    assert n_ellipses > 5
    assert [(type(la).__name__, la.name, len(la.data)) for la in layers] == [
        ("Points", "none centroids", 0),
        ("Shapes", "nuclei ellipses", n_ellipses),
    ]


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
