"""OME-XML ROIs: written with ome-types, read back, rasterized as OMERO would."""

import base64
import math
import sys

import numpy as np
import ome_types  # the test extra installs it (and lxml, for schema validation)
import pandas as pd
import pytest
from ome_types import model
from skimage.draw import ellipse as draw_ellipse
from skimage.measure import points_in_poly

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import get_format, ome_xml
from fractal_roi_tasks.rois import extract_rois
from fractal_roi_tasks.rois.shapes import ObjectRoi, Polyline, RoiSet
from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei
from tests.label_cases import hard_cases_2d, hard_cases_3d


def round_trip(roi_set, context=None):
    data = ome_xml.to_bytes(roi_set, context=context)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ome_types.from_xml(data)


def parse_points(text):
    return np.array([[float(v) for v in pair.split(",")] for pair in text.split()])


def rasterize(shapes, planes_shape):
    """Coverage count per pixel of one ROI's shapes, the way OMERO reads them.

    Polygons: pixels whose centre (x + 0.5, y + 0.5) is inside; Masks: the
    bits, rows of the crop packed MSB first from (X, Y). Shapes go to TheZ.
    """
    out = np.zeros(planes_shape, np.int32)
    for shape in shapes:
        plane = out[shape.the_z]
        if isinstance(shape, model.Polygon):
            xy = parse_points(shape.points)
            x0, y0 = np.floor(xy.min(axis=0)).astype(int)
            x1, y1 = np.ceil(xy.max(axis=0)).astype(int)
            yy, xx = np.mgrid[y0:y1, x0:x1]
            centres = np.column_stack([xx.ravel() + 0.5, yy.ravel() + 0.5])
            inside = points_in_poly(centres, xy).reshape(yy.shape)
            plane[y0:y1, x0:x1] += inside
        elif isinstance(shape, model.Mask):
            w, h = int(shape.width), int(shape.height)
            assert shape.bin_data.length == len(base64.b64encode(shape.bin_data.value))
            bits = np.unpackbits(np.frombuffer(shape.bin_data.value, np.uint8))[: w * h]
            x, y = int(shape.x), int(shape.y)
            assert (x, y) == (shape.x, shape.y)
            plane[y : y + h, x : x + w] += bits.reshape(h, w).astype(np.int32)
        else:
            raise AssertionError(f"unexpected shape {type(shape).__name__}")
    return out


def annotations_of(ome):
    by_id = {a.id: a for a in ome.structured_annotations.map_annotations}
    return {
        roi.id: {m.k: m.value for m in by_id[roi.annotation_refs[0].id].value.ms}
        for roi in ome.rois
    }


def assert_objects_exact(labels, ome, scale=1):
    """Every object's ROI rasterizes to exactly its pixels, plane by plane."""
    volume = labels if labels.ndim == 3 else labels[None]
    if scale != 1:
        volume = np.kron(volume, np.ones((1, scale, scale), volume.dtype))
    values = annotations_of(ome)
    found = set()
    for roi in ome.rois:
        label = int(values[roi.id]["label"])
        assert roi.name == str(label)
        coverage = rasterize(roi.union, volume.shape)
        assert coverage.max() <= 1, f"shapes of object {label} overlap"
        np.testing.assert_array_equal(coverage == 1, volume == label, err_msg=f"object {label}")
        found.add(label)
    assert found == set(np.unique(volume).tolist()) - {0}


@pytest.mark.parametrize("kind", ["polygon", "mask"])
def test_hard_cases_2d_rasterize_exactly(kind):
    labels = hard_cases_2d()
    ome = round_trip(extract_rois(labels, shape=kind))
    assert_objects_exact(labels, ome)
    assert {s.the_z for roi in ome.rois for s in roi.union} == {0}


def test_holes_become_masks_and_pieces_stay_polygons():
    ome = round_trip(extract_rois(hard_cases_2d(), shape="polygon"))
    kinds = {r.name: sorted(type(s).__name__ for s in r.union) for r in ome.rois}
    assert kinds["3"] == ["Mask", "Polygon"]  # ring with a hole + the island in it
    assert kinds["13"] == ["Mask"]  # holed by a pixel of 14
    assert kinds["14"] == ["Polygon", "Polygon"]  # two pieces
    assert kinds["70000"] == ["Polygon", "Polygon"]
    assert kinds["12"] == ["Polygon"]
    (square,) = [s for r in ome.rois if r.name == "12" for s in r.union]
    # Outline on pixel corners: pixels 45..49 x 35..39 -> corners 45..50, 35..40.
    xy = parse_points(square.points)
    assert (xy.min(axis=0).tolist(), xy.max(axis=0).tolist()) == ([45, 35], [50, 40])


@pytest.mark.parametrize("kind", ["polygon", "mask"])
def test_hard_cases_3d_rasterize_exactly_per_plane(kind):
    labels = hard_cases_3d()
    ome = round_trip(extract_rois(labels, shape=kind))
    assert_objects_exact(labels, ome)
    planes_of_9 = {s.the_z for r in ome.rois if r.name == "9" for s in r.union}
    assert planes_of_9 == {0, 2}  # absent from the middle plane
    assert ome.images[0].pixels.size_z == 3


@pytest.mark.parametrize("kind", ["polygon", "mask"])
def test_real_nuclei_rasterize_exactly(kind):
    labels = load_cardiomyocyte_nuclei()[1]
    ome = round_trip(extract_rois(labels, shape=kind, spacing=(0.65, 0.65)))
    assert len(ome.rois) == 168
    assert_objects_exact(labels, ome)
    pixels = ome.images[0].pixels
    assert (pixels.size_x, pixels.size_y) == (512, 512)
    assert (pixels.physical_size_x, pixels.physical_size_y) == (0.65, 0.65)


@pytest.mark.parametrize("kind", ["polygon", "mask"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_scale_2_doubles_coordinates(kind, ndim):
    labels = hard_cases_3d() if ndim == 3 else hard_cases_2d()
    roi_set = extract_rois(labels, shape=kind, spacing=(1.0, 1.3, 1.3)[-ndim:])
    at_2 = round_trip(roi_set, context={"scale": (1.0, 2.0, 2.0)[-ndim:]})
    assert_objects_exact(labels, at_2, scale=2)
    pixels = at_2.images[0].pixels
    assert (pixels.size_x, pixels.size_y, pixels.size_z) == (100, 80, 3 if ndim == 3 else 1)
    assert pixels.physical_size_x == pytest.approx(0.65)
    if kind == "polygon":
        at_1 = round_trip(roi_set)
        for r1, r2 in zip(at_1.rois, at_2.rois):
            p1 = [s for s in r1.union if isinstance(s, model.Polygon)]
            p2 = [s for s in r2.union if isinstance(s, model.Polygon)]
            assert len(p1) == len(p2)
            for a, b in zip(p1, p2):
                np.testing.assert_array_equal(parse_points(b.points), 2 * parse_points(a.points))


def test_ellipses_round_trip_centre_radii_and_rotation():
    labels = np.zeros((60, 80), np.uint32)
    rr, cc = draw_ellipse(30, 40, 8, 20, rotation=np.deg2rad(30))
    labels[rr, cc] = 5
    labels[5:9, 5:15] = 6  # axis-aligned: no transform
    roi_set = extract_rois(labels, shape="ellipse")
    for scale in (1.0, 2.0):
        ome = round_trip(roi_set, context={"scale": (scale, scale)})
        for roi, written in zip(roi_set.rois, ome.rois):
            (e,) = roi.shapes
            (shape,) = written.union
            assert isinstance(shape, model.Ellipse)
            cy, cx = e.center
            assert (shape.x, shape.y) == pytest.approx(((cx + 0.5) * scale, (cy + 0.5) * scale))
            assert (shape.radius_x, shape.radius_y) == pytest.approx(
                (e.semi_axes[0] * scale, e.semi_axes[1] * scale)
            )
            t = shape.transform or model.AffineTransform(a00=1, a01=0, a02=0, a10=0, a11=1, a12=0)
            end = (shape.x + shape.radius_x, shape.y)  # end of the major axis, unrotated
            moved = (
                t.a00 * end[0] + t.a01 * end[1] + t.a02,
                t.a10 * end[0] + t.a11 * end[1] + t.a12,
            )
            a = e.semi_axes[0] * scale
            expected = (shape.x + a * math.cos(e.angle), shape.y + a * math.sin(e.angle))
            assert moved == pytest.approx(expected)
    by_name = {r.name: r.union[0] for r in round_trip(roi_set).rois}
    rotation = math.degrees(math.atan2(by_name["5"].transform.a10, by_name["5"].transform.a00))
    assert 10 < rotation % 180 < 170  # a clearly tilted ellipse is written tilted
    assert by_name["6"].transform is None


@pytest.mark.parametrize("ndim", [2, 3])
def test_points_sit_on_pixel_centres(ndim):
    labels = hard_cases_3d() if ndim == 3 else hard_cases_2d()
    roi_set = extract_rois(labels, shape="point")
    ome = round_trip(roi_set)
    for roi, written in zip(roi_set.rois, ome.rois):
        ((shape,), (point,)) = (written.union, roi.shapes)
        assert isinstance(shape, model.Point)
        assert (shape.x, shape.y) == pytest.approx(
            (point.position[-1] + 0.5, point.position[-2] + 0.5)
        )
        assert shape.the_z == (math.floor(point.position[0] + 0.5) if ndim == 3 else 0)
    single = {r.name: r.union[0] for r in ome.rois}["9"]
    if ndim == 2:  # one pixel at (0, 30)
        assert (single.x, single.y, single.the_z) == (30.5, 0.5, 0)
    else:  # that pixel in planes 0 and 2, two rows lower in plane 2
        assert (single.x, single.y, single.the_z) == (30.5, 1.5, 1)


def skeleton_set(points, closed=False):
    features = pd.DataFrame({"label": [4], "branch_length_px": [3.5]})
    roi = ObjectRoi(
        label=4, name="4-0", branch=0, shapes=(Polyline(np.asarray(points, float), closed),)
    )
    shape = (3, 10, 10) if len(points[0]) == 3 else (10, 10)
    return RoiSet(
        kind="skeleton",
        rois=(roi,),
        features=features,
        image_shape=shape,
        spacing=(1.0,) * len(shape),
    )


def test_polyline_2d_through_pixel_centres():
    ome = round_trip(skeleton_set([(1, 1), (1, 2), (2, 3)]))
    ((line,),) = [r.union for r in ome.rois]
    assert isinstance(line, model.Polyline)
    assert line.points == "1.5,1.5 2.5,1.5 3.5,2.5"
    assert line.the_z == 0
    assert annotations_of(ome)["ROI:0"]["branch"] == "0"
    closed = round_trip(skeleton_set([(1, 1), (1, 2), (2, 2)], closed=True))
    assert closed.rois[0].union[0].points == "1.5,1.5 2.5,1.5 2.5,2.5 1.5,1.5"


def test_polyline_3d_one_run_per_plane():
    points = [(0, 1, 1), (0, 1, 2), (1, 2, 3), (1, 2, 4), (2, 3, 5)]
    ome = round_trip(skeleton_set(points))
    shapes = sorted(ome.rois[0].union, key=lambda s: s.the_z)
    assert [(type(s).__name__, s.the_z) for s in shapes] == [
        ("Polyline", 0),
        ("Polyline", 1),
        ("Point", 2),
    ]
    assert shapes[0].points == "1.5,1.5 2.5,1.5"
    assert shapes[1].points == "3.5,2.5 4.5,2.5"
    assert (shapes[2].x, shapes[2].y) == (5.5, 3.5)


def test_planes_channel_and_time():
    ome = round_trip(extract_rois(hard_cases_3d(), shape="polygon"), context={"channel": 2})
    shapes = [s for r in ome.rois for s in r.union]
    assert {s.the_c for s in shapes} == {2}
    assert {s.the_t for s in shapes} == {0}
    assert {s.the_z for s in shapes} == {0, 1, 2}
    assert ome.images[0].pixels.size_c == 3
    default = round_trip(extract_rois(hard_cases_2d(), shape="ellipse"))
    assert {(s.the_z, s.the_c, s.the_t) for r in default.rois for s in r.union} == {(0, 0, 0)}


def test_measurements_are_map_annotations_linked_to_each_roi():
    labels = hard_cases_2d()
    roi_set = extract_rois(labels, shape="polygon", spacing=(0.5, 0.5))
    ome = round_trip(roi_set, context={"label_name": "nuclei", "well": "B03", "image": "0"})
    values = annotations_of(ome)
    assert len(values) == len(roi_set.rois)
    namespaces = {a.id: a.namespace for a in ome.structured_annotations.map_annotations}
    for roi, row in zip(ome.rois, roi_set.features.to_dict(orient="records")):
        assert namespaces[roi.annotation_refs[0].id] == ome_xml.MEASUREMENTS_NAMESPACE
        got = values[roi.id]
        assert list(got) == list(row)
        for key, value in row.items():
            assert float(got[key]) == pytest.approx(value)
    # The image links every ROI and records where they come from.
    image = ome.images[0]
    assert image.name == "B03_0"
    assert [r.id for r in image.roi_refs] == [r.id for r in ome.rois]
    (about,) = [
        a for a in ome.structured_annotations.map_annotations if a.id == "Annotation:context"
    ]
    assert {m.k: m.value for m in about.value.ms}["label_name"] == "nuclei"


def test_empty_roi_set_writes_a_valid_document():
    ome = round_trip(extract_rois(np.zeros((5, 6), np.uint32)))
    assert ome.rois == [] and ome.images[0].roi_refs == []


def test_roi_without_shapes_is_left_out_with_a_warning(caplog):
    roi_set = extract_rois(hard_cases_2d()[:5])
    empty = ObjectRoi(label=99, name="99", shapes=())
    features = pd.concat([roi_set.features, roi_set.features.iloc[:1].assign(label=99)])
    with_empty = RoiSet(
        kind="polygon",
        rois=(*roi_set.rois, empty),
        features=features,
        image_shape=roi_set.image_shape,
        spacing=roi_set.spacing,
    )
    ome = round_trip(with_empty)
    assert [r.name for r in ome.rois] == ["3", "9"]
    assert "1 ROIs without any shape left out (['99'])" in caplog.text


def test_document_validates_against_the_ome_schema():
    for roi_set, context in [
        (extract_rois(hard_cases_3d(), shape="polygon"), {"channel": 1}),
        (extract_rois(hard_cases_2d(), shape="mask"), {"scale": (2.0, 2.0)}),
        (extract_rois(hard_cases_2d(), shape="ellipse"), None),
        (extract_rois(hard_cases_3d(), shape="point"), None),
        (skeleton_set([(0, 1, 1), (0, 1, 2), (1, 2, 3)]), None),
    ]:
        data = ome_xml.to_bytes(roi_set, context=context)
        ome_types.from_xml(data, validate=True)


def test_write_is_registered_and_replaces_the_file(tmp_path):
    assert get_format("ome_xml") is ome_xml
    assert ome_xml.EXTENSION == ".ome.xml"
    path = tmp_path / "rois" / f"B03_0_nuclei_rois{ome_xml.EXTENSION}"
    labels = hard_cases_2d()
    ome_xml.write(path, extract_rois(labels))
    ome_xml.write(path, extract_rois(labels[:5]), context={"label_name": "nuclei"})
    back = ome_xml.read(path)
    assert [r.name for r in back.rois] == ["3", "9"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_bad_context_is_refused():
    roi_set = extract_rois(hard_cases_2d())
    with pytest.raises(InvalidInputError, match=r"one positive factor per image axis \(2 values"):
        ome_xml.to_bytes(roi_set, context={"scale": (1.0, 2.0, 2.0)})
    with pytest.raises(InvalidInputError, match="channel index"):
        ome_xml.to_bytes(roi_set, context={"channel": "DAPI"})


def test_missing_ome_types_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ome_types", None)  # `import ome_types` now fails
    roi_set = extract_rois(hard_cases_2d())
    with pytest.raises(InvalidInputError, match=r'pip install "fractal-roi-tasks\[ome-xml\]"'):
        ome_xml.to_bytes(roi_set)
    with pytest.raises(InvalidInputError, match="needs the optional package ome-types"):
        ome_xml.from_bytes(b"<OME/>")


@pytest.mark.parametrize("kind", ["polygon", "mask", "ellipse", "point"])
def test_text_is_what_ome_types_writes_for_the_same_model(kind):
    """The document, written as text, is byte for byte what ome-types writes once it reads it."""
    roi_set = extract_rois(hard_cases_3d(), shape=kind, spacing=(1.0, 0.5, 0.5))
    roi_set.features["kind"] = 'a&b <c> "d" \'e\' \t f'  # a text column, escaped in XML
    contexts = [
        None,
        {"scale": (1.0, 1.5, 1.5), "channel": 2, "well": "B03", "image": "0"},
        {"scale": (2.0, 2.0, 3.0), "label_name": 'nu<"clei">\n&', "level": "1"},
    ]
    for context in contexts:
        data = ome_xml.to_bytes(roi_set, context=context)
        again = ome_types.to_xml(ome_types.from_xml(data, validate=True))
        assert data.decode("utf-8") == '<?xml version="1.0" encoding="UTF-8"?>\n' + again


def test_skeleton_text_is_what_ome_types_writes():
    for points in ([(1, 1), (1, 2), (2, 3)], [(0, 1, 1), (0, 1, 2), (1, 2, 3), (2, 3, 5)]):
        data = ome_xml.to_bytes(skeleton_set(points, closed=True), context={"label_name": "é"})
        again = ome_types.to_xml(ome_types.from_xml(data))
        assert data.decode("utf-8") == '<?xml version="1.0" encoding="UTF-8"?>\n' + again


def test_control_characters_are_refused():
    roi_set = extract_rois(hard_cases_2d())
    with pytest.raises(InvalidInputError, match="cannot hold control characters"):
        ome_xml.to_bytes(roi_set, context={"label_name": "nuclei\x01"})
