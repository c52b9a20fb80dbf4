"""Shift estimation and consensus boxes on numpy arrays (no files).

Ground truth: fields cut from the bundled real nuclei (and retina) images with
their content displaced by known sub-pixel amounts (`sample_fov`, a
band-limited shift with the image continued by mirror symmetry), independently
per FOV, with Poisson and gaussian camera noise.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import ndimage

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration import (
    RegisteredBox,
    ShiftEstimate,
    consensus_boxes,
    estimate_shift,
)
from fractal_roi_tasks.sample_data import (
    add_noise,
    add_saturated_blob,
    background_fov,
    load_source,
    sample_fov,
    shifted_field,
)

# Dim images: ~50 photons in the typical nucleus pixel plus 1% read noise.
PHOTONS = 200.0
READ_NOISE = 650.0


def noisy(image: np.ndarray, seed: int, photons: float = PHOTONS) -> np.ndarray:
    return add_noise(image, photons=photons, read_noise=READ_NOISE * math.sqrt(PHOTONS / photons), seed=seed)


def error_px(estimate: ShiftEstimate, displacement) -> np.ndarray:
    """|estimated shift - true shift|; the true shift is -displacement."""
    return np.abs(np.asarray(estimate.shift) + np.asarray(displacement))


def pair(index, displacement, *, z_planes=1, seed=0, channel="DAPI", photons=PHOTONS):
    """(reference, moving) noisy uint16 fields of sample FOV ``index``."""
    reference = sample_fov(index, (0.0,) * len(displacement), z_planes=z_planes, channel=channel)
    moving = sample_fov(index, displacement, z_planes=z_planes, channel=channel)
    return noisy(reference, seed, photons), noisy(moving, seed + 1000, photons)


def sub_pixel_cases(n: int, magnitude: float, seed: int) -> list[tuple[int, tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    return [
        (index, tuple(float(v) for v in rng.uniform(-magnitude, magnitude, 2)))
        for index in range(n)
    ]


# --------------------------------------------------------------------------
# Accuracy


def test_sub_pixel_shifts_on_real_nuclei_with_noise():
    # All 8 orientations of the nuclei, shifts of up to 4 px in y and x.
    errors = []
    for index, displacement in sub_pixel_cases(8, 4.0, seed=1):
        reference, moving = pair(index, displacement, seed=index)
        estimate = estimate_shift(reference, moving)
        assert estimate.reliable, estimate.reason
        assert estimate.quality > 0.8
        errors.append(error_px(estimate, displacement))
    errors = np.array(errors)
    # Target 0.1 px; measured here: max ~0.015 px, mean ~0.005 px.
    assert errors.max() < 0.05
    assert errors.mean() < 0.02


def test_large_shifts_are_found_coarse_to_fine():
    errors = []
    rng = np.random.default_rng(2)
    for index in range(6):
        displacement = tuple(
            float(v) for v in rng.uniform(40.0, 70.0, 2) * rng.choice([-1, 1], 2)
        )
        reference, moving = pair(index, displacement, seed=10 + index)
        estimate = estimate_shift(reference, moving)
        assert estimate.reliable, estimate.reason
        # The coarse (whole-pixel, binned) step lands within a few pixels...
        assert np.abs(np.array(estimate.coarse_shift) + displacement).max() <= 4
        errors.append(error_px(estimate, displacement))
    # ...and the refinement at full resolution within hundredths of a pixel.
    assert np.max(errors) < 0.05


def test_noise_free_shifts_are_exact_to_a_thousandth():
    # Checks the estimator's bias and the ground truth together.
    for index, displacement in sub_pixel_cases(4, 3.0, seed=3):
        reference = sample_fov(index)
        moving = sample_fov(index, displacement)
        estimate = estimate_shift(reference, moving, upsample_factor=10_000)
        assert error_px(estimate, displacement).max() < 1e-3


def test_other_real_textures():
    # Retina vessels (the GFP channel: smooth, low contrast, so a brighter
    # exposure) and scikit-image's cell image.
    for index, displacement in sub_pixel_cases(3, 5.0, seed=4):
        reference, moving = pair(index, displacement, seed=20 + index, channel="GFP", photons=2000)
        estimate = estimate_shift(reference, moving)
        assert estimate.reliable and error_px(estimate, displacement).max() < 0.05
    cell = load_source("cell") * 30000.0
    displacement = (-3.3, 2.71)
    reference = noisy(shifted_field(cell, (0.0, 0.0), origin=(40, 20), shape=(400, 480)), 1, 2000)
    moving = noisy(shifted_field(cell, displacement, origin=(40, 20), shape=(400, 480)), 2, 2000)
    estimate = estimate_shift(reference, moving)
    assert estimate.reliable and error_px(estimate, displacement).max() < 0.05


def test_a_strong_edge_across_the_window_does_not_pull_the_estimate():
    # The black rim of the retina photograph crosses half of this small
    # field: a window misplaced by m px pulls the estimate by ~0.5 m here, so
    # the fine step must iterate to the fixed point (it would be 0.14 px off).
    retina = load_source("retina") * 50000.0
    for displacement in ((-7.6, 20.3), (-0.6, 0.3), (3.3, -2.2)):
        reference = shifted_field(retina, (0.0, 0.0), origin=(100, 100), shape=(100, 300))
        moving = shifted_field(retina, displacement, origin=(100, 100), shape=(100, 300))
        assert (reference == 0).mean() > 0.5
        estimate = estimate_shift(reference, moving, upsample_factor=1000)
        assert error_px(estimate, displacement).max() < 0.005


def test_saturated_artefact_in_one_cycle():
    errors = []
    for index, displacement in sub_pixel_cases(4, 3.0, seed=5):
        reference, moving = pair(index, displacement, seed=30 + index)
        for radius in (15.0, 40.0):
            spoiled = add_saturated_blob(moving, centre=(180 + 20 * index, 300), radius_px=radius)
            assert np.count_nonzero(spoiled == 65535) > np.pi * radius**2 * 0.9
            estimate = estimate_shift(reference, spoiled)
            assert estimate.reliable, estimate.reason
            errors.append(error_px(estimate, displacement))
    # Measured: max ~0.02 px with the artefact (it is clipped by the quantile
    # rescaling and its flat inside carries no weight after the high-pass).
    assert np.max(errors) < 0.05


def test_pure_background_is_flagged_unreliable():
    for seed in range(3):
        estimate = estimate_shift(
            background_fov((512, 512), seed=seed), background_fov((512, 512), seed=seed + 10)
        )
        assert not estimate.reliable
        assert abs(estimate.quality) < 0.1
        assert estimate.reason.startswith("quality") and "below 0.3" in estimate.reason
    # Real nuclei against an empty field: also unreliable.
    estimate = estimate_shift(noisy(sample_fov(0), 1), background_fov((512, 512), seed=1))
    assert not estimate.reliable and estimate.quality < 0.1


def test_no_contrast_gives_zero_shift_and_a_reason():
    flat = np.full((128, 128), 500, np.uint16)
    textured = noisy(sample_fov(0)[:128, :128], 3)
    estimate = estimate_shift(textured, flat)
    assert estimate == ShiftEstimate((0.0, 0.0), 0.0, False, "no contrast in the moving image", (0.0, 0.0))
    estimate = estimate_shift(np.zeros((2, 64, 64)), np.ones((2, 64, 64)))
    assert estimate.shift == (0.0, 0.0, 0.0) and estimate.reason == "no contrast in the reference image"


def test_sparse_content_still_registers():
    # A field with only a handful of nuclei (the rest is background).
    full = sample_fov(1).astype(np.float64)
    mask = np.zeros_like(full)
    mask[60:180, 300:460] = 1.0
    mask = ndimage.gaussian_filter(mask, 4)
    background = 3000.0
    displacement = (2.37, -1.61)
    moved_mask = ndimage.shift(mask, displacement, order=1)
    reference = noisy(background + mask * full, 1)
    moving = noisy(background + moved_mask * sample_fov(1, displacement), 2)
    estimate = estimate_shift(reference, moving)
    assert estimate.reliable
    assert error_px(estimate, displacement).max() < 0.1


# --------------------------------------------------------------------------
# 3D


@pytest.mark.parametrize("z_planes", [5, 9])
def test_3d_shift_with_z_displacement(z_planes):
    rng = np.random.default_rng(z_planes)
    errors = []
    for index in (0, 3):
        dz = float(rng.uniform(-1.3, 1.3))
        dy, dx = (float(v) for v in rng.uniform(-45, 45, 2))
        reference, moving = pair(index, (dz, dy, dx), z_planes=z_planes, seed=40 + index)
        estimate = estimate_shift(reference, moving)
        assert len(estimate.shift) == 3
        assert estimate.reliable, estimate.reason
        errors.append(error_px(estimate, (dz, dy, dx)))
    errors = np.array(errors)
    assert errors[:, 1:].max() < 0.05  # y, x
    # z is sampled 3x coarser than y/x and the planes differ only by defocus;
    # measured: ~0.03 planes with 5 planes, ~0.01 with 9.
    assert errors[:, 0].max() < 0.1


def test_3d_whole_plane_shift_and_single_plane_stack():
    reference, moving = pair(2, (1.0, 3.5, -2.25), z_planes=5, seed=50)
    estimate = estimate_shift(reference, moving)
    assert np.abs(np.array(estimate.shift) - (-1.0, -3.5, 2.25)).max() < 0.05
    # Z = 1 behaves like 2D, with a zero z shift.
    reference, moving = pair(2, (3.5, -2.25), seed=51)
    flat = estimate_shift(reference, moving)
    single = estimate_shift(reference[None], moving[None])
    assert single.shift == (0.0, *flat.shift)
    assert single.quality == pytest.approx(flat.quality)


def test_max_shift_limits_z():
    reference, moving = pair(1, (1.0, 0.5, 0.5), z_planes=5, seed=52)
    estimate = estimate_shift(reference, moving, max_shift_px=(0, 4, 4))
    assert estimate.shift[0] == 0.0
    assert estimate.quality < estimate_shift(reference, moving).quality


# --------------------------------------------------------------------------
# Conventions and options


def test_sign_convention_matches_skimage_and_scipy():
    # Content displaced by +d in the moving image gives -d...
    reference = sample_fov(5).astype(np.float64)
    moving = ndimage.shift(reference, (6.0, -3.0), order=1, mode="nearest")
    estimate = estimate_shift(reference, moving)
    assert estimate.shift == (-6.0, 3.0)
    # ...the shift that registers moving onto the reference with scipy...
    registered = ndimage.shift(moving, estimate.shift, order=1, mode="nearest")
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(registered[inner] - reference[inner]).max() < 1e-6
    # ...and the sign of skimage's phase_cross_correlation(reference, moving).
    from skimage.registration import phase_cross_correlation

    skimage_shift, _, _ = phase_cross_correlation(reference, moving)
    assert tuple(skimage_shift) == estimate.shift


def test_inputs_are_not_modified_and_any_real_dtype_works():
    reference, moving = pair(6, (1.25, -0.5), seed=60)
    reference_copy, moving_copy = reference.copy(), moving.copy()
    reference.flags.writeable = False
    moving.flags.writeable = False
    results = [estimate_shift(reference, moving)]
    assert np.array_equal(reference, reference_copy) and np.array_equal(moving, moving_copy)
    for dtype in (np.float32, np.float64, np.int32):
        results.append(estimate_shift(reference.astype(dtype), moving.astype(dtype)))
    results.append(estimate_shift((reference // 257).astype(np.uint8), (moving // 257).astype(np.uint8)))
    for result in results:
        assert np.abs(np.array(result.shift) - (-1.25, 0.5)).max() < 0.05


def test_upsample_factor_rounds_and_one_gives_whole_pixels():
    reference, moving = pair(7, (2.4, -1.3), seed=70)
    whole = estimate_shift(reference, moving, upsample_factor=1)
    assert whole.shift == (-2.0, 1.0)
    tenth = estimate_shift(reference, moving, upsample_factor=10)
    assert tenth.shift == (-2.4, 1.3)


def test_small_max_shift_skips_the_coarse_step():
    reference, moving = pair(4, (1.7, -2.2), seed=80)
    estimate = estimate_shift(reference, moving, max_shift_px=3)
    assert estimate.coarse_shift == (0.0, 0.0)
    assert error_px(estimate, (1.7, -2.2)).max() < 0.05
    # A shift beyond max_shift_px is not found, and the result says so,
    # whatever the quality of the match found within the limit (with the
    # quality's reason too when it is low).
    for true_shift, seed in (((12.0, 0.0), 81), ((4.5, 0.0), 81), ((-20.0, 3.0), 82)):
        far = estimate_shift(*pair(4, true_shift, seed=seed), max_shift_px=3)
        assert not far.reliable
        assert far.reason.startswith("shift (") and "exceeds max_shift_px (3.0, 3.0)" in far.reason
        assert max(abs(v) for v in far.shift) > 3
        assert ("below 0.3" in far.reason) == (far.quality < 0.3)


@pytest.mark.parametrize("coarse_factor", [1, 2, 8])
def test_explicit_coarse_factor(coarse_factor):
    reference, moving = pair(3, (-41.3, 17.8), seed=90)
    estimate = estimate_shift(reference, moving, coarse_factor=coarse_factor)
    assert error_px(estimate, (-41.3, 17.8)).max() < 0.05


def test_quality_drops_with_noise_and_is_one_for_identical_images():
    image = sample_fov(0)
    assert estimate_shift(image, image).quality == pytest.approx(1.0, abs=1e-4)
    clean = estimate_shift(*pair(0, (0.5, 0.5), seed=1))
    very_noisy = estimate_shift(
        add_noise(sample_fov(0), photons=5, read_noise=3000, seed=1),
        add_noise(sample_fov(0, (0.5, 0.5)), photons=5, read_noise=3000, seed=2),
    )
    assert very_noisy.quality < clean.quality


@pytest.mark.parametrize(
    ("reference", "moving", "options", "message"),
    [
        (np.zeros((64, 64)), np.zeros((64, 65)), {}, r"same shape"),
        (np.zeros((64,)), np.zeros((64,)), {}, r"2D \(Y, X\) or 3D"),
        (np.zeros((1, 1, 64, 64)), np.zeros((1, 1, 64, 64)), {}, r"drop channel"),
        (np.zeros((16, 64)), np.zeros((16, 64)), {}, r"at least 32 x 32"),
        (np.zeros((64, 64), complex), np.zeros((64, 64), complex), {}, r"real-valued"),
        (np.full((64, 64), np.nan), np.zeros((64, 64)), {}, r"NaN"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"upsample_factor": 0}, r"upsample_factor"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"coarse_factor": 0}, r"coarse_factor"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"max_shift_px": (1, 2, 3)}, r"one per axis \(2\)"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"max_shift_px": -1}, r"non-negative"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"intensity_quantiles": (0.9, 0.1)}, r"low < high"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"min_quality": 2}, r"min_quality"),
        (np.zeros((64, 64)), np.zeros((64, 64)), {"band_px": (20, 4)}, r"band_px"),
    ],
)
def test_bad_inputs_are_rejected(reference, moving, options, message):
    with pytest.raises(InvalidInputError, match=message):
        estimate_shift(reference, moving, **options)


# --------------------------------------------------------------------------
# Consensus


def fractal_tasks_core_consensus(start, length, translations):
    """fractal-tasks-core's rule for integer translations (test oracle)."""
    out = {}
    for key, t in translations.items():
        axes = []
        for axis in range(len(start)):
            values = [0.0] + [v[axis] for v in translations.values()]
            high, low = max(values), min(values)
            axes.append((start[axis] + high - t[axis], length[axis] - (high - low)))
        out[key] = axes
    return out


def test_integer_translations_equal_fractal_tasks_core():
    start, length = (3, 512, 1024), (5, 512, 512)
    translations = {0: (0, 0, 0), 1: (1, -7, 12), 2: (-2, 3, -30), 3: (0, 45, 5)}
    boxes = consensus_boxes(start, length, translations)
    oracle = fractal_tasks_core_consensus(start, length, translations)
    assert set(boxes) == set(translations)
    for key, box in boxes.items():
        assert box.start_px == tuple(int(s) for s, _ in oracle[key])
        assert box.length_px == tuple(int(n) for _, n in oracle[key])
        # The region starts at start + max(t) in the reference.
        assert box.reference_start_px == (3 + 1, 512 + 45, 1024 + 12)
        assert box.stop_px == tuple(s + n for s, n in zip(box.start_px, box.length_px))
    # Each acquisition's box shows the reference's box: start + t == reference start.
    for key, box in boxes.items():
        assert tuple(s + t for s, t in zip(box.start_px, translations[key])) == box.reference_start_px


def test_the_reference_is_implied():
    with_reference = consensus_boxes((0, 0), (100, 100), {"ref": (0, 0), "c1": (3, -4)})
    without = consensus_boxes((0, 0), (100, 100), {"c1": (3, -4)})
    assert without == {"c1": with_reference["c1"]}
    # A single acquisition with positive translations is still cut by the reference.
    assert without["c1"] == RegisteredBox(start_px=(0, 4), length_px=(97, 96), reference_start_px=(3, 0))


def brute_force(start, length, translations):
    """Largest n over every whole-pixel reference start r (test oracle)."""
    best = None
    low, high = math.ceil(start), math.floor(start + length)
    everyone = [0.0, *translations]
    for r in range(low - 10, high + 10):
        starts = [math.floor(r - t + 0.5) for t in everyone]
        n = high - max(starts)
        if min(starts) >= low and n > 0 and (best is None or n > best[1]):
            best = (r, n)
    return best


def test_fractional_translations_give_whole_pixel_boxes_inside_every_fov():
    rng = np.random.default_rng(0)
    for _ in range(300):
        ndim = int(rng.integers(1, 4))
        start = tuple(float(v) for v in rng.uniform(-50, 500, ndim).round(rng.integers(0, 3)))
        length = tuple(float(v) for v in rng.uniform(60, 300, ndim).round(rng.integers(0, 3)))
        translations = {
            k: tuple(float(v) for v in rng.uniform(-25, 25, ndim).round(rng.integers(0, 4)))
            for k in range(int(rng.integers(1, 5)))
        }
        boxes = consensus_boxes(start, length, translations)
        lengths = {box.length_px for box in boxes.values()}
        assert len(lengths) == 1
        (common,) = lengths
        for key, box in boxes.items():
            for axis in range(ndim):
                # Whole pixels, inside the FOV's ROI box.
                assert isinstance(box.start_px[axis], int)
                assert box.start_px[axis] >= start[axis] - 1e-9
                assert box.stop_px[axis] <= start[axis] + length[axis] + 1e-9
                # round(r - t) (halves up).
                t = translations[key][axis]
                r = box.reference_start_px[axis]
                assert box.start_px[axis] == math.floor(r - t + 0.5)
        for axis in range(ndim):
            # Less than 3 px shorter and 1 px longer than the exact region
            # (whole-pixel ROI bounds, each acquisition's offset rounded).
            values = [0.0, *(v[axis] for v in translations.values())]
            exact = length[axis] - (max(values) - min(values))
            assert exact - 3 < common[axis] < exact + 1
        for axis in range(ndim):
            r, n = brute_force(start[axis], length[axis], [v[axis] for v in translations.values()])
            assert common[axis] == n
            assert next(iter(boxes.values())).reference_start_px[axis] == r


def test_fractional_example_by_hand():
    # ROI [10, 110) in x; translations 0 (reference), +2.4 and -1.5.
    boxes = consensus_boxes((10.0,), (100.0,), {0: (0.0,), 1: (2.4,), 2: (-1.5,)})
    # Exact region in the reference: [12.4, 108.5). Whole-pixel starts are
    # round(r - t) = r, r - 2, r + 2 (halves up); all >= 10 -> r = 12; all
    # boxes end by 110 -> n = 110 - (r + 2) = 96.
    assert boxes[0] == RegisteredBox((12,), (96,), (12,))
    assert boxes[1] == RegisteredBox((10,), (96,), (12,))
    assert boxes[2] == RegisteredBox((14,), (96,), (12,))


def test_bounds_within_a_rounding_error_of_a_whole_pixel_count_as_whole():
    # 157.5625 um / 0.325 um per px is 484.80769..., but 484.0000000001 comes
    # from float arithmetic on whole pixels.
    boxes = consensus_boxes((484.0000000001, 0.0), (511.9999999999, 512), {1: (1, 1)})
    assert boxes[1] == RegisteredBox((484, 0), (511, 511), (485, 1))


def test_shifts_larger_than_the_roi_name_the_axis():
    with pytest.raises(InvalidInputError, match=r"ROI 'FOV_3'.* along x.*-300 to 300.*'a': -300"):
        consensus_boxes((0, 0), (512, 512), {"a": (0, -300), "b": (2, 300)}, roi_name="FOV_3")
    with pytest.raises(InvalidInputError, match=r"along z"):
        consensus_boxes((0, 0, 0), (3, 100, 100), {1: (2.6, 0, 0), 2: (-1, 0, 0)})


@pytest.mark.parametrize(
    ("start", "length", "translations", "message"),
    [
        ((0, 0), (10, 10), {}, r"translations_px is empty"),
        ((0, 0), (10,), {1: (0, 0)}, r"length_px must have 2 values"),
        ((0, 0), (10, 10), {1: (0, 0, 0)}, r"acquisition 1 must have 2 values"),
        ((0, 0), (10, 0), {1: (0, 0)}, r"length_px must be positive"),
        ((0, float("nan")), (10, 10), {1: (0, 0)}, r"start_px must be finite"),
        ((0, 0), (10, 10), {1: ("a", 0)}, r"must be a sequence of numbers"),
        ((), (), {1: ()}, r"start_px must have 1 to 3 values"),
    ],
)
def test_consensus_bad_inputs(start, length, translations, message):
    with pytest.raises(InvalidInputError, match=message):
        consensus_boxes(start, length, translations)


def test_consensus_of_estimated_shifts_pairs_equal_patches():
    # End to end on arrays: estimate, take the consensus, crop equal shapes.
    fov = (0, 0), (512, 512)
    reference = noisy(sample_fov(2), 1)
    cycles = {
        1: noisy(sample_fov(2, (4.3, -6.6)), 2),
        2: noisy(sample_fov(2, (-2.3, 3.2)), 3),
    }
    translations = {0: (0.0, 0.0)}
    translations.update(
        {key: estimate_shift(reference, image).shift for key, image in cycles.items()}
    )
    boxes = consensus_boxes(*fov, translations)
    images = {0: reference, **cycles}
    patches = {
        key: images[key][tuple(slice(s, e) for s, e in zip(box.start_px, box.stop_px))]
        for key, box in boxes.items()
    }
    assert len({p.shape for p in patches.values()}) == 1
    # The patches show the same nuclei (within the sub-pixel rest).
    for key in cycles:
        correlation = np.corrcoef(patches[0].ravel(), patches[key].ravel())[0, 1]
        assert correlation > 0.9
    # The same boxes as from the true translations (fractions far from .5).
    truth = {0: (0.0, 0.0), 1: (-4.3, 6.6), 2: (2.3, -3.2)}
    assert boxes == consensus_boxes(*fov, truth)
    assert list(itertools.chain(*(b.length_px for b in boxes.values()))) == [506, 502] * 3
