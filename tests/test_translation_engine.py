"""The shared translation engine (`fractal_roi_tasks.translation`), step by step.

Ground truth: scikit-image's bundled camera and Hubble deep field images,
shifted by known sub-pixel amounts in the Fourier domain (exact for
band-limited content; the windows are cut well inside the image so that the
wrap-around of the Fourier shift does not reach them), and brute-force
references computed pixel by pixel on small arrays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import fft as sp_fft
from scipy import ndimage
from skimage import data

from fractal_roi_tasks.translation.boxes import common_box, fits, moved
from fractal_roi_tasks.translation.intensity import (
    block_mean,
    clip_to_quantiles,
    detrended,
    gain_matched,
    sorted_quantiles,
)
from fractal_roi_tasks.translation.likelihood import expected_error, ml_weight
from fractal_roi_tasks.translation.peak import (
    correlation_grid,
    grid_peak,
    newton_maximum,
    normalised_correlation,
)
from fractal_roi_tasks.translation.refine import RefinementRule, follow_window, solve_2x2
from fractal_roi_tasks.translation.spectra import (
    band,
    check_band,
    fast_shape,
    taper_1d,
    taper_2d,
    windowed_spectrum,
)
from fractal_roi_tasks.translation.whole_pixel import coarse_displacement, masked_ncc_match


def fourier_shifted(image: np.ndarray, displacement) -> np.ndarray:
    """``image`` with its content moved by ``displacement`` (y, x) px, by a Fourier phase ramp."""
    spectrum = ndimage.fourier_shift(sp_fft.fft2(image.astype(np.float64)), displacement)
    return sp_fft.ifft2(spectrum).real


def camera() -> np.ndarray:
    return data.camera().astype(np.float64)


def cross_spectrum(reference, moving, spectral_band, *, residual=(0.0, 0.0), taper=0.1):
    """Band-cropped weighted cross-power spectrum of two windows (the moving taper at ``residual``)."""
    a = windowed_spectrum(reference.astype(np.float32), (0.0, 0.0), taper, spectral_band)
    b = windowed_spectrum(moving.astype(np.float32), residual, taper, spectral_band)
    return b * np.conj(a) * spectral_band.weight, a, b


# --------------------------------------------------------------------------
# Intensities


def test_quantiles_equal_numpy_and_clipping_uses_them():
    values = np.random.default_rng(0).normal(size=5000).astype(np.float32)
    levels = (0.0, 0.01, 0.5, 0.999, 1.0)
    assert sorted_quantiles(values, levels) == pytest.approx(np.quantile(values, levels), abs=0)
    image = camera()[:64, :64]  # 4,096 pixels: every pixel samples the quantiles
    clipped, contrast = clip_to_quantiles(image, (0.01, 0.999))
    low, high = np.quantile(image.astype(np.float32), (0.01, 0.999))
    assert clipped.dtype == np.float32 and clipped.min() == pytest.approx(low)
    assert clipped.max() == pytest.approx(high) and contrast == pytest.approx(high - low)
    untouched, span = clip_to_quantiles(image, None)
    assert np.array_equal(untouched, image.astype(np.float32)) and span == image.max() - image.min()


def test_block_mean_is_the_mean_of_whole_blocks():
    image = camera()[:67, :50]
    binned = block_mean(image, 4)
    expected = image[:64, :48].reshape(16, 4, 12, 4).mean(axis=(1, 3))
    assert binned.shape == (16, 12) and np.allclose(binned, expected, rtol=1e-6)
    stack = np.stack([image, 2 * image])
    assert np.allclose(block_mean(stack, 4)[1], 2 * expected, rtol=1e-6)


def test_detrend_removes_a_quadratic_ramp_and_keeps_the_texture():
    patch = camera()[200:264, 200:264]
    texture = patch - ndimage.gaussian_filter(patch, 2)  # fine detail, no trend of its own
    y, x = np.mgrid[:64, :64] / 64.0
    ramp = 500 * y**2 - 300 * x * y + 200 * x + 40
    flat = detrended((texture + ramp).astype(np.float32), (0.0, 0.0), taper_fraction=0.1)
    alone = detrended(texture.astype(np.float32), (0.0, 0.0), taper_fraction=0.1)
    # The ramp goes entirely (the fit is linear in its coefficients)...
    assert np.abs(flat - alone).max() < 1e-3 * np.abs(ramp).max()
    # ...and the texture stays.
    assert np.corrcoef(alone.ravel(), texture.ravel())[0, 1] > 0.99


def test_gain_match_undoes_a_linear_gain_between_two_copies():
    texture = camera()[100:196, 300:396] + 50.0
    gain = 1.0 + 0.6 * np.linspace(0, 1, 96)[None, :] + 0.2 * np.linspace(0, 1, 96)[:, None]
    matched = gain_matched((texture / gain).astype(np.float32), texture, taper_fraction=0.1)
    inner = (slice(10, -10), slice(10, -10))
    before = np.abs(texture / gain / texture - 1)[inner].max()
    after = np.abs(matched / texture - 1)[inner].max()
    assert before > 0.4 and after < 0.05
    # A gain outside [0.2, 5] is not applied: the input comes back unchanged.
    dark = (texture / 100).astype(np.float32)
    assert gain_matched(dark, texture, taper_fraction=0.1) is dark


# --------------------------------------------------------------------------
# Tapers and spectra


def test_taper_shape_and_sub_pixel_placement():
    window = taper_1d(40, 6.0)
    assert window[0] == window[1] == window[-1] == window[-2] == 0.0
    assert np.all(window[7:33] == 1.0)
    assert np.allclose(window, window[::-1])
    assert np.all(np.diff(window[:8]) >= 0)
    # Placed at an offset, the window is the same cosine evaluated at i - offset.
    moved_window = taper_1d(40, 6.0, 0.3)
    i = np.arange(40)
    ramp = np.clip(np.minimum(i - 0.3 - 1, 38 - (i - 0.3)) * np.pi / 6.0, 0, np.pi)
    assert np.allclose(moved_window, 0.5 - 0.5 * np.cos(ramp), atol=1e-6)
    # A whole-pixel offset is a plain shift of the samples.
    assert np.array_equal(taper_1d(40, 6.0, 1.0)[1:], window[:-1])
    # The 2D taper is the outer product of the sides' (flanks of 15%: 6 and 4.5 px).
    assert np.allclose(taper_2d((40, 30), (0.3, -0.2), 0.15), np.outer(moved_window, taper_1d(30, 4.5, -0.2)))


def test_windowed_spectrum_is_the_fft_of_the_tapered_crop_less_its_weighted_mean():
    crop = camera()[50:98, 60:110].astype(np.float32)  # 48 x 50
    spectral_band = band(fast_shape((48, 50)), (0.0, 0.0))
    spectrum = windowed_spectrum(crop, (0.25, -0.4), 0.1, spectral_band)
    window = taper_2d((48, 50), (0.25, -0.4), 0.1)
    mean = (crop * window).sum() / window.sum()
    padded = np.zeros(spectral_band.fft_shape)
    padded[:48, :50] = (crop - mean) * window
    expected = spectral_band.crop(np.fft.rfft2(padded))
    assert np.allclose(spectrum, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    assert abs(spectrum[0, 0]) < 1e-4 * np.abs(expected).max()  # the mean is gone


def test_band_drops_fine_detail_weighs_down_coarse_structure_and_keeps_parseval():
    spectral_band = band((64, 64), (4.0, 20.0))
    assert np.abs(spectral_band.fy).max() <= 0.25 + 1e-12 and spectral_band.fx.max() <= 0.25 + 1e-12
    assert spectral_band.weight[0, 0] == 0.0
    assert spectral_band.weight[0, 10] / 2 > 0.9  # 10 / 64 cycles/px: a 6.4 px period
    # With no limits, the weighted energy of a spectrum is Parseval's sum.
    full = band((64, 64), (0.0, 0.0))
    image = camera()[:64, :64]
    energy = float(full.energy(full.crop(np.fft.rfft2(image))))
    assert energy == pytest.approx(64 * 64 * float((image**2).sum()), rel=1e-6)


def test_check_band_says_what_is_wrong():
    assert check_band((6, 30)) == (6.0, 30.0) and check_band((0, 0)) == (0.0, 0.0)
    for bad in ((20, 4), (1, 10), (3, math.nan), (3,)):
        with pytest.raises(ValueError, match=r"band_px must be \(finest, coarsest\) periods"):
            check_band(bad)
    with pytest.raises(ValueError, match="band_px must be two numbers"):
        check_band(("fine", 3))


# --------------------------------------------------------------------------
# Whole pixels


def brute_force_ncc(first, second, displacement, min_overlap):
    """Pixel-by-pixel normalised cross-correlation of second[v] and first[v + d]."""
    pairs_1, pairs_2 = [], []
    for channel_1, channel_2 in zip(first, second):
        values_1, values_2 = [], []
        for v0 in range(channel_2.shape[0]):
            for v1 in range(channel_2.shape[1]):
                u0, u1 = v0 + displacement[0], v1 + displacement[1]
                if 0 <= u0 < channel_1.shape[0] and 0 <= u1 < channel_1.shape[1]:
                    values_1.append(channel_1[u0, u1])
                    values_2.append(channel_2[v0, v1])
        pairs_1.append(np.array(values_1))
        pairs_2.append(np.array(values_2))
    if pairs_1[0].size == 0:
        return None
    rows = {v0 for v0 in range(second[0].shape[0]) if 0 <= v0 + displacement[0] < first[0].shape[0]}
    columns = {v1 for v1 in range(second[0].shape[1]) if 0 <= v1 + displacement[1] < first[0].shape[1]}
    if len(rows) < min_overlap or len(columns) < min_overlap:
        return None
    numerator = sum(((a - a.mean()) * (b - b.mean())).sum() for a, b in zip(pairs_1, pairs_2))
    energy_1 = sum(((a - a.mean()) ** 2).sum() for a in pairs_1)
    energy_2 = sum(((b - b.mean()) ** 2).sum() for b in pairs_2)
    return numerator / math.sqrt(energy_1 * energy_2)


def test_masked_ncc_equals_a_brute_force_reference_on_small_arrays():
    rng = np.random.default_rng(3)
    image = camera()[300:340, 200:250] + rng.normal(0, 5, (40, 50))
    other = rng.normal(0, 1, (40, 50))
    first = [image[:20, :24], other[:20, :24]]
    second = [image[4:22, 10:30], other[4:22, 10:30] + rng.normal(0, 1, (18, 20))]
    centre, radius, min_overlap = (3, 9), 4, 5
    match = masked_ncc_match(first, second, centre, radius, min_overlap)
    scores = {}
    for dy in range(centre[0] - radius, centre[0] + radius + 1):
        for dx in range(centre[1] - radius, centre[1] + radius + 1):
            score = brute_force_ncc(first, second, (dy, dx), min_overlap)
            if score is not None:
                scores[(dy, dx)] = score
    best = max(scores, key=scores.get)
    assert match.displacement == best == (4, 10)
    assert match.score == pytest.approx(scores[best], abs=1e-9)
    assert not match.on_edge
    # With the truth on the edge of the searched range, the match says so.
    edge = masked_ncc_match(first, second, (4, 8), 2, min_overlap)
    assert edge.displacement == (4, 10) and edge.on_edge
    assert edge.score == pytest.approx(brute_force_ncc(first, second, edge.displacement, min_overlap), abs=1e-9)
    # No candidate overlaps by min_overlap: nothing to match.
    assert masked_ncc_match(first, second, (30, 0), 2, min_overlap) is None


def test_coarse_displacement_finds_whole_and_sub_pixel_shifts():
    image = camera()
    for truth in ((13.0, -22.0), (-5.4, 7.7)):
        moved_image = fourier_shifted(image, truth)
        reference, moving = image[128:384, 128:384], moved_image[128:384, 128:384]
        whole, subpixel, quality = coarse_displacement(
            reference.astype(np.float32), moving.astype(np.float32), (40, 40), (2.0, 8.0)
        )
        assert whole == tuple(int(round(t)) for t in truth)
        assert np.abs(np.array(subpixel) - truth).max() < 0.15
        assert quality > 0.5
    # A limit smaller than the shift keeps the search inside it.
    whole, _, _ = coarse_displacement(reference.astype(np.float32), moving.astype(np.float32), (3, 3), (0, 0))
    assert max(abs(w) for w in whole) <= 3


# --------------------------------------------------------------------------
# Peaks


def test_correlation_grid_is_the_fourier_sum_it_names():
    spectral_band = band((16, 16), (3.0, 0.0))
    rng = np.random.default_rng(4)
    cross = (rng.normal(size=spectral_band.weight.shape) + 1j * rng.normal(size=spectral_band.weight.shape))
    cross = (cross * spectral_band.weight).astype(np.complex64)
    ys, xs = np.array([-0.3, 1.7]), np.array([0.25, -2.0, 3.1])
    values = correlation_grid(cross, spectral_band, ys, xs)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            phase = np.exp(2j * np.pi * (spectral_band.fy[:, None] * y + spectral_band.fx[None, :] * x))
            assert values[i, j] == pytest.approx(float((cross * phase).real.sum()), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("truth", [(0.37, -0.61), (-0.5, 0.5), (1.23, 0.08)])
def test_newton_maximum_recovers_a_known_sub_pixel_shift_of_a_real_image(truth):
    image = data.hubble_deep_field()[..., 1].astype(np.float64)[:512, :512]
    moved_image = fourier_shifted(image, truth)
    inside = (slice(200, 296), slice(200, 296))
    spectral_band = band(fast_shape((96, 96)), (3.0, 40.0))
    # The moving taper follows the content (as the refinement loop places it).
    cross, a, b = cross_spectrum(image[inside], moved_image[inside], spectral_band, residual=truth)
    start = grid_peak(cross, spectral_band, (0.0, 0.0), (2, 2))
    # The grid maximum is a nearest whole pixel of the truth.
    assert max(abs(s - t) for s, t in zip(start, truth)) <= 0.5 + 1e-9
    y, x, value = newton_maximum(cross, spectral_band, start)
    assert abs(y - truth[0]) < 2e-3 and abs(x - truth[1]) < 2e-3
    exact = correlation_grid(cross, spectral_band, np.array([y]), np.array([x]))[0, 0]
    assert value == pytest.approx(exact, rel=1e-4)
    quality = normalised_correlation(value, float(spectral_band.energy(a)), float(spectral_band.energy(b)))
    assert 0.95 < quality <= 1.0


def test_normalised_correlation_is_clipped_and_zero_without_energy():
    assert normalised_correlation(5.0, 1.0, 1.0) == 1.0
    assert normalised_correlation(-5.0, 1.0, 1.0) == -1.0
    assert normalised_correlation(1.0, 1.0, -1.0) == 0.0


# --------------------------------------------------------------------------
# The refinement loop


def pulled(truth, pull):
    """A measurement whose window, misplaced by m, pulls the estimate by pull * m."""
    calls = []

    def measure(integer, residual):
        placement = np.array(integer) + residual
        calls.append(placement)
        return np.asarray(truth) + np.asarray(pull) * (placement - truth), len(calls)

    return measure, calls


@pytest.mark.parametrize("pull", [(0.001, 0.001), (0.5, 0.3), (0.8, -0.6)])
def test_follow_window_finds_the_fixed_point_for_weak_and_strong_pulls(pull):
    truth = (2.37, -1.64)
    measure, calls = pulled(truth, pull)
    rule = RefinementRule(max_rounds=8, tolerance_px=1e-3)
    fit = follow_window(measure, (2.0, -2.0), rule)
    assert np.abs(fit.displacement - truth).max() < 2e-3
    assert fit.rounds == len(calls) and fit.payload == len(calls)
    assert np.allclose(fit.placement, calls[-1])
    # Broyden's method needs few rounds even where the pull is strong, where
    # plain iteration (w <- estimate) would need many more.
    assert fit.rounds <= 5
    placement, plain_rounds = np.array((2.0, -2.0)), 0
    while True:
        estimate = np.asarray(truth) + np.asarray(pull) * (placement - truth)
        plain_rounds += 1
        if np.abs(estimate - placement).max() < rule.tolerance_px:
            break
        placement = placement + np.clip(estimate - placement, -0.5, 0.5)
    if max(abs(p) for p in pull) >= 0.5:
        assert plain_rounds > fit.rounds


def test_follow_window_cuts_windows_at_whole_pixels_and_moves_at_most_half_a_pixel():
    seen = []

    def measure(integer, residual):
        seen.append((integer, residual.copy()))
        return np.array([3.6, -0.4]), None

    fit = follow_window(measure, (0.2, 0.2), RefinementRule(max_rounds=20, tolerance_px=1e-3))
    for integer, residual in seen:
        assert all(isinstance(i, int) for i in integer) and np.abs(residual).max() <= 0.5
    placements = [np.array(i) + r for i, r in seen]
    assert all(np.abs(b - a).max() <= 0.5 + 1e-12 for a, b in zip(placements, placements[1:]))
    assert np.allclose(fit.displacement, (3.6, -0.4))


def test_follow_window_drift_limit_and_giving_up():
    # A measurement that keeps saying 1 px further than the window (a runaway).
    runaway = lambda integer, residual: (np.array(integer) + residual + 1.0, None)  # noqa: E731
    rule = RefinementRule(max_rounds=8, tolerance_px=1e-3, max_drift_px=0.5, stop_when_still=True)
    first = {}

    def recording(integer, residual):
        out = runaway(integer, residual)
        first.setdefault("estimate", out[0].copy())
        first.setdefault("placements", []).append(np.array(integer) + residual)
        return out

    fit = follow_window(recording, (0.0, 0.0), rule)
    # The window stays within 0.5 px of the first estimate, and the loop stops there.
    assert all(np.abs(p - first["estimate"]).max() <= 0.5 + 1e-9 for p in first["placements"][1:])
    assert fit.rounds < rule.max_rounds
    assert follow_window(lambda integer, residual: None, (0.0, 0.0), rule) is None
    assert solve_2x2(np.zeros((2, 2)), np.ones(2)) is None


# --------------------------------------------------------------------------
# Maximum-likelihood weights and the expected error


def test_expected_error_predicts_the_scatter_of_the_estimate():
    image = camera()
    truth = (0.3, -0.45)
    moved_image = fourier_shifted(image, truth)
    inside = (slice(150, 214), slice(230, 294))
    spectral_band = band(fast_shape((64, 64)), (3.0, 40.0))
    rng = np.random.default_rng(7)
    estimates, predicted = [], []
    for _ in range(40):
        a = image[inside] + rng.normal(0, 25, (64, 64))
        b = moved_image[inside] + rng.normal(0, 25, (64, 64))
        cross, spectrum_a, spectrum_b = cross_spectrum(a, b, spectral_band, residual=truth)
        weight = ml_weight(spectrum_a, spectrum_b, spectral_band, truth)
        assert weight.dtype == np.float32 and weight.min() >= 0
        weighted = cross * weight
        estimates.append(newton_maximum(weighted, spectral_band, truth)[:2])
        predicted.append(expected_error(weighted, spectral_band, np.array(estimates[-1])))
    scatter = math.sqrt(np.sum(np.var(np.array(estimates), axis=0)))
    assert 0.5 < np.mean(predicted) / scatter < 2.0
    assert np.abs(np.mean(estimates, axis=0) - truth).max() < 3 * scatter / math.sqrt(40) + 5e-3
    # A flat correlation (no shared detail) has no finite expected error.
    assert expected_error(np.zeros_like(weighted), spectral_band, np.zeros(2)) == math.inf


# --------------------------------------------------------------------------
# Boxes


def test_common_box_holds_exactly_the_pixels_both_windows_share():
    for reference_shape, moving_shape, d in (((20, 30), (25, 18), (3, -4)), ((10, 10), (10, 10), (-6, 2))):
        box = common_box(reference_shape, moving_shape, d, min_size=1)
        inside = [
            (v0, v1)
            for v0 in range(reference_shape[0])
            for v1 in range(reference_shape[1])
            if 0 <= v0 + d[0] < moving_shape[0] and 0 <= v1 + d[1] < moving_shape[1]
        ]
        rows = sorted({v0 for v0, _ in inside})
        columns = sorted({v1 for _, v1 in inside})
        assert box == (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
        assert fits(box, moving_shape, d) and not fits(box, moving_shape, (d[0] + 1, d[1] + 1))
        assert moved(box, d) == tuple(slice(s.start + k, s.stop + k) for s, k in zip(box, d))
    assert common_box((10, 10), (10, 10), (0, 0), min_size=4, margin=(3, 3)) == (slice(3, 7), slice(3, 7))
    assert common_box((10, 10), (10, 10), (0, 0), min_size=5, margin=(3, 3)) is None


def test_only_the_latest_polynomial_bases_are_kept():
    from fractal_roi_tasks.translation import intensity

    first = intensity.polynomial_basis((300, 301), 2)
    assert intensity.polynomial_basis((300, 301), 2) is first  # the same shape again: kept
    assert not first.flags.writeable
    for width in range(200, 260):  # stitching: a new window shape at every link
        intensity.polynomial_basis((500, width), 2)
    assert len(intensity._bases) == intensity.KEPT_BASES
    assert [key[0] for key in intensity._bases] == [(500, 258), (500, 259)]
    np.testing.assert_array_equal(intensity.polynomial_basis((300, 301), 2), first)  # made again, same
