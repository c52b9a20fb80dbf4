"""Skeleton branches on arrays: skan's own table on a real image, and shapes
whose branches, lengths and counts are known."""

import doctest
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois import skeleton as skeleton_module
from fractal_roi_tasks.rois.skeleton import BRANCH_TYPES, SkeletonRois, extract_branches

SQRT2 = np.sqrt(2.0)


def assert_polylines_on_skeleton(found: SkeletonRois, skeleton_labels: np.ndarray):
    """Every vertex is a pixel of its own label; consecutive vertices (and the
    last and first of a closed one) are 8/26-neighbours; points agree with the
    table."""
    features = found.roi_set.features
    assert len(found.roi_set.rois) == len(features)
    for roi, row in zip(found.roi_set.rois, features.itertuples()):
        (line,) = roi.shapes
        assert (roi.label, roi.branch, roi.name) == (
            row.label,
            row.branch,
            f"{row.label}-{row.branch}",
        )
        points = line.points
        assert points.dtype == np.float64 and points.shape == (row.n_points, skeleton_labels.ndim)
        np.testing.assert_array_equal(points, np.round(points))
        idx = tuple(points.astype(int).T)
        assert np.all(skeleton_labels[idx] == roi.label), roi.name
        path = np.concatenate([points, points[:1]]) if line.closed else points
        steps = np.abs(np.diff(path, axis=0)).max(axis=1)
        np.testing.assert_array_equal(steps, 1, err_msg=roi.name)
        assert line.closed == (row.branch_type == "cycle")
        if line.closed:
            assert len(np.unique(points, axis=0)) == len(points)  # first not repeated


# --- skan's bundled retic.tif -------------------------------------------------


@pytest.fixture(scope="module")
def retic():
    """retic.tif thresholded and skeletonized as skan's getting-started does."""
    from skan.pre import threshold

    resource = importlib.resources.files("skan") / "test" / "data" / "retic.tif"
    with importlib.resources.as_file(resource) as path, tifffile.TiffFile(path) as tif:
        image = tif.asarray()
        spacing_nm = tif.fei_metadata["Scan"]["PixelHeight"] * 1e9  # FEI SEM metadata
    binary = threshold(image, sigma=5 / spacing_nm, radius=int(np.ceil(50 / spacing_nm)))
    return binary, skeletonize(binary), spacing_nm / 1000  # micrometers


def test_retic_branches_match_skans_own_summary(retic):
    from skan import Skeleton, summarize

    _, skel, spacing = retic
    skan_skeleton = Skeleton(skel, spacing=spacing)
    ref = summarize(skan_skeleton, separator="_")
    found = extract_branches(skel, spacing=(spacing, spacing))
    feats = found.roi_set.features
    assert len(ref) > 1000
    assert len(feats) == len(ref)

    # A path is identified by its first two pixels (skan walks each edge once).
    def key(points):
        return tuple(points[:2].astype(int).ravel().tolist())

    ref_by_key = {key(skan_skeleton.path_coordinates(i)): i for i in range(len(ref))}
    assert len(ref_by_key) == len(ref)
    matched = [ref_by_key[key(roi.shapes[0].points)] for roi in found.roi_set.rois]
    assert sorted(matched) == list(range(len(ref)))
    ref = ref.iloc[matched]
    np.testing.assert_array_equal(feats["branch_type_code"], ref["branch_type"])
    assert set(feats["branch_type"]) == {BRANCH_TYPES[c] for c in ref["branch_type"]}
    np.testing.assert_allclose(feats["length_um"], ref["branch_distance"], rtol=1e-12)
    np.testing.assert_allclose(feats["euclidean_length_um"], ref["euclidean_distance"], rtol=1e-12)
    np.testing.assert_allclose(feats["length_px"] * spacing, feats["length_um"], rtol=1e-12)
    # Pieces become labels 1..n; a branch's label is the piece under it.
    pieces, _ = ndi.label(skel, structure=np.ones((3, 3)))
    assert_polylines_on_skeleton(found, pieces)


def test_retic_every_pixel_is_in_a_branch_or_counted_isolated(retic):
    _, skel, spacing = retic
    found = extract_branches(skel, spacing=(spacing, spacing))
    neighbours = ndi.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant")
    isolated = skel & (neighbours == 1)
    assert found.n_isolated_pixels == isolated.sum()
    covered = np.zeros_like(skel)
    for roi in found.roi_set.rois:
        covered[tuple(roi.shapes[0].points.astype(int).T)] = True
    np.testing.assert_array_equal(covered, skel & ~isolated)
    objects = found.objects
    assert objects["n_skeleton_px"].sum() == skel.sum()
    assert objects["n_isolated_px"].sum() == found.n_isolated_pixels
    np.testing.assert_allclose(
        objects["total_length_um"].sum(), found.roi_set.features["length_um"].sum()
    )


def test_retic_skeletonize_true_matches_skeletonizing_the_mask(retic):
    binary, skel, _ = retic
    mine = extract_branches(binary, skeletonize=True)
    ref = extract_branches(skel)
    assert len(mine.roi_set.rois) == len(ref.roi_set.rois) > 1000
    np.testing.assert_allclose(
        np.sort(mine.roi_set.features["length_px"]), np.sort(ref.roi_set.features["length_px"])
    )


# --- synthetic ground truth ---------------------------------------------------


def test_cross_has_four_tip_junction_branches_of_known_lengths():
    image = np.zeros((12, 14), np.uint16)
    image[6, 2:13] = 5  # left arm 4 px, right arm 6 px from the centre (6, 6)
    image[3:12, 6] = 5  # up 3 px, down 5 px
    found = extract_branches(image, spacing=(2.0, 0.5))
    feats = found.roi_set.features
    assert feats["branch_type"].tolist() == ["tip-junction"] * 4
    assert feats["label"].tolist() == [5] * 4
    assert feats["branch"].tolist() == [0, 1, 2, 3]
    assert sorted(feats["length_px"]) == [3, 4, 5, 6]
    # Vertical arms are 2 um per pixel, horizontal ones 0.5 um.
    assert sorted(feats["length_um"]) == sorted([3 * 2.0, 5 * 2.0, 4 * 0.5, 6 * 0.5])
    np.testing.assert_allclose(feats["euclidean_length_um"], feats["length_um"])
    assert feats["n_points"].tolist() == [int(n) + 1 for n in feats["length_px"]]
    for roi in found.roi_set.rois:  # every arm runs between the centre and a tip
        points = roi.shapes[0].points
        assert [6.0, 6.0] in (points[0].tolist(), points[-1].tolist())
    obj = found.objects.iloc[0]
    assert obj["label"] == 5
    assert (obj["n_branches"], obj["n_junctions"], obj["n_tips"], obj["n_cycles"]) == (4, 1, 4, 0)
    assert obj["n_pieces"] == 1 and obj["n_skeleton_px"] == 19
    assert obj["total_length_um"] == pytest.approx(feats["length_um"].sum())
    assert obj["total_length_um"] == pytest.approx(8 * 2.0 + 10 * 0.5)
    assert obj["total_length_px"] == 18
    assert obj["longest_branch_um"] == 10.0
    assert_polylines_on_skeleton(found, image)


def test_ring_is_one_closed_cycle():
    image = np.zeros((9, 9), np.int32)
    image[1, 2:5] = image[5, 2:5] = image[2:5, 1] = image[2:5, 5] = 3
    found = extract_branches(image)
    (roi,) = found.roi_set.rois
    (line,) = roi.shapes
    assert line.closed and len(line.points) == 12
    assert {tuple(p) for p in line.points.astype(int).tolist()} == set(zip(*np.nonzero(image)))
    row = found.roi_set.features.iloc[0]
    assert (row["branch_type"], row["branch_type_code"]) == ("cycle", 3)
    assert row["length_px"] == pytest.approx(8 + 4 * SQRT2)  # closing step included
    assert row["euclidean_length_um"] == 0
    obj = found.objects.iloc[0]
    assert (obj["n_branches"], obj["n_cycles"], obj["n_junctions"], obj["n_tips"]) == (1, 1, 0, 0)
    assert_polylines_on_skeleton(found, image)


def test_lasso_is_a_cycle_through_its_junction_and_a_tail():
    image = np.zeros((9, 12), np.int32)
    image[1, 2:5] = image[5, 2:5] = image[2:5, 1] = image[2:5, 5] = 1
    image[3, 6:10] = 1
    found = extract_branches(image)
    feats = found.roi_set.features
    assert sorted(feats["branch_type"]) == ["cycle", "tip-junction"]
    loop = found.roi_set.rois[feats.index[feats["branch_type"] == "cycle"][0]].shapes[0]
    assert loop.closed and len(loop.points) == 12 and [3.0, 5.0] in loop.points.tolist()
    obj = found.objects.iloc[0]
    assert (obj["n_junctions"], obj["n_tips"], obj["n_cycles"]) == (1, 1, 1)
    assert_polylines_on_skeleton(found, image)


def test_line_is_one_tip_tip_branch():
    image = np.zeros((10, 10), np.uint8)
    image[np.arange(2, 8), np.arange(1, 7)] = 1  # (2, 1) .. (7, 6): 5 diagonal steps
    image[7, 7:9] = 1  # then 2 steps right, to (7, 8)
    found = extract_branches(image, spacing=(0.25, 0.25))
    (row,) = found.roi_set.features.itertuples()
    assert row.branch_type == "tip-tip"
    assert row.length_px == pytest.approx(5 * SQRT2 + 2)
    assert row.length_um == pytest.approx(0.25 * (5 * SQRT2 + 2))
    assert row.euclidean_length_um == pytest.approx(0.25 * np.hypot(5, 7))
    assert row.n_points == 8
    ends = found.roi_set.rois[0].shapes[0].points[[0, -1]].tolist()
    assert sorted(ends) == [[2.0, 1.0], [7.0, 8.0]]
    assert found.objects["n_tips"].tolist() == [2]
    assert found.objects["n_junctions"].tolist() == [0]
    assert_polylines_on_skeleton(found, image)


def test_two_labels_keep_their_ids():
    image = np.zeros((10, 20), np.uint32)
    image[2, 2:8] = 7
    image[6, 3:15] = 70000
    found = extract_branches(image)
    assert [(r.label, r.name) for r in found.roi_set.rois] == [(7, "7-0"), (70000, "70000-0")]
    assert found.roi_set.features["length_px"].tolist() == [5, 11]
    assert found.objects["label"].tolist() == [7, 70000]
    assert found.objects["total_length_px"].tolist() == [5, 11]
    assert_polylines_on_skeleton(found, image)


def test_touching_labels_are_traced_separately():
    # Three lines, each touching the other two (a triangle in the touch graph,
    # so three passes), plus one that touches nothing.
    image = np.zeros((12, 16), np.int64)
    image[2, 2:8] = 1
    image[3, 8:14] = 2  # touches 1 diagonally at (2,7)-(3,8)
    image[3:9, 1] = 3  # touches 1 at (2,2)-(3,1)
    image[9, 2:8] = 3
    image[4:9, 8] = 3  # and 2 at (3,8)-(4,8)
    image[11, 10:15] = 9
    found = extract_branches(image)
    feats = found.roi_set.features
    assert feats["label"].tolist() == [1, 2, 3, 9]
    assert feats["branch_type"].tolist() == ["tip-tip"] * 4
    assert feats["length_px"].tolist() == pytest.approx([5, 5, 5 + SQRT2 + 5 + SQRT2 + 4, 4])
    assert_polylines_on_skeleton(found, image)
    # As a mask, 1, 2 and 3 are one connected skeleton.
    assert extract_branches(image > 0).objects["label"].tolist() == [1, 2]


def test_isolated_pixels_are_counted_not_rois():
    image = np.zeros((8, 8), np.uint8)
    image[4, 4] = 2
    found = extract_branches(image)
    assert found.roi_set.rois == () and len(found.roi_set.features) == 0
    assert (found.n_isolated_pixels, found.n_labels_without_branches, found.empty) == (1, 1, False)
    assert found.objects.loc[0, ["label", "n_branches", "n_isolated_px", "n_pieces"]].tolist() == [
        2,
        0,
        1,
        1,
    ]
    # A pixel touching only another label is isolated in its own label.
    image[3, 1:4] = 6
    image[0, 7] = 6
    found = extract_branches(image)
    assert [r.label for r in found.roi_set.rois] == [6]
    assert found.n_isolated_pixels == 2 and found.n_labels_without_branches == 1
    assert found.objects["n_isolated_px"].tolist() == [1, 1]
    assert found.objects["n_pieces"].tolist() == [1, 2]


@pytest.mark.parametrize("shape", [(6, 7), (3, 6, 7), (0, 5)])
def test_empty_image(shape):
    found = extract_branches(np.zeros(shape, np.uint16))
    assert found.empty and found.roi_set.rois == ()
    assert (found.n_isolated_pixels, found.n_labels_without_branches) == (0, 0)
    assert found.roi_set.kind == "skeleton" and found.roi_set.image_shape == shape
    assert list(found.roi_set.features.columns) == list(skeleton_module.BRANCH_COLUMNS)
    assert list(found.objects.columns) == list(skeleton_module.OBJECT_COLUMNS)
    assert len(found.objects) == 0
    assert extract_branches(np.zeros(shape, bool), skeletonize=True).empty


def test_skeletonize_thick_bar_gives_one_branch_of_its_length():
    image = np.zeros((20, 60), np.uint16)
    image[8:13, 5:55] = 12  # 50 px long, 5 px wide
    found = extract_branches(image, skeletonize=True, spacing=(0.5, 0.5))
    (row,) = found.roi_set.features.itertuples()
    assert (row.label, row.branch_type) == (12, "tip-tip")
    assert 50 - 5 <= row.length_px <= 50
    assert row.length_um == pytest.approx(0.5 * row.length_px)
    assert np.all(np.abs(found.roi_set.rois[0].shapes[0].points[:, 0] - 10) <= 1)
    # Without skeletonize, the thick bar does not fail, it is just not one branch.
    assert len(extract_branches(image).roi_set.rois) > 1


def test_skeletonize_touching_objects_one_by_one():
    image = np.zeros((24, 40), np.uint8)
    image[4:11, 3:37] = 1
    image[11:18, 3:37] = 2  # shares a long side with 1
    image[18:22, 10:14] = 3  # 4 x 4 block under 2
    found = extract_branches(image, skeletonize=True)
    expected = np.zeros_like(image)
    for lab in (1, 2, 3):
        expected[skeletonize(image == lab)] = lab
    assert found.objects["n_skeleton_px"].tolist() == [np.sum(expected == k) for k in (1, 2, 3)]
    assert_polylines_on_skeleton(found, expected)
    covered = np.zeros_like(image)
    for roi in found.roi_set.rois:
        covered[tuple(roi.shapes[0].points.astype(int).T)] = roi.label
    isolated = found.objects["n_isolated_px"].sum()
    assert np.sum(covered != expected) == isolated
    # Thinning the whole mask at once would give a different skeleton.
    assert not np.array_equal(skeletonize(image > 0), expected > 0)


def test_mask_components_become_labels_in_raster_order():
    mask = np.zeros((10, 12), bool)
    mask[6, 1:10] = True
    mask[2, 4:9] = True
    mask[3, 9] = True  # diagonal contact: same component (8-connected)
    found = extract_branches(mask)
    assert [r.name for r in found.roi_set.rois] == ["1-0", "2-0"]
    assert found.roi_set.features["length_px"].tolist() == pytest.approx([4 + SQRT2, 8])


def test_3d_branch_through_planes():
    image = np.zeros((6, 8, 8), np.uint16)
    path = [(0, 1, 1), (1, 2, 2), (2, 3, 3), (2, 3, 4), (2, 3, 5), (3, 4, 6), (4, 4, 7)]
    image[tuple(np.array(path).T)] = 4
    spacing = (2.0, 0.5, 0.5)
    found = extract_branches(image, spacing=spacing)
    (roi,) = found.roi_set.rois
    points = roi.shapes[0].points
    assert points.shape == (7, 3)
    assert points.tolist() in ([list(p) for p in path], [list(p) for p in path[::-1]])
    row = found.roi_set.features.iloc[0]
    assert row["branch_type"] == "tip-tip"
    assert row["length_px"] == pytest.approx(2 * np.sqrt(3) + 1 + 1 + np.sqrt(3) + SQRT2)
    steps_um = np.diff(np.array(path, float), axis=0) * spacing
    assert row["length_um"] == pytest.approx(np.linalg.norm(steps_um, axis=1).sum())
    assert row["length_um"] != pytest.approx(row["length_px"] * 0.5)  # z spacing counts
    end_to_end = np.subtract(path[-1], path[0]) * spacing
    assert row["euclidean_length_um"] == pytest.approx(np.linalg.norm(end_to_end))
    assert found.roi_set.spacing == spacing and found.roi_set.image_shape == (6, 8, 8)
    assert_polylines_on_skeleton(found, image)


def test_3d_cross_and_skeletonize():
    image = np.zeros((9, 9, 9), np.uint8)
    image[4, 4, 1:8] = 1
    image[4, 1:8, 4] = 1
    image[1:8, 4, 4] = 1
    found = extract_branches(image)
    obj = found.objects.iloc[0]
    assert (obj["n_branches"], obj["n_junctions"], obj["n_tips"]) == (6, 1, 6)
    assert found.roi_set.features["length_px"].tolist() == [3] * 6
    rod = np.zeros((12, 7, 7), bool)
    rod[1:11, 2:5, 2:5] = True
    thin = extract_branches(rod, skeletonize=True, spacing=(1.5, 0.2, 0.2))
    (row,) = thin.roi_set.features.itertuples()
    assert row.label == 1 and row.branch_type == "tip-tip"
    assert 1.5 * (10 - 3) <= row.length_um <= 1.5 * 10


def test_input_is_not_modified():
    image = np.zeros((9, 9), np.int32)
    image[2:7, 2:7] = 3
    before = image.copy()
    extract_branches(image, skeletonize=True)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.zeros(5, np.uint8), {}, r"2D \(Y, X\) or 3D"),
        (np.zeros((4, 4)), {}, "integer labels or be a boolean mask"),
        (np.full((4, 4), -1, np.int16), {}, "negative"),
        (np.zeros((4, 4), np.uint8), {"spacing": (1.0,)}, r"one positive pixel size per axis \(2"),
        (np.zeros((4, 4), np.uint8), {"spacing": (1.0, 0.0)}, "one positive pixel size"),
    ],
)
def test_bad_input_is_rejected(image, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        extract_branches(image, **kwargs)


def test_docstring_examples():
    result = doctest.testmod(skeleton_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_import_does_not_load_skan():
    code = (
        "import sys, fractal_roi_tasks.rois.skeleton; "
        "print(sorted(m for m in ('skan', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- object by object (the large-image path) ----------------------------------

from fractal_roi_tasks.rois import extract_rois  # noqa: E402
from fractal_roi_tasks.rois.skeleton_by_object import extract_branches_by_object  # noqa: E402


def _by_object(labels, *, skeletonize=False, spacing=None, block_shape=(64, 96)):
    """extract_branches_by_object with the boxes of extract_rois, as the task does."""
    features = extract_rois(labels, shape="point").features
    axes = ("z", "y", "x")[-labels.ndim:]
    start = np.stack([features[f"bbox_{a}_px"].to_numpy() for a in axes], axis=1)
    stop = start + np.stack([features[f"bbox_len_{a}_px"].to_numpy() for a in axes], axis=1)
    read = (lambda z, r, c: labels[r, c]) if labels.ndim == 2 else (lambda z, r, c: labels[z, r, c])
    found = extract_branches_by_object(
        read, labels.shape, features["label"].to_numpy(), start, stop,
        skeletonize=skeletonize, spacing=spacing, block_shape=block_shape,
    )
    return found, set(features["label"].tolist())


def _assert_same_branches(whole: SkeletonRois, per: SkeletonRois):
    import pandas as pd

    pd.testing.assert_frame_equal(per.roi_set.features, whole.roi_set.features, check_exact=True)
    pd.testing.assert_frame_equal(per.objects, whole.objects, check_exact=True)
    assert [r.name for r in per.roi_set.rois] == [r.name for r in whole.roi_set.rois]
    for a, b in zip(whole.roi_set.rois, per.roi_set.rois):
        assert a.label == b.label and a.shapes[0].closed == b.shapes[0].closed
        np.testing.assert_array_equal(b.shapes[0].points, a.shapes[0].points)
    assert per.n_isolated_pixels == whole.n_isolated_pixels
    assert per.n_labels_without_branches == whole.n_labels_without_branches


@pytest.mark.parametrize("thin", [True, False])
def test_by_object_equals_the_whole_image_on_retic(retic, thin):
    binary, skeleton, spacing_um = retic
    if thin:  # skeletons as labels, ids above 2**32
        labels = ndi.label(skeleton, structure=np.ones((3, 3)))[0].astype(np.uint64)
    else:  # thick objects, skeletonized one by one
        labels = ndi.label(binary)[0].astype(np.uint64)
    labels[labels > 0] += 2**33
    per, kept = _by_object(labels, skeletonize=not thin, spacing=(spacing_um, spacing_um))
    whole = extract_branches(labels, skeletonize=not thin, spacing=(spacing_um, spacing_um))
    assert len(per.roi_set.rois) > 1000
    _assert_same_branches(whole.keep_labels(kept), per)


def test_by_object_touching_labels_long_object_and_3d():
    image = np.zeros((40, 300), np.uint32)
    image[5, 2:298] = 3  # one line across many blocks
    image[6:20, 150] = 4  # touches 3
    image[20, 140:161] = 4
    image[30:35, 30:35] = 9  # thick: many short branches
    image[38, 100] = 12  # isolated pixel: no branch
    per, kept = _by_object(image, block_shape=(16, 32))
    _assert_same_branches(extract_branches(image).keep_labels(kept), per)

    volume = np.zeros((6, 30, 40), np.uint16)
    volume[1:5, 10, 5] = 1
    volume[3, 3:25, 5] = 1
    volume[2, 15, 8:38] = 2
    volume[2:6, 20, 30] = 2
    per, kept = _by_object(volume, spacing=(2.0, 0.3, 0.3), block_shape=(8, 8))
    _assert_same_branches(extract_branches(volume, spacing=(2.0, 0.3, 0.3)).keep_labels(kept), per)


def test_by_object_bad_boxes_and_empty():
    image = np.zeros((5, 5), np.uint8)
    read = lambda z, r, c: image[r, c]  # noqa: E731
    found = extract_branches_by_object(read, image.shape, [], np.zeros((0, 2)), np.zeros((0, 2)))
    assert found.empty and len(found.roi_set.rois) == 0 and len(found.objects) == 0
    with pytest.raises(InvalidInputError, match=r"bbox_start and bbox_stop must be \(1, 2\)"):
        extract_branches_by_object(read, image.shape, [1], np.zeros((1, 3)), np.ones((1, 3)))
    with pytest.raises(InvalidInputError, match="image_shape must be"):
        extract_branches_by_object(read, (5,), [1], np.zeros((1, 1)), np.ones((1, 1)))
