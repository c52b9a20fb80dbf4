"""ROIs of a time-lapse: every file puts each ROI at its time point, as its consumer reads it.

A set spanning time points is what Segment to ROIs hands the writers for a
time-lapse: one `RoiSet`, each ROI with its ``t`` and a name starting
``t{t}-``, the features with a ``t`` column. Here it is built from real labels
(ngio's cardiomyocyte nuclei in 2D, the drawn hard cases in 3D) cut or
moved differently at each time point, so that every time point holds other
pixels and a ROI put on the wrong time point would fill the wrong frame.
"""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import ome_types
import pandas as pd
import pytest
import roifile
import shapely
from ome_types import model
from skimage.measure import regionprops

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import geojson, imagej, ome_xml, roi_json
from fractal_roi_tasks.rois import extract_rois
from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei
from tests.consumer_raster import fill_even_odd, paint
from tests.label_cases import hard_cases_3d
from tests.napari_imports import Labels, Layer, Points, Shapes
from tests.test_format_ome_xml import rasterize

from fractal_roi_tasks.napari_reader import read_rois  # noqa: E402


@pytest.fixture(scope="module")
def nuclei_frames():
    """Three time points of the real nuclei: the field seen through a window that drifts."""
    labels = load_cardiomyocyte_nuclei()[1]
    return np.stack([labels[8 * t : 8 * t + 300, 12 * t : 12 * t + 320] for t in range(3)])


def frames_3d():
    """Two time points of a 3D label image, the second moved 3 pixels along x."""
    labels = hard_cases_3d()
    return np.stack([labels, np.roll(labels, 3, axis=-1)])


def timed_set(frames, **options):
    """One RoiSet over all time points, as Segment to ROIs builds it for a time-lapse."""
    sets = [extract_rois(frame, **options) for frame in frames]
    rois = tuple(
        replace(roi, t=t, name=f"t{t}-{roi.name}") for t, s in enumerate(sets) for roi in s.rois
    )
    features = pd.concat([s.features.assign(t=t) for t, s in enumerate(sets)], ignore_index=True)
    return replace(sets[0], rois=rois, features=features)


# --------------------------------------------------------------------------
# ImageJ / Fiji: hyperstack position T = t + 1, with C and Z


def ij_fill(rois, frames):
    """ImageJ's fill of each ROI painted into (T, (Z,) Y, X) at its T (and Z) position."""
    out = np.zeros(frames.shape, np.int64)
    shape = frames.shape[-2:]
    for roi in rois:
        target = out[roi.t_position - 1]
        if frames.ndim == 4:
            target = target[roi.z_position - 1]
        filled = fill_even_odd(roi.coordinates(multi=True), shape)
        paint(target, filled, int(roi.properties["label"]))
    return out


@pytest.mark.parametrize("ndim", [2, 3])
def test_imagej_rois_sit_on_their_time_point_as_roifile_reads_them(tmp_path, nuclei_frames, ndim):
    frames = nuclei_frames if ndim == 2 else frames_3d()
    roi_set = timed_set(frames)
    path = imagej.write(tmp_path / "rois.roi.zip", roi_set, context={"channel": 1})
    rois = roifile.roiread(path)
    for roi in rois:
        t = int(roi.properties["t"])
        assert roi.t_position == t + 1
        assert roi.name.startswith(f"t{t:02d}-label-")
        assert roi.c_position == 2 and roi.position == 0
        assert roi.z_position == (0 if ndim == 2 else int(roi.properties["z"]) + 1)
    assert {r.t_position for r in rois} == set(range(1, len(frames) + 1))
    np.testing.assert_array_equal(ij_fill(rois, frames), frames)
    assert len({r.name for r in rois}) == len(rois)  # names unique across time points


@pytest.mark.parametrize("ndim", [2, 3])
def test_real_imagej_reads_each_roi_at_frame_t_plus_1(tmp_path, nuclei_frames, ndim):
    from tests.imagej_java import imagej_rois

    frames = nuclei_frames if ndim == 2 else frames_3d()
    for kind in ("polygon", "point", "ellipse"):
        roi_set = timed_set(frames, shape=kind)
        path = imagej.write(tmp_path / f"{kind}.roi.zip", roi_set, context={"channel": 0})
        found = imagej_rois(path)
        assert len(found) == len(imagej.imagej_rois(roi_set))
        for entry, roi in found.items():
            t = int(entry[1:3])
            # ImageJ's own hyperstack position: C, Z, T 1-based, the stack position unset
            assert (roi.c, roi.t, roi.position) == (1, t + 1, 0), entry
            assert roi.z == (0 if ndim == 2 else int(roi.properties["z"]) + 1), entry
            assert roi.properties["t"] == str(t)
            assert roi.name == entry
        assert {r.t for r in found.values()} == set(range(1, len(frames) + 1))
        if kind == "polygon":  # ImageJ's own fill, frame by frame, is the labels of that frame
            filled = np.zeros(frames.shape, np.int64)
            for roi in found.values():
                xy = np.array(sorted(roi.pixels)).reshape(-1, 2)
                target = filled[roi.t - 1] if ndim == 2 else filled[roi.t - 1, roi.z - 1]
                target[xy[:, 1], xy[:, 0]] = int(roi.properties["label"])
            np.testing.assert_array_equal(filled, frames)


# --------------------------------------------------------------------------
# QuPath GeoJSON: the geometry's plane {"c", "z", "t"}


@pytest.mark.parametrize("ndim", [2, 3])
def test_geojson_plane_t_is_the_time_point(tmp_path, nuclei_frames, ndim):
    frames = nuclei_frames if ndim == 2 else frames_3d()
    roi_set = timed_set(frames)
    path = geojson.write(tmp_path / "rois.geojson", roi_set, context={"label_name": "nuclei"})
    features = geojson.read(path)["features"]
    out = np.zeros(frames.shape, np.int64)
    for feature in features:
        plane = feature["geometry"]["plane"]
        assert set(plane) == {"c", "z", "t"} and plane["c"] == -1
        props = feature["properties"]
        t = int(props["metadata"]["t"])
        assert plane["t"] == t == props["measurements"]["t"]
        assert props["name"].startswith(f"t{t:02d}-label-")
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.is_valid, props["name"]
        target = out[t] if ndim == 2 else out[t, plane["z"]]
        filled = fill_even_odd(geojson.feature_rings(feature), frames.shape[-2:])
        paint(target, filled, int(props["metadata"]["label"]))
    np.testing.assert_array_equal(out, frames)
    assert {f["geometry"]["plane"]["t"] for f in features} == set(range(len(frames)))


# --------------------------------------------------------------------------
# OME-XML: TheT on every shape, SizeT and TimeIncrement on the Image


@pytest.mark.parametrize("ndim", [2, 3])
def test_ome_xml_the_t_is_the_time_point(nuclei_frames, ndim):
    frames = nuclei_frames if ndim == 2 else frames_3d()
    roi_set = timed_set(frames, shape="mask")
    context = {"n_time_points": 5, "time_spacing": 60.0, "time_unit": "second"}
    ome = ome_types.from_xml(ome_xml.to_bytes(roi_set, context=context), validate=True)
    pixels = ome.images[0].pixels
    assert (pixels.size_t, pixels.time_increment) == (5, 60.0)
    assert pixels.time_increment_unit == model.UnitsTime.SECOND
    volume = frames if ndim == 3 else frames[:, None]
    for roi in ome.rois:
        t = int(roi.name.split("-")[0][1:])
        assert {s.the_t for s in roi.union} == {t}
        label = int(roi.name.split("-")[1])
        coverage = rasterize(roi.union, volume.shape[1:])
        np.testing.assert_array_equal(coverage == 1, volume[t] == label)
    assert len(ome.rois) == sum(len(np.unique(f)) - 1 for f in frames)


def test_ome_xml_text_is_what_ome_types_writes_with_time():
    roi_set = timed_set(frames_3d(), shape="polygon")
    for context in (
        {},
        {"n_time_points": 4, "time_spacing": 1.5, "time_unit": "minute", "channel": 1},
        {"time_spacing": 2.0},
    ):
        data = ome_xml.to_bytes(roi_set, context=context)
        again = ome_types.to_xml(ome_types.from_xml(data, validate=True))
        assert data.decode() == '<?xml version="1.0" encoding="UTF-8"?>\n' + again
    in_minutes = {"time_spacing": 1.5, "time_unit": "minute"}
    minutes = ome_types.from_xml(ome_xml.to_bytes(roi_set, context=in_minutes))
    assert minutes.images[0].pixels.time_increment_unit == model.UnitsTime.MINUTE
    assert minutes.images[0].pixels.size_t == 2  # one past the last time point


# --------------------------------------------------------------------------
# Our JSON and napari: a leading t coordinate


def test_json_round_trip_keeps_each_roi_time_point(nuclei_frames):
    roi_set = timed_set(nuclei_frames, shape="ellipse")
    again, _ = roi_json.from_bytes(roi_json.to_bytes(roi_set))
    assert [r.t for r in again.rois] == [r.t for r in roi_set.rois]
    assert [r.name for r in again.rois] == [r.name for r in roi_set.rois]
    pd.testing.assert_frame_equal(again.features, roi_set.features, check_dtype=False)
    without = json.loads(roi_json.to_bytes(extract_rois(nuclei_frames[0])))
    assert all("t" not in roi for roi in without["rois"])


def napari_layers(path):
    return [Layer.create(data, meta, kind) for data, meta, kind in read_rois(path)]


def write_rois(folder, roi_set, **context):
    path = Path(folder) / "nuclei" / "B03_0_nuclei_rois.json"
    return roi_json.write(path, roi_set, context={"label_name": "nuclei", **context})


@pytest.mark.parametrize("ndim", [2, 3])
def test_napari_polygons_have_a_leading_t_and_fill_their_frame(tmp_path, nuclei_frames, ndim):
    frames = nuclei_frames if ndim == 2 else frames_3d()
    roi_set = timed_set(frames)
    context = {"time_spacing": 60.0, "time_unit": "second", "n_time_points": len(frames)}
    (layer,) = napari_layers(write_rois(tmp_path, roi_set, **context))
    assert type(layer) is Shapes and layer.ndim == ndim + 1
    assert layer.axis_labels == ("t", *("z", "y", "x")[-ndim:])
    np.testing.assert_allclose(layer.scale[0], 60.0)
    assert str(layer.units[0]) == "second"
    t_of = layer.features["t"].to_numpy()
    for data, t in zip(layer.data, t_of):
        np.testing.assert_array_equal(data[:, 0], t)  # each shape on its own time point
    masks = layer.to_masks(frames.shape)  # napari's own fill, one mask per ring
    drawn = {}  # per (t, label), its rings' pixels, holes cut out (even-odd)
    for mask, label, t in zip(masks, layer.features["label"], t_of):
        drawn[t, label] = drawn.get((t, label), np.zeros(mask.shape, bool)) ^ mask
    filled = np.zeros(frames.shape, np.int64)
    for (t, label), mask in drawn.items():
        assert not mask[np.arange(len(frames)) != t].any()  # only on its own frame
        filled[mask] = label
    np.testing.assert_array_equal(filled, frames)


@pytest.mark.parametrize("ndim", [2, 3])
def test_napari_points_and_masks_sit_at_their_time_point(tmp_path, nuclei_frames, ndim):
    frames = nuclei_frames if ndim == 2 else frames_3d()
    (points,) = napari_layers(write_rois(tmp_path / "p", timed_set(frames, shape="point")))
    assert type(points) is Points and points.ndim == ndim + 1
    centroids = {
        (t, r.label): (t, *r.centroid) for t, frame in enumerate(frames) for r in regionprops(frame)
    }
    keys = list(zip(points.features["t"], points.features["label"]))
    assert sorted(keys) == sorted(centroids)
    np.testing.assert_allclose(points.data, [centroids[k] for k in keys], atol=1e-9)
    (masks,) = napari_layers(
        write_rois(tmp_path / "m", timed_set(frames, shape="mask"), n_time_points=len(frames) + 1)
    )
    assert type(masks) is Labels and masks.ndim == ndim + 1
    np.testing.assert_array_equal(masks.data[: len(frames)], frames)
    assert not masks.data[len(frames)].any()  # a time point without objects


def test_napari_ellipses_and_paths_have_a_leading_t(tmp_path, nuclei_frames):
    timed = timed_set(nuclei_frames, shape="ellipse")
    (ellipses,) = napari_layers(write_rois(tmp_path / "e", timed))
    assert ellipses.ndim == 3 and set(ellipses.shape_type) == {"ellipse"}
    for data, t in zip(ellipses.data, ellipses.features["t"]):
        np.testing.assert_array_equal(data[:, 0], t)
    # without time: the layers of today, no t anywhere
    untimed = extract_rois(nuclei_frames[0], shape="ellipse")
    (plain,) = napari_layers(write_rois(tmp_path / "n", untimed))
    assert plain.ndim == 2 and plain.axis_labels == ("y", "x")


def test_napari_places_a_timed_set_by_the_image_t_scale(tmp_path):
    import ngio

    from fractal_roi_tasks.sample_data.timelapse import make_timelapse

    url = str(tmp_path / "lapse.zarr")
    make_timelapse(url, n_frames=3, size=96, time_interval_s=30.0, levels=1)
    labels = ngio.open_ome_zarr_container(url).get_label("nuclei").get_array()
    roi_set = timed_set(labels, shape="point", spacing=(0.65, 0.65))
    path = roi_json.write(
        Path(url) / "rois" / "nuclei" / "lapse_nuclei_rois.json",
        roi_set,
        context={"label_name": "nuclei", "level": "0", "zarr_url": url},
    )
    (layer,) = napari_layers(path)
    assert layer.axis_labels == ("t", "y", "x")
    assert layer.scale[0] == 30.0 and str(layer.units[0]) == "second"
    assert "OME-NGFF" in layer.metadata["placement"]


# --------------------------------------------------------------------------
# Without time: exactly today's files; inconsistent time refused


def test_time_context_changes_nothing_for_a_set_without_time():
    roi_set = extract_rois(hard_cases_3d(), shape="polygon")
    timing = {"n_time_points": 3, "time_spacing": 60.0, "time_unit": "second"}
    for fmt in (imagej, geojson):
        assert fmt.to_bytes(roi_set, context=timing) == fmt.to_bytes(roi_set)
    ome = ome_types.from_xml(ome_xml.to_bytes(roi_set, context=timing))
    assert ome.images[0].pixels.size_t == 1 and ome.images[0].pixels.time_increment is None


def test_inconsistent_time_points_are_refused():
    roi_set = timed_set(frames_3d())
    half = replace(roi_set, rois=(replace(roi_set.rois[0], t=None), *roi_set.rois[1:]))
    late = {"n_time_points": 1}
    for fmt in (imagej, geojson, ome_xml):
        with pytest.raises(InvalidInputError, match="Some ROIs have a time point"):
            fmt.to_bytes(half)
        too_late = r"time point 1 but context\['n_time_points'\] is 1"
        with pytest.raises(InvalidInputError, match=too_late):
            fmt.to_bytes(roi_set, context=late)
    with pytest.raises(InvalidInputError, match="time_spacing"):
        ome_xml.to_bytes(roi_set, context={"time_spacing": -1.0})
    with pytest.raises(InvalidInputError, match="n_time_points"):
        imagej.to_bytes(roi_set, context={"n_time_points": 0})
