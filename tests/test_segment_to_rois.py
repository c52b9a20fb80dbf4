"""The Segment to ROIs task on real OME-Zarr plates written with ngio."""

import json
import subprocess
import sys
from pathlib import Path

import ngio
import numpy as np
import pandas as pd
import pytest
import zarr
from skimage.draw import polygon as fill_polygon
from skimage.measure import regionprops_table

from fractal_roi_tasks.errors import AlreadyExistsError, InvalidNameError, NotFoundError
from fractal_roi_tasks.formats import roi_json
from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois


def read_label(zarr_url, name, path="0"):
    label = ngio.open_ome_zarr_container(zarr_url).get_label(name, path=path)
    return np.squeeze(label.get_array())


def label_attrs(zarr_url, name):
    attrs = zarr.open_group(f"{zarr_url}/labels/{name}", mode="r").attrs.asdict()
    return attrs.get("ome", attrs)["image-label"]


def test_given_labels_to_tables_and_json(plate):
    image = plate.images[0]
    out = segment_to_rois(zarr_url=image.zarr_url, label_name="nuclei", exports=["json"])
    assert out == {"image_list_updates": [{"zarr_url": image.zarr_url}]}

    labels = read_label(image.zarr_url, "nuclei")
    ref = regionprops_table(labels, properties=("label", "area", "bbox", "centroid"))
    ome_zarr = ngio.open_ome_zarr_container(image.zarr_url)
    masking = ome_zarr.get_masking_roi_table("nuclei_ROI_table")
    assert masking.reference_label == "nuclei"
    rois = {roi.label: roi for roi in masking.rois()}
    assert sorted(rois) == ref["label"].tolist()
    px = plate.pixel_size_um
    for lab, y0, x0, y1, x1 in zip(*(ref[k] for k in ("label", "bbox-0", "bbox-1", "bbox-2", "bbox-3"))):
        roi = rois[lab]
        assert roi.get("x").start == pytest.approx(x0 * px)
        assert roi.get("y").start == pytest.approx(y0 * px)
        assert roi.get("y").length == pytest.approx((y1 - y0) * px)
        assert roi.get("x").length == pytest.approx((x1 - x0) * px)
    feats = ome_zarr.get_feature_table("nuclei_features").dataframe
    np.testing.assert_array_equal(feats.index.astype(int), ref["label"])
    np.testing.assert_array_equal(feats["area_px"], ref["area"])
    np.testing.assert_allclose(feats["centroid_y_px"], ref["centroid-0"])

    meta = label_attrs(image.zarr_url, "nuclei")
    assert [p["label-value"] for p in meta["properties"]] == ref["label"].tolist()
    assert len(meta["colors"]) == len(ref["label"])

    path = Path(image.zarr_url) / "rois" / "nuclei" / f"{image.well}_{image.path}_nuclei_rois.json"
    roi_set, context = roi_json.read(path)
    assert context["well"] == image.well and context["label_name"] == "nuclei"
    for roi in roi_set.rois:
        drawn = np.zeros(labels.shape, bool)
        for poly in roi.shapes:
            for ring in (poly.exterior, *poly.holes):
                inside = np.zeros(labels.shape, bool)
                inside[fill_polygon(ring[:, 0], ring[:, 1], shape=labels.shape)] = True
                drawn ^= inside
        np.testing.assert_array_equal(drawn, labels == roi.label)


def test_segmentation_mode_finds_the_nuclei(plate_v04):
    image = plate_v04.images[0]
    segment_to_rois(
        zarr_url=image.zarr_url,
        label_name="segmented",
        segmentation={"channel": {"wavelength_id": "A01_C01"}},
    )
    truth = read_label(image.zarr_url, "nuclei")
    found = read_label(image.zarr_url, "segmented")
    n_true = len(np.unique(truth)) - 1
    n_found = len(np.unique(found)) - 1
    assert abs(n_found - n_true) <= 0.1 * n_true, (n_found, n_true)
    # Ids unique across FOVs: no id appears in two FOVs.
    half = found.shape[0] // 2, found.shape[1] // 2
    fovs = [found[:half[0], :half[1]], found[:half[0], half[1]:], found[half[0]:, :half[1]], found[half[0]:, half[1]:]]
    ids = [set(np.unique(f)) - {0} for f in fovs]
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    # All pyramid levels and image-label metadata were written.
    ome_zarr = ngio.open_ome_zarr_container(image.zarr_url)
    low = read_label(image.zarr_url, "segmented", path=ome_zarr.level_paths[-1])
    assert low.max() > 0 and low.shape[0] < found.shape[0]
    assert label_attrs(image.zarr_url, "segmented")["source"]["image"] == "../../"
    feats = ome_zarr.get_feature_table("segmented_features").dataframe
    assert {"mean_intensity", "min_intensity", "max_intensity"} <= set(feats.columns)
    assert (feats["min_intensity"] <= feats["mean_intensity"]).all()


def test_segmentation_does_not_overwrite_unless_asked(plate_v04):
    url = plate_v04.images[0].zarr_url
    before = read_label(url, "nuclei")
    with pytest.raises(AlreadyExistsError, match="already exists"):
        segment_to_rois(
            zarr_url=url, label_name="nuclei", segmentation={"channel": {"label": "DAPI"}}
        )
    np.testing.assert_array_equal(read_label(url, "nuclei"), before)
    segment_to_rois(
        zarr_url=url,
        label_name="nuclei",
        segmentation={"channel": {"label": "DAPI"}, "overwrite": True},
    )
    assert not np.array_equal(read_label(url, "nuclei"), before)


def test_rerun_gives_the_same_result(plate_v04):
    url = plate_v04.images[1].zarr_url
    args = dict(zarr_url=url, label_name="nuclei", exports=["json"], shape="ellipse")
    segment_to_rois(**args)
    json_path = next((Path(url) / "rois" / "nuclei").glob("*.json"))
    first = json_path.read_bytes()
    feats = ngio.open_ome_zarr_container(url).get_feature_table("nuclei_features").dataframe
    segment_to_rois(**args)
    assert json_path.read_bytes() == first
    again = ngio.open_ome_zarr_container(url).get_feature_table("nuclei_features").dataframe
    assert again.equals(feats)
    assert sorted(p.name for p in json_path.parent.iterdir()) == [json_path.name]


def test_3d_image(plate_3d):
    url = plate_3d.images[0].zarr_url
    segment_to_rois(zarr_url=url, label_name="nuclei", exports=["json"])
    labels = read_label(url, "nuclei")
    assert labels.ndim == 3
    masking = ngio.open_ome_zarr_container(url).get_masking_roi_table("nuclei_ROI_table")
    ref = regionprops_table(labels, properties=("label", "bbox"))
    rois = {r.label: r for r in masking.rois()}
    for lab, z0, z1 in zip(ref["label"], ref["bbox-0"], ref["bbox-3"]):
        assert rois[lab].get("z").start == pytest.approx(z0 * 1.0)
        assert rois[lab].get("z").length == pytest.approx((z1 - z0) * 1.0)
    roi_set, _ = roi_json.read(next((Path(url) / "rois" / "nuclei").glob("*.json")))
    planes = {poly.z for roi in roi_set.rois for poly in roi.shapes}
    assert planes == set(range(labels.shape[0]))


def test_empty_label_image_gives_empty_tables(plate_v04):
    url = plate_v04.images[0].zarr_url
    ome_zarr = ngio.open_ome_zarr_container(url)
    ome_zarr.derive_label("empty")
    segment_to_rois(zarr_url=url, label_name="empty", exports=["json"])
    ome_zarr = ngio.open_ome_zarr_container(url)
    assert ome_zarr.get_masking_roi_table("empty_ROI_table").rois() == []
    assert len(ome_zarr.get_feature_table("empty_features").dataframe) == 0


def test_bad_inputs_name_what_exists(plate_v04):
    url = plate_v04.images[0].zarr_url
    with pytest.raises(NotFoundError, match=r"has labels \['nuclei'\]"):
        segment_to_rois(zarr_url=url, label_name="cells")
    with pytest.raises(NotFoundError, match=r"has channels \['DAPI', 'GFP'\]"):
        segment_to_rois(zarr_url=url, label_name="x", segmentation={"channel": {"label": "RFP"}})
    with pytest.raises(NotFoundError, match="has tables"):
        segment_to_rois(
            zarr_url=url,
            label_name="x",
            segmentation={"channel": {"label": "DAPI"}, "roi_table": "nope"},
        )
    with pytest.raises(NotFoundError, match=r"has levels \['0', '1', '2'\]"):
        segment_to_rois(zarr_url=url, label_name="nuclei", level="7")
    with pytest.raises(NotFoundError, match="does not exist"):
        segment_to_rois(zarr_url=url + "_missing", label_name="nuclei")
    before = sorted(p.name for p in Path(url).rglob("*"))
    for bad in ("../nuclei", "a/b", ""):
        with pytest.raises(InvalidNameError, match="label_name"):
            segment_to_rois(zarr_url=url, label_name=bad)
    with pytest.raises(ValueError, match="either by `wavelength_id` or by `label`"):
        segment_to_rois(zarr_url=url, label_name="x", segmentation={"channel": {}})
    assert sorted(p.name for p in Path(url).rglob("*")) == before
    assert ngio.open_ome_zarr_container(url).list_labels() == ["nuclei"]


def test_runs_as_a_fractal_server_runs_it(plate_v04, tmp_path):
    url = plate_v04.images[0].zarr_url
    args = tmp_path / "args.json"
    out = tmp_path / "out.json"
    args.write_text(json.dumps({"zarr_url": url, "label_name": "nuclei", "shape": "point"}))
    subprocess.run(
        [sys.executable, "-m", "fractal_roi_tasks.tasks.segment_to_rois",
         "--args-json", str(args), "--out-json", str(out)],
        check=True,
        capture_output=True,
    )
    assert json.loads(out.read_text()) == {"image_list_updates": [{"zarr_url": url}]}
    assert "nuclei_features" in ngio.open_ome_zarr_container(url).list_tables()


def test_skeleton_mode_writes_branches(plate_v04):
    url = plate_v04.images[0].zarr_url
    segment_to_rois(
        zarr_url=url, label_name="nuclei", shape="skeleton", skeletonize=True, exports=["json"]
    )
    ome_zarr = ngio.open_ome_zarr_container(url)
    branches = ome_zarr.get_table("nuclei_branches").dataframe
    feats = ome_zarr.get_feature_table("nuclei_features").dataframe
    labels = read_label(url, "nuclei")
    assert len(feats) == len(np.unique(labels)) - 1
    per_label = branches.groupby("label")["length_um"].sum()
    np.testing.assert_allclose(feats.loc[per_label.index, "total_length_um"], per_label)
    assert set(branches["branch_type"]) <= {"tip-tip", "tip-junction", "junction-junction", "cycle"}
    roi_set, _ = roi_json.read(next((Path(url) / "rois" / "nuclei").glob("*.json")))
    assert roi_set.kind == "skeleton" and len(roi_set.rois) == len(branches)
    for roi in roi_set.rois[:50]:
        (line,) = roi.shapes
        yx = line.points.astype(int)
        assert (labels[yx[:, 0], yx[:, 1]] == roi.label).all()


def test_skeletonize_needs_skeleton_shape(plate_v04):
    with pytest.raises(ValueError, match="skeletonize needs shape 'skeleton'"):
        segment_to_rois(zarr_url=plate_v04.images[0].zarr_url, label_name="nuclei", skeletonize=True)


def test_every_export_in_one_run(plate_v04):
    import roifile

    image = plate_v04.images[0]
    segment_to_rois(
        zarr_url=image.zarr_url,
        label_name="nuclei",
        exports=["json", "imagej", "geojson", "ome_xml"],
    )
    folder = Path(image.zarr_url) / "rois" / "nuclei"
    stem = f"{image.well}_{image.path}_nuclei_rois"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"{stem}{ext}" for ext in (".json", ".roi.zip", ".geojson", ".ome.xml"))
    n_objects = len(np.unique(read_label(image.zarr_url, "nuclei"))) - 1
    assert len(roifile.roiread(folder / f"{stem}.roi.zip")) == n_objects
    features = json.loads((folder / f"{stem}.geojson").read_text())["features"]
    assert len({f["properties"]["name"] for f in features}) == n_objects


def test_unknown_export_is_refused_before_writing(plate_v04):
    url = plate_v04.images[0].zarr_url
    with pytest.raises(ValueError, match="exports"):
        segment_to_rois(zarr_url=url, label_name="nuclei", exports=["tiff"])
    assert "nuclei_features" not in ngio.open_ome_zarr_container(url).list_tables()


def test_segmentation_at_a_coarser_level_writes_full_resolution_labels(plate_v04):
    url = plate_v04.images[0].zarr_url
    segment_to_rois(
        zarr_url=url, label_name="coarse", level="1",
        segmentation={"channel": {"label": "DAPI"}, "min_area_px": 25},
    )
    full = read_label(url, "coarse")
    level1 = read_label(url, "coarse", path="1")
    assert full.shape == read_label(url, "nuclei").shape
    np.testing.assert_array_equal(full[::2, ::2], level1)  # nearest upsampling of level 1
    n_true = len(np.unique(read_label(url, "nuclei"))) - 1
    assert 0.7 * n_true < len(np.unique(full)) - 1 < 1.2 * n_true


@pytest.mark.parametrize("fixture", ["plate_v04", "plate_3d"])
def test_bounded_paths_equal_the_in_memory_path(fixture, request, monkeypatch, tmp_path):
    """Blockwise threshold, labels, intensities and skeletons give today's whole-image output."""
    import shutil

    from fractal_roi_tasks.io import ngio_tables, pyramid, segment_image

    url = request.getfixturevalue(fixture).images[0].zarr_url
    bounded = str(tmp_path / "bounded.zarr")
    shutil.copytree(url, bounded)
    seg = {"label_name": "seg", "segmentation": {"channel": {"label": "DAPI"}, "method": "otsu"}}
    skel = {"label_name": "nuclei", "shape": "skeleton", "skeletonize": True}
    for args in (seg, skel):
        segment_to_rois(zarr_url=url, **args)
    for module in (ngio_tables, segment_image):  # every image counts as large
        monkeypatch.setattr(module, "WHOLE_READ_MAX_BYTES", 0)
    monkeypatch.setattr(pyramid, "IN_MEMORY_MAX_BYTES", 0)
    for args in (seg, skel):
        segment_to_rois(zarr_url=bounded, **args)
    got, want = ngio.open_ome_zarr_container(bounded), ngio.open_ome_zarr_container(url)
    for path in want.level_paths:
        np.testing.assert_array_equal(read_label(bounded, "seg", path), read_label(url, "seg", path))
    for table in ("seg_features", "nuclei_features", "nuclei_branches"):
        a, b = got.get_table(table).dataframe, want.get_table(table).dataframe
        assert len(b) > 10
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert "mean_intensity" in got.get_table("seg_features").dataframe
