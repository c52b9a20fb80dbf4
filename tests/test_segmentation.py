"""Tests of the classic segmentation core (threshold, split, fill, filter).

Synthetic ground truth is built here; the real check runs on ngio's bundled
cardiomyocyte nuclei image against its 168 annotated nuclei.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.segmentation import (
    SegmentationResult,
    compute_threshold,
    segment_channel,
)
from fractal_roi_tasks.segmentation.split import merge_shallow_pieces

# ---------------------------------------------------------------- helpers


def _disc(shape, center, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, center, strict=True)) <= radius**2


def _image(*masks, background=10, value=200, dtype=np.uint16, shape=None):
    image = np.full(shape or masks[0].shape, background, dtype=dtype)
    for mask in masks:
        image[mask] = value
    return image


def _two_touching_discs():
    """Two discs of radius 15 whose centres are 26 px apart: a neck of ~15 px."""
    shape = (60, 90)
    left, right = _disc(shape, (30, 30), 15), _disc(shape, (30, 56), 15)
    return _image(left, right), left, right


def _iou(a, b):
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def _assert_sequential_uint32(result: SegmentationResult, shape):
    labels = result.label_image
    assert labels.dtype == np.uint32
    assert labels.shape == shape
    ids = np.unique(labels)
    assert ids.tolist() == list(range(result.n_objects + 1))


# ---------------------------------------------------------------- splitting


def test_two_touching_discs_are_split_by_the_watershed():
    image, left, right = _two_touching_discs()
    result = segment_channel(image)

    assert result.n_objects == 2
    _assert_sequential_uint32(result, image.shape)
    labels = result.label_image
    a, b = labels[30, 30], labels[30, 56]
    assert a != b and a > 0 and b > 0
    # Each piece is its disc, up to the pixels of the overlap lens.
    assert _iou(labels == a, left) > 0.9
    assert _iou(labels == b, right) > 0.9
    # The cut runs through the neck, halfway between the centres.
    assert labels[30, 42] == a and labels[30, 44] == b


def test_two_touching_discs_stay_one_object_without_splitting():
    image, left, right = _two_touching_discs()
    result = segment_channel(image, split_touching=False)

    assert result.n_objects == 1
    _assert_sequential_uint32(result, image.shape)
    assert _iou(result.label_image == 1, left | right) > 0.95


def test_separate_discs_are_not_over_split():
    shape = (80, 120)
    discs = [_disc(shape, (20, 20), 12), _disc(shape, (55, 60), 18), _disc(shape, (25, 95), 10)]
    result = segment_channel(_image(*discs, shape=shape))

    assert result.n_objects == 3
    for disc in discs:
        ids = np.unique(result.label_image[disc])
        assert ids.size == 1 and ids[0] > 0


def test_touching_objects_cut_by_the_image_border_are_split():
    # Fields of view cut nuclei at their edges: markers near the border count.
    shape = (40, 90)
    left, right = _disc(shape, (2, 30), 15), _disc(shape, (2, 56), 15)
    result = segment_channel(_image(left, right))
    assert result.n_objects == 2
    assert result.label_image[2, 30] != result.label_image[2, 56]


def test_two_touching_balls_are_split_in_3d():
    shape = (40, 50, 70)
    left, right = _disc(shape, (20, 25, 22), 12), _disc(shape, (20, 25, 44), 12)
    image = _image(left, right, dtype=np.float32)

    split = segment_channel(image)
    assert split.n_objects == 2
    _assert_sequential_uint32(split, shape)
    a, b = split.label_image[20, 25, 22], split.label_image[20, 25, 44]
    assert a != b and a > 0 and b > 0
    assert _iou(split.label_image == a, left) > 0.9
    assert _iou(split.label_image == b, right) > 0.9

    merged = segment_channel(image, split_touching=False)
    assert merged.n_objects == 1


@pytest.mark.parametrize("shape_name", ["ellipse", "capsule"])
def test_an_elongated_object_is_not_cut_along_its_ridge(shape_name):
    # A flat distance ridge has a maximum every few pixels; without the
    # neck-depth check these shapes come out in 3 and 13 pieces.
    yy, xx = np.mgrid[:60, :140]
    if shape_name == "ellipse":
        mask = ((yy - 30) / 12) ** 2 + ((xx - 70) / 55) ** 2 <= 1
    else:
        mask = np.zeros((60, 140), dtype=bool)
        mask[20:41, 30:110] = True
        mask |= _disc(mask.shape, (30, 30), 10) | _disc(mask.shape, (30, 110), 10)
    for min_distance in (2, 5, 8):
        result = segment_channel(_image(mask), split_min_distance_px=min_distance)
        assert result.n_objects == 1, min_distance
        assert _iou(result.label_image == 1, mask) > 0.95


def test_a_piece_with_a_shallow_neck_is_merged_into_its_neighbour():
    labels = np.array([[1, 1, 2, 2, 3, 3]])
    distance = np.array([[5.0, 4.9, 4.8, 10.0, 9.0, 10.0]])
    # Piece 1 rises 0.2 above its saddle with piece 2: merged. Pieces 2 and 3
    # are separated by a dip of 1: kept apart.
    merged = merge_shallow_pieces(labels, distance, min_neck_depth=0.75)
    assert merged.tolist() == [[1, 1, 1, 1, 2, 2]]
    assert merge_shallow_pieces(labels, distance, min_neck_depth=1.5).max() == 1
    assert np.array_equal(merge_shallow_pieces(labels, distance, min_neck_depth=0), labels)


def test_a_shallow_piece_between_two_objects_does_not_glue_them():
    labels = np.array([[1, 1, 2, 3, 3]])
    distance = np.array([[10.0, 5.0, 5.2, 5.0, 10.0]])
    merged = merge_shallow_pieces(labels, distance, min_neck_depth=0.75)
    assert merged.max() == 2
    assert merged[0, 0] != merged[0, 4]
    assert merged[0, 2] in (merged[0, 0], merged[0, 4])


def test_a_thin_object_without_distance_maximum_keeps_a_marker():
    image = np.zeros((20, 120), dtype=np.uint8)
    image[9:11, 10:110] = 255  # a line two pixels wide, 200 px
    result = segment_channel(image, smoothing_sigma=0)
    assert result.n_objects == 1
    assert np.count_nonzero(result.label_image) == 200


# ---------------------------------------------------------------- holes


def test_a_hole_inside_one_object_is_filled_and_does_not_cut_it():
    shape = (80, 80)
    nucleus = _disc(shape, (40, 40), 18)
    nucleolus = _disc(shape, (40, 40), 4)
    image = _image(nucleus & ~nucleolus, shape=shape)

    result = segment_channel(image)
    assert result.n_objects == 1
    assert result.label_image[40, 40] == 1
    assert np.count_nonzero(result.label_image) == np.count_nonzero(nucleus)

    unfilled = segment_channel(image, fill_holes=False, split_touching=False)
    assert unfilled.n_objects == 1
    assert unfilled.label_image[40, 40] == 0


def test_a_gap_surrounded_by_several_objects_stays_background():
    shape = (90, 90)
    centres = [(30, 30), (30, 56), (56, 30), (56, 56)]
    discs = [_disc(shape, c, 15) for c in centres]
    image = _image(*discs, shape=shape)
    assert image[43, 43] == 10  # the gap in the middle is enclosed background

    result = segment_channel(image)
    assert result.n_objects == 4
    assert result.label_image[43, 43] == 0
    assert len({int(result.label_image[c]) for c in centres}) == 4

    # Unsplit, the four discs are one object and the gap is its hole.
    merged = segment_channel(image, split_touching=False)
    assert merged.n_objects == 1
    assert merged.label_image[43, 43] == 1


# ---------------------------------------------------------------- size filter


def test_min_and_max_area_filter_and_count_objects():
    shape = (100, 140)
    tiny, medium, big = (
        _disc(shape, (20, 20), 3),  # 29 px
        _disc(shape, (50, 60), 8),  # 197 px
        _disc(shape, (50, 110), 22),  # 1517 px
    )
    image = _image(tiny, medium, big, shape=shape)
    kw = {"smoothing_sigma": 0, "split_touching": False}

    everything = segment_channel(image, min_area_px=0, **kw)
    assert (everything.n_objects, everything.n_too_small, everything.n_too_large) == (3, 0, 0)

    result = segment_channel(image, min_area_px=100, max_area_px=1000, **kw)
    assert (result.n_objects, result.n_too_small, result.n_too_large) == (1, 1, 1)
    _assert_sequential_uint32(result, shape)
    assert np.array_equal(result.label_image == 1, medium)

    with_split = segment_channel(image, min_area_px=100, max_area_px=1000)
    assert (with_split.n_objects, with_split.n_too_small, with_split.n_too_large) == (1, 1, 1)


def test_ids_are_sequential_after_filtering():
    shape = (120, 160)
    rng = np.random.default_rng(0)
    masks = []
    for row in range(4):
        for col in range(5):
            radius = int(rng.integers(3, 12))
            masks.append(_disc(shape, (15 + 30 * row, 15 + 32 * col), radius))
    image = _image(*masks, shape=shape)
    result = segment_channel(image, min_area_px=150)

    expected_kept = sum(np.count_nonzero(m) >= 150 for m in masks)
    assert 0 < expected_kept < len(masks)
    assert result.n_objects == expected_kept
    assert result.n_too_small == len(masks) - expected_kept
    _assert_sequential_uint32(result, shape)


# ---------------------------------------------------------------- thresholds


def test_manual_threshold_is_in_the_image_units():
    shape = (60, 100)
    dim, bright = _disc(shape, (30, 25), 12), _disc(shape, (30, 75), 12)
    image = np.full(shape, 10, dtype=np.uint16)
    image[dim] = 100
    image[bright] = 300

    high = segment_channel(image, method="manual", threshold=200)
    assert high.threshold == 200
    assert high.n_objects == 1
    assert high.label_image[30, 75] == 1 and high.label_image[30, 25] == 0

    low = segment_channel(image, method="manual", threshold=50.0)
    assert low.n_objects == 2


@pytest.mark.parametrize("method", ["otsu", "li", "triangle"])
def test_automatic_thresholds_separate_objects_from_background(method):
    image, left, right = _two_touching_discs()
    result = segment_channel(image, method=method)
    assert 10 < result.threshold < 200
    assert result.n_objects == 2
    # The same threshold passed manually gives the same labels.
    threshold = compute_threshold(image, method=method)
    assert threshold == result.threshold
    manual = segment_channel(image, method="manual", threshold=threshold)
    assert np.array_equal(manual.label_image, result.label_image)


def test_a_threshold_from_the_whole_image_keeps_an_empty_field_of_view_empty():
    rng = np.random.default_rng(1)
    whole = rng.poisson(20, size=(200, 200)).astype(np.uint16)
    whole[_disc(whole.shape, (60, 60), 15)] += 300
    whole[_disc(whole.shape, (140, 130), 15)] += 300
    empty_fov = rng.poisson(20, size=(100, 100)).astype(np.uint16)

    own = segment_channel(empty_fov)  # thresholding noise finds noise
    assert own.n_objects + own.n_too_small > 0
    shared = segment_channel(empty_fov, method="manual", threshold=compute_threshold(whole))
    assert shared.n_objects == 0


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64), dtype=np.uint16),
        np.full((64, 64), 7.5),
        np.full((5, 32, 32), 3, dtype=np.uint8),
    ],
    ids=["zeros-2d", "constant-float", "constant-3d"],
)
@pytest.mark.parametrize("method", ["otsu", "li", "triangle"])
def test_an_image_without_contrast_gives_no_objects(image, method):
    result = segment_channel(image, method=method)
    assert result.n_objects == 0
    assert math.isnan(result.threshold)
    assert not result.has_contrast
    assert result.label_image.dtype == np.uint32
    assert result.label_image.shape == image.shape
    assert not result.label_image.any()
    assert math.isnan(compute_threshold(image, method=method))


# ---------------------------------------------------------------- input handling


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
def test_every_real_dtype_gives_the_same_labels(dtype):
    image, _, _ = _two_touching_discs()
    reference = segment_channel(image)
    result = segment_channel(image.astype(dtype))
    assert np.array_equal(result.label_image, reference.label_image)


@pytest.mark.parametrize("ndim", [2, 3])
def test_the_input_is_not_modified(ndim):
    if ndim == 2:
        image, _, _ = _two_touching_discs()
    else:
        shape = (30, 40, 60)
        image = _image(_disc(shape, (15, 20, 20), 10), _disc(shape, (15, 20, 37), 10))
    image[0, 0] = 7  # a one-pixel object: dropped, and must stay in the input
    before = image.copy()
    image.flags.writeable = False  # any in-place write would raise
    segment_channel(image)
    segment_channel(image, method="manual", threshold=100, fill_holes=False)
    assert np.array_equal(image, before)


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.zeros(10), {}, r"2D \(Y, X\) or 3D \(Z, Y, X\), got 1D"),
        (np.zeros((2, 3, 4, 5)), {}, r"got 4D with shape \(2, 3, 4, 5\)"),
        (np.zeros((8, 8), dtype=bool), {}, r"got dtype bool.*astype"),
        (np.zeros((8, 8), dtype=complex), {}, r"got dtype complex128"),
        (np.array([["a", "b"], ["c", "d"]]), {}, r"integer or floating-point"),
        ([[1, 2], [3, 4]], {}, r"numpy array, got list"),
        (np.zeros((0, 8)), {}, r"empty \(shape \(0, 8\)\)"),
        (np.array([[1.0, np.nan], [0.0, 2.0]]), {}, r"1 NaN or infinite"),
        (np.zeros((8, 8)), {"method": "manual"}, r'method="manual" needs a threshold'),
        (np.zeros((8, 8)), {"threshold": 5}, r"threshold=5 is only used with method=\"manual\""),
        (np.zeros((8, 8)), {"method": "mean"}, r"Unknown threshold method 'mean'.*otsu, li"),
        (np.zeros((8, 8)), {"method": "manual", "threshold": "5"}, r"must be a number"),
        (np.zeros((8, 8)), {"smoothing_sigma": -1}, r"smoothing_sigma must be.*>= 0.*got -1"),
        (np.zeros((8, 8)), {"split_min_distance_px": 0}, r"split_min_distance_px.*got 0"),
        (np.zeros((8, 8)), {"min_area_px": -5}, r"min_area_px must be.*got -5"),
        (
            np.zeros((8, 8)),
            {"min_area_px": 500, "max_area_px": 100},
            r"min_area_px \(500\) is larger than max_area_px \(100\)",
        ),
    ],
)
def test_invalid_input_is_rejected_with_a_clear_message(image, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        segment_channel(image, **kwargs)


def test_compute_threshold_rejects_manual():
    match = r"needs an automatic method, one of otsu, li, triangle; got 'manual'"
    with pytest.raises(InvalidInputError, match=match):
        compute_threshold(np.zeros((8, 8)), method="manual")  # type: ignore[arg-type]


# ---------------------------------------------------------------- real nuclei

# Measured on ngio's cardiomyocyte nuclei (512 x 512, 0.325 um/px, 168 annotated
# nuclei), default arguments (smoothing 1 px, split distance 5 px, min area
# 100 px); "matched" counts annotated nuclei whose best predicted object has
# IoU > 0.5:
#
#   method    split   objects   median best IoU   matched
#   otsu      yes     162       0.877             155
#   li        yes     160       0.942             156
#   triangle  yes     164       0.903             157
#   otsu      no       58       0.161              38
#
# The count moves by up to ~8 with the split distance (2-10 px), the neck
# depth (0.5-1 px) and the image rescaled by 0.75 or 1.33 or with added
# noise, hence a 10% tolerance; the IoU bounds sit ~0.02-0.03 under the
# measurements. Li matches the annotated outlines best: they include the dim
# rim of each nucleus, which Otsu leaves out.
N_TRUE_NUCLEI = 168


@pytest.fixture(scope="module")
def cardiomyocyte():
    import ngio  # a required dependency: a broken install must fail here, not skip
    from skimage import io

    info = ngio.get_sample_info("Cardiomyocyte")
    raw = io.imread(info.img_path)
    truth = io.imread(info.labels[0].label_path)
    assert raw.shape == truth.shape == (512, 512)
    assert len(np.unique(truth)) - 1 == N_TRUE_NUCLEI
    return raw, truth


def _best_iou_per_true_object(truth, predicted):
    """For each true object, the IoU of the predicted object overlapping it best."""
    truth = truth.astype(np.int64)
    predicted = predicted.astype(np.int64)
    n_true, n_pred = truth.max() + 1, predicted.max() + 1
    overlap = np.bincount(truth.ravel() * n_pred + predicted.ravel(), minlength=n_true * n_pred)
    overlap = overlap.reshape(n_true, n_pred)
    union = overlap.sum(1)[:, None] + overlap.sum(0)[None, :] - overlap
    iou = overlap / np.maximum(union, 1)
    return iou[1:, 1:].max(axis=1)


@pytest.mark.parametrize(
    ("method", "min_median_iou", "min_matched"),
    [("otsu", 0.85, 148), ("li", 0.92, 148), ("triangle", 0.87, 148)],
)
def test_real_nuclei_are_found_and_match_the_annotation(
    cardiomyocyte, method, min_median_iou, min_matched
):
    raw, truth = cardiomyocyte
    result = segment_channel(raw, method=method)

    assert abs(result.n_objects - N_TRUE_NUCLEI) <= 0.1 * N_TRUE_NUCLEI
    best = _best_iou_per_true_object(truth, result.label_image)
    assert np.median(best) > min_median_iou
    assert np.count_nonzero(best > 0.5) >= min_matched
    _assert_sequential_uint32(result, raw.shape)


def test_real_nuclei_need_splitting(cardiomyocyte):
    raw, truth = cardiomyocyte
    result = segment_channel(raw, split_touching=False)
    # Touching nuclei merge into clusters: far fewer objects, poor matches.
    assert result.n_objects < 0.5 * N_TRUE_NUCLEI
    assert np.median(_best_iou_per_true_object(truth, result.label_image)) < 0.5


# ------------------------------------------- threshold from a histogram over blocks

from fractal_roi_tasks.segmentation.blocked_threshold import (  # noqa: E402
    NBINS,
    channel_histogram,
    smoothing_halo_px,
    threshold_from_histogram,
)


def _bundled_channels():
    from skimage import data

    stack = np.stack([data.coins()[:300, :380], data.coins()[3:303, 2:382] // 2])  # a 2-plane volume
    return {
        "coins": data.coins(),
        "cell": data.cell(),
        "retina_green": data.retina()[..., 1],
        "hubble_red": data.hubble_deep_field()[..., 0],
        "coins_3d": stack,
    }


def _blocked_threshold(image, method, sigma, block_shape=(97, 130)):
    read = lambda slices: image[slices]  # noqa: E731
    histogram = channel_histogram(
        read, image.shape, method=method, smoothing_sigma=sigma, block_shape=block_shape
    )
    return threshold_from_histogram(histogram, method=method), histogram


@pytest.mark.parametrize("name", sorted(_bundled_channels()))
@pytest.mark.parametrize("sigma", [0.0, 1.0, 2.5])
def test_histogram_threshold_matches_the_whole_image(name, sigma):
    image = _bundled_channels()[name]
    for method in ("otsu", "triangle", "li"):
        whole = compute_threshold(image, method=method, smoothing_sigma=sigma)
        blocked, histogram = _blocked_threshold(image, method, sigma)
        if method == "li":  # the documented difference: at most one bin
            assert abs(blocked - whole) <= histogram.bin_width, (method, blocked, whole)
        else:  # same bins as scikit-image: the same value
            assert blocked == whole, (method, blocked, whole)


def test_blocks_smoothed_with_a_halo_equal_the_whole_smoothing():
    from fractal_roi_tasks.segmentation.threshold import smooth

    image = _bundled_channels()["hubble_red"]
    assert smoothing_halo_px(2.0) == 8 and smoothing_halo_px(0) == 0
    smoothed = smooth(image, 2.0)
    _, histogram = _blocked_threshold(image, "otsu", 2.0, block_shape=(50, 61))
    counts, edges = np.histogram(smoothed, bins=NBINS)
    np.testing.assert_array_equal(histogram.counts, counts)
    np.testing.assert_array_equal(histogram.edges, edges)


def test_segmentation_with_the_blocked_threshold_equals_the_whole_one():
    image = _bundled_channels()["coins"]
    whole = segment_channel(image, method="otsu", min_area_px=50)
    threshold, _ = _blocked_threshold(image, "otsu", 1.0)
    blocked = segment_channel(image, method="manual", threshold=threshold, min_area_px=50)
    assert blocked.n_objects == whole.n_objects > 10
    np.testing.assert_array_equal(blocked.label_image, whole.label_image)


def test_histogram_threshold_constant_and_bad_input():
    flat = np.full((40, 50), 7, np.uint16)
    assert math.isnan(_blocked_threshold(flat, "li", 1.0)[0])
    assert math.isnan(compute_threshold(flat))
    with pytest.raises(InvalidInputError, match="otsu, li or triangle"):
        channel_histogram(lambda s: flat[s], flat.shape, method="manual")
    with pytest.raises(InvalidInputError, match=r"image_shape must be \(Y, X\)"):
        channel_histogram(lambda s: flat[s], (50,), method="otsu")
    bad = np.ones((10, 10))
    bad[3, 3] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        channel_histogram(lambda s: bad[s], bad.shape, method="otsu")
