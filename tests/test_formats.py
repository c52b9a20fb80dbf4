"""ROI file formats: bytes round trips and the registry."""

import json

import numpy as np
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import batch, get_format, roi_json
from fractal_roi_tasks.rois import SHAPE_KINDS, RoiSet, extract_rois


def sample_labels():
    img = np.zeros((3, 30, 40), np.uint32)
    img[0, 2:10, 2:10] = 1
    img[0, 4:6, 4:6] = 0  # hole
    img[1, 5:8, 20:35] = 70_000
    img[2, 0, 0] = 5  # one pixel in the corner
    img[2, 20:25, 5:9] = 5  # second piece
    return img


@pytest.mark.parametrize("kind", SHAPE_KINDS)
@pytest.mark.parametrize("ndim", [2, 3])
def test_json_round_trip_gives_the_same_rois(kind, ndim):
    labels = sample_labels() if ndim == 3 else sample_labels().max(axis=0)
    spacing = (1.0, 0.5, 0.5)[-ndim:]
    original = extract_rois(labels, shape=kind, spacing=spacing)
    context = {"label_name": "nuclei", "well": None}
    back, back_context = roi_json.from_bytes(roi_json.to_bytes(original, context=context))
    assert back_context == context
    assert back.kind == kind and back.image_shape == labels.shape and back.spacing == spacing
    assert [r.label for r in back.rois] == [r.label for r in original.rois]
    assert back.features.columns.tolist() == original.features.columns.tolist()
    np.testing.assert_allclose(back.features.to_numpy(float), original.features.to_numpy(float))
    for a, b in zip(original.rois, back.rois):
        assert len(a.shapes) == len(b.shapes)
        for sa, sb in zip(a.shapes, b.shapes):
            assert type(sa) is type(sb)
            for field in sa.__dataclass_fields__:
                va, vb = getattr(sa, field), getattr(sb, field)
                if field == "holes":
                    assert len(va) == len(vb)
                    for ha, hb in zip(va, vb):
                        np.testing.assert_array_equal(ha, hb)
                else:
                    np.testing.assert_array_equal(np.asarray(va), np.asarray(vb))


def test_json_masks_rebuild_the_label_image():
    labels = sample_labels()
    back, _ = roi_json.from_bytes(roi_json.to_bytes(extract_rois(labels, shape="mask")))
    rebuilt = np.zeros_like(labels)
    for roi in back.rois:
        (mask,) = roi.shapes
        window = tuple(slice(o, o + s) for o, s in zip(mask.origin, mask.mask.shape))
        rebuilt[window][mask.mask] = roi.label
    np.testing.assert_array_equal(rebuilt, labels)


def test_json_refuses_foreign_or_future_documents():
    with pytest.raises(InvalidInputError, match="Not a fractal-roi-tasks/rois document"):
        roi_json.from_bytes(b'{"schema": "something-else"}')
    with pytest.raises(InvalidInputError, match="version 99 is not supported"):
        roi_json.from_bytes(b'{"schema": "fractal-roi-tasks/rois", "version": 99}')


def test_write_replaces_the_previous_file(tmp_path):
    labels = sample_labels()
    path = tmp_path / "x" / "rois.json"
    roi_json.write(path, extract_rois(labels))
    roi_json.write(path, extract_rois(labels[:1]))
    back, _ = roi_json.read(path)
    assert [r.label for r in back.rois] == [1]
    assert [p.name for p in path.parent.iterdir()] == ["rois.json"]


def test_registry_names_the_formats():
    assert get_format("json") is roi_json
    for name in ("imagej", "geojson", "ome_xml"):
        assert get_format(name).EXTENSION.startswith(".")
    with pytest.raises(
        InvalidInputError, match=r"available: \['geojson', 'imagej', 'json', 'ome_xml'\]"
    ):
        get_format("tiff")


def test_a_format_missing_its_optional_package_is_refused_up_front(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ome_types(name, *args, **kwargs):
        if name.startswith("ome_types"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ome_types)
    with pytest.raises(InvalidInputError, match=r"fractal-roi-tasks\[ome-xml\]"):
        get_format("ome_xml")


# --------------------------------------------------------------------------
# Writing in bulk (formats/batch.py)


@pytest.mark.parametrize("kind", SHAPE_KINDS)
@pytest.mark.parametrize("ndim", [2, 3])
def test_json_text_is_what_json_dumps_writes(kind, ndim):
    """The ROIs' text, built in bulk, is the compact JSON json.dumps writes for it."""
    labels = sample_labels() if ndim == 3 else sample_labels().max(axis=0)
    roi_set = extract_rois(labels, shape=kind, spacing=(1.0, 0.5, 0.5)[-ndim:])
    roi_set.features["mean_intensity"] = np.nan  # NaN as json.dumps writes it
    text = roi_json.to_bytes(roi_set, context={"label_name": 'a "b" \\ c'}).decode()
    assert json.dumps(json.loads(text), separators=(",", ":")) == text


def test_numbers_are_formatted_once_per_value_exactly_as_given():
    values = np.array([[0.5, -0.0], [0.0, 1e-7], [np.nan, 2.5], [1 / 3, 0.5]])
    assert batch.number_texts(values).tolist() == [[repr(v) for v in row] for row in values.tolist()]
    grid = np.arange(-4.0, 8.0, 0.5)  # half-integers: looked up in a table
    assert batch.number_texts(grid).tolist() == [repr(v) for v in grid.tolist()]
    calls = []
    batch.number_texts(np.array([3.0, 3.0, 3.0, 4.0]), lambda v: calls.append(v) or str(v))
    assert calls == [3.0, 4.0]


def test_point_lists_follow_their_templates():
    points = np.array([[0.0, 1.5], [2.0, -3.0], [4.0, 5.0], [6.0, 7.25]])
    bounds = np.array([0, 2, 2, 4])  # the middle run is empty
    assert batch.point_lists(points, bounds) == [
        "[[0.0,1.5],[2.0,-3.0]]",
        "[]",
        "[[4.0,5.0],[6.0,7.25]]",
    ]
    xml = batch.point_lists(points, bounds, number=str, vertex="{},{}", sep=" ", wrap="{}")
    assert xml == ["0.0,1.5 2.0,-3.0", "", "4.0,5.0 6.0,7.25"]
    three = batch.point_lists(np.arange(6.0).reshape(2, 3), [0, 2], vertex="[{},{},{}]")
    assert three == ["[[0.0,1.0,2.0],[3.0,4.0,5.0]]"]
    with pytest.raises(ValueError, match="does not hold 3 values"):
        batch.point_lists(np.zeros((1, 3)), [0, 1])


def test_a_features_table_out_of_step_with_the_rois_is_refused():
    roi_set = extract_rois(sample_labels())
    features = roi_set.features.iloc[:-1]
    short = RoiSet(roi_set.kind, roi_set.rois, features, roi_set.image_shape, roi_set.spacing)
    for name in ("json", "imagej", "geojson", "ome_xml"):
        with pytest.raises(InvalidInputError, match="expected one row per ROI"):
            get_format(name).to_bytes(short)
