"""Drift of time-lapses: known paths of real bundled images moving inside the frame.

Frames are fields of scikit-image's bundled ``retina`` moved by a known
sub-pixel displacement (a Fourier shift, `shifted_field`) with camera noise;
the truth is the path the test draws.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from scipy import ndimage

from fractal_roi_tasks.drift import estimate_drift, frame_pairs, solve_path
from fractal_roi_tasks.drift.estimate import FrameSource
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration.shift import estimate_shift
from fractal_roi_tasks.sample_data import load_source, shifted_field

SOURCE = load_source("retina")
NOISE = 0.03 * float(SOURCE.std())


def make_frames(path, *, shape=(192, 192), z_planes=1, seed=0, noise=NOISE):
    """Frames whose content sits at ``path[t]`` (pixels) relative to frame 0, with noise."""
    rng = np.random.default_rng(seed)
    frames = np.stack(
        [shifted_field(SOURCE, p, origin=(520, 520), shape=shape, z_planes=z_planes) for p in path]
    )
    return frames + rng.normal(0.0, noise, frames.shape)


def chained(frames):
    """The chained estimate users do today: each frame against the previous, summed."""
    shifts = [np.zeros(frames.ndim - 1)]
    for t in range(1, frames.shape[0]):
        step = estimate_shift(frames[t - 1], frames[t], upsample_factor=1000).shift
        shifts.append(shifts[-1] + np.array(step))
    return -np.array(shifts)


def random_walk(n_frames, step_px, seed):
    steps = np.random.default_rng(seed).normal(0.0, step_px, (n_frames - 1, 2))
    return np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def test_random_walk_with_sub_pixel_steps():
    path = random_walk(48, 0.35, seed=3)
    drift = estimate_drift(make_frames(path, seed=4))
    assert np.abs(drift.displacement_px - path).max() < 0.05
    assert not drift.interpolated.any() and not drift.blank.any()
    assert np.array_equal(drift.shift_px[0], [0.0, 0.0])
    assert (drift.quality > 0.9).all() and drift.pair_used.all()


def test_the_solve_beats_the_chain_on_the_same_frames():
    # A long, noisy time-lapse: the chain adds the error of every step, the
    # solve does not (RMS over the second half; 0.25 to 0.67 of the chain's
    # over three seeds tried).
    path = random_walk(96, 0.35, seed=13)
    frames = make_frames(path, shape=(128, 128), seed=14, noise=2 * NOISE)
    error = np.abs(estimate_drift(frames).displacement_px - path)[48:]
    chain_error = np.abs(chained(frames) - path)[48:]
    assert np.sqrt((error**2).mean()) < 0.8 * np.sqrt((chain_error**2).mean())
    assert error.max() < chain_error.max()


def test_slow_linear_drift_below_a_twentieth_of_a_pixel_per_frame():
    path = np.outer(np.arange(40), [0.03, -0.045])
    drift = estimate_drift(make_frames(path, seed=5))
    assert np.abs(drift.displacement_px - path).max() < 0.05
    # The drift over the whole time-lapse (1.2 and 1.8 px) is found to the same bound.
    assert np.abs(drift.displacement_px[-1] - path[-1]).max() < 0.05


def test_a_jump_of_several_pixels():
    path = np.outer(np.arange(32), [0.02, 0.01])
    path[17:] += [6.5, -9.25]
    drift = estimate_drift(make_frames(path, seed=6))
    assert np.abs(drift.displacement_px - path).max() < 0.05
    assert not drift.interpolated.any()


def test_blank_and_out_of_focus_frames_are_flagged_and_interpolated():
    path = np.outer(np.arange(30), [0.04, -0.03])
    frames = make_frames(path, seed=7)
    rng = np.random.default_rng(8)
    frames[6] = frames.mean() + rng.normal(0.0, NOISE, frames[6].shape)  # noise only
    frames[7] = frames.mean()  # constant
    frames[20] = ndimage.gaussian_filter(frames[20], 12)  # far out of focus
    drift = estimate_drift(frames)
    assert np.flatnonzero(drift.blank).tolist() == [6, 7, 20]
    assert np.flatnonzero(drift.interpolated).tolist() == [6, 7, 20]
    assert all(drift.reason[t] for t in (6, 7, 20))
    assert "no contrast" in drift.reason[7]
    assert not any(drift.reason[t] for t in range(30) if t not in (6, 7, 20))
    # Their pairs are left out of the solve; the others still carry it.
    touching = np.isin(drift.pairs, [6, 7, 20]).any(axis=1)
    assert not drift.pair_used[touching].any() and drift.pair_used[~touching].all()
    # The path is linear, so interpolation between good frames recovers it.
    assert np.abs(drift.displacement_px - path).max() < 0.05


def test_a_drift_in_3d_with_focus_drift():
    path = np.array([(0.0, 0.0, 0.0), (0.2, 0.4, -0.3), (0.5, 0.7, -0.9), (0.6, 1.3, -1.2),
                     (0.9, 1.5, -1.6), (1.3, 2.1, -1.8)])
    frames = make_frames(path, shape=(128, 128), z_planes=12, seed=9, noise=NOISE / 2)
    assert frames.shape == (6, 12, 128, 128)
    drift = estimate_drift(frames)
    assert drift.shift_px.shape == (6, 3)
    error = np.abs(drift.displacement_px - path)
    assert error[:, 1:].max() < 0.05  # y, x in pixels
    assert error[:, 0].max() < 0.1  # z in planes


def test_a_reference_in_the_middle():
    path = random_walk(12, 0.3, seed=10)
    drift = estimate_drift(make_frames(path, seed=11), reference=5)
    assert np.array_equal(drift.shift_px[5], [0.0, 0.0])
    assert np.abs(drift.displacement_px - (path - path[5])).max() < 0.05
    assert drift.reference == 5
    assert estimate_drift(make_frames(path, seed=11), reference=-1).reference == 11


def test_frame_pairs_reference_and_time_scales():
    pairs = frame_pairs(100, max_step=None)
    # Every frame meets the reference, plus steps 1, 2, 4, ..., 64: O(T log T).
    assert len(pairs) == 99 + sum(100 - s for s in (1, 2, 4, 8, 16, 32, 64)) - 7
    assert len({tuple(p) for p in pairs}) == len(pairs) and (pairs[:, 0] < pairs[:, 1]).all()
    assert len(frame_pairs(100, max_step=8)) == 99 + sum(100 - s for s in (1, 2, 4, 8)) - 4
    middle = frame_pairs(6, reference=3, max_step=1).tolist()
    assert middle == [[0, 1], [0, 3], [1, 2], [1, 3], [2, 3], [3, 4], [3, 5], [4, 5]]


def test_solve_drops_a_wrong_pair_and_keeps_the_path():
    truth = np.array([[0.0, 0.0], [0.1, 0.2], [0.3, 0.1], [0.4, 0.5], [0.6, 0.4]])
    pairs = frame_pairs(5, max_step=2)
    measured = truth[pairs[:, 1]] - truth[pairs[:, 0]]
    wrong = int(np.flatnonzero((pairs == [1, 3]).all(axis=1))[0])
    measured[wrong] += [3.0, -2.0]
    solution = solve_path(5, pairs, measured, np.ones(len(pairs)))
    assert solution.rejected.tolist() == [k == wrong for k in range(len(pairs))]
    assert np.allclose(solution.shift_px, truth)
    assert solution.residual_px[wrong] == pytest.approx(np.hypot(3.0, 2.0))


def test_a_frame_no_pair_reaches_is_interpolated():
    truth = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    pairs = np.array([[0, 1], [1, 2], [2, 3]])
    solution = solve_path(4, pairs, truth[1:] - truth[:-1], np.array([1.0, 0.0, 1.0]))
    assert solution.connected.tolist() == [True, True, False, False]
    assert np.isnan(solution.shift_px[2:]).all()


def test_bad_input_says_what_was_wrong():
    frames = make_frames(np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match=r"\(T, Y, X\) or \(T, Z, Y, X\).*shape \(192, 192\)"):
        estimate_drift(frames[0])
    with pytest.raises(InvalidInputError, match="at least 2 time points, got 1"):
        estimate_drift(frames[:1])
    with pytest.raises(InvalidInputError, match="reference must be a time index from 0 to 2, got 3"):
        estimate_drift(frames, reference=3)
    with pytest.raises(InvalidInputError, match="max_step must be None or an integer >= 1, got 0"):
        estimate_drift(frames, max_step=0)
    bad = frames.copy()
    bad[2, 5, 5] = np.nan
    with pytest.raises(InvalidInputError, match=r"NaN or infinite values \(time points \[2\]\)"):
        estimate_drift(bad)
    blank_reference = frames.copy()
    blank_reference[0] = 1.0
    with pytest.raises(InvalidInputError, match="reference frame 0 cannot be used.*frame [12] has"):
        estimate_drift(blank_reference)
    assert np.array_equal(blank_reference[0], np.ones((192, 192)))  # not modified


class CountingSource:
    """A `FrameSource` over an array that counts its reads and how many frames it gave are alive."""

    def __init__(self, frames):
        self._frames = frames
        self.n_frames = len(frames)
        self.reads = []
        self.most_alive = 0
        self._given = []

    def frame(self, t):
        self.reads.append(t)
        frame = np.array(self._frames[t])  # a new array each read, as a reader from disk gives
        self._given = [ref for ref in self._given if ref() is not None]
        self._given.append(weakref.ref(frame))
        self.most_alive = max(self.most_alive, len(self._given))
        return frame


def assert_same_estimate(a, b):
    for field in ("shift_px", "quality", "blank", "interpolated", "pairs", "pair_shift_px",
                  "pair_quality", "pair_used", "residual_px"):
        assert np.array_equal(getattr(a, field), getattr(b, field), equal_nan=True), field
    assert a.reason == b.reason and a.reference == b.reference


@pytest.mark.parametrize(
    ("reference", "max_step", "largest_step"), [(0, 8, 8), (9, 2, 2), (-1, 4, 4), (3, None, 16)]
)
def test_a_frame_source_gives_the_array_result_bit_for_bit_holding_few_frames(
    reference, max_step, largest_step
):
    path = random_walk(24, 0.3, seed=21)
    frames = make_frames(path, shape=(96, 96), seed=22)
    frames[13] = frames.mean()  # blank: flagged and interpolated on both paths
    source = CountingSource(frames)
    assert isinstance(source, FrameSource)
    from_source = estimate_drift(source, reference=reference, max_step=max_step)
    from_array = estimate_drift(frames, reference=reference, max_step=max_step)
    assert_same_estimate(from_source, from_array)
    assert from_source.blank[13] and from_source.interpolated.sum() == 1
    # Each frame read once; never more than the largest step + 2 frames alive (reference included).
    assert sorted(source.reads) == list(range(24))
    assert source.most_alive <= largest_step + 2
    assert source.most_alive < 24 or max_step is None


def test_a_frame_source_is_checked_frame_by_frame():
    frames = make_frames(np.zeros((6, 2)), shape=(64, 64))
    frames[4, 3, 3] = np.inf
    source = CountingSource(frames)
    with pytest.raises(InvalidInputError, match=r"NaN or infinite values \(time point 4\)"):
        estimate_drift(source, max_step=1)
    assert 5 not in source.reads  # stopped at the bad frame
    uneven = [frame[:, :60] if t == 2 else frame for t, frame in enumerate(frames[:4])]
    with pytest.raises(InvalidInputError, match=r"frame 2 has shape \(64, 60\).*it \(64, 64\)"):
        estimate_drift(CountingSource(uneven))


def test_stack_yx_image_weighs_the_planes_in_focus():
    # 40-plane defocus stack of the real retina: the y/x image must be
    # dominated by the planes near focus, not by the many blurred ones.
    from fractal_roi_tasks.registration.inputs import yx_image
    from fractal_roi_tasks.sample_data import load_source, shifted_field

    stack = shifted_field(
        load_source("retina"), (0.0, 0.0, 0.0), origin=(600, 600), shape=(96, 96), z_planes=40
    )
    rng = np.random.default_rng(0)
    noisy = (stack + rng.normal(0.0, 0.01, stack.shape)).astype(np.float32)
    weighted = yx_image(noisy)
    focus = stack[20]

    def corr(a, b):
        # of the fine detail (x differences), which carries the sub-pixel shift
        a, b = np.diff(a, axis=1), np.diff(b, axis=1)
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    assert corr(weighted, focus) > corr(noisy.mean(axis=0), focus) + 0.05


@pytest.mark.parametrize(
    ("displacement", "seed"),
    [((0.57, -0.84, 1.71), 1), ((0.1, 0.52, 1.94), 2), ((0.38, 2.95, -2.42), 5)],
)
def test_a_small_deep_defocus_stack_gets_the_right_whole_pixel(displacement, seed):
    # 40 planes of 128 x 128: the y/x image keeps little fine detail, and its
    # high frequencies are camera noise. Phase correlation over every
    # frequency put the coarse peak on noise (these came out 1.12, 0.36 and
    # 2.45 px wrong, flagged reliable); above the noise floor: 0.12, 0.09, 0.02.
    from fractal_roi_tasks.sample_data.timelapse import drifting_frames

    path = np.array([(0.0, 0.0, 0.0), displacement])
    reference, moving = drifting_frames(SOURCE, path, size=128, z_planes=40, seed=seed)
    estimate = estimate_shift(reference, moving)
    assert estimate.reliable
    error = np.hypot(*(np.array(estimate.shift[1:]) + path[1, 1:]))
    assert error < 0.3, (estimate.shift, displacement)
    assert abs(estimate.shift[0] + displacement[0]) < 0.25
