"""`estimate_drift`: the drift of every frame of a time-lapse, solved over a graph of frame pairs.

Steps:

1. Pairs (`fractal_roi_tasks.drift.pairs`): every frame against the
   reference frame and against the frames 1, 2, 4, ... time points later,
   up to ``max_step``.
2. Each pair is measured with
   `fractal_roi_tasks.registration.shift.estimate_shift` (sub-pixel, 2D or
   3D). Its quality ``q`` (normalised cross-correlation of the aligned
   frames) gives the weight ``q / (1 - q)``: the ratio of shared signal to
   what differs (noise, change), to which the inverse variance of a
   correlation estimate is proportional. A pair the estimator flags
   unreliable is not used.
3. Blank or out-of-focus frames: a frame none of whose pairs is reliable,
   or whose quality (the median quality of its pairs) is below
   ``min_quality_ratio`` times the median over the frames, is flagged
   ``blank``; its pairs are not used.
4. One weighted least-squares solve of all frames (`fractal_roi_tasks.drift.solve`),
   the reference held at 0, dropping pairs with large residuals.
5. Frames flagged blank, or that no used pair connects to the reference,
   get their drift by linear interpolation in time between the nearest
   good frames (the nearest good frame's drift before the first or after
   the last good frame), and are flagged ``interpolated``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from fractal_roi_tasks.drift.pairs import frame_pairs, time_steps
from fractal_roi_tasks.drift.solve import solve_path
from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration.shift import estimate_shift

logger = logging.getLogger(__name__)

MAX_PAIR_QUALITY = 0.9999
"""Qualities are capped here before weighting, so no pair gets an unbounded weight."""


@dataclass(frozen=True)
class DriftEstimate:
    """The drift of every frame of a time-lapse relative to the reference frame.

    Attributes:
        shift_px: (T, D) float64, D = 2 ``(dy, dx)`` for (T, Y, X) frames or
            3 ``(dz, dy, dx)`` for (T, Z, Y, X): the shift to apply to each
            frame to register it onto the reference frame, in pixels (z in
            planes), the sign of `estimate_shift`:
            ``scipy.ndimage.shift(frames[t], shift_px[t])`` approximates
            ``frames[reference]``. 0 for the reference frame.
        quality: (T,) float64 median quality of the pairs touching each
            frame, in [-1, 1].
        blank: (T,) bool: the frame was found blank or out of focus and not
            measured.
        interpolated: (T,) bool: the frame's drift was interpolated in time
            (every blank frame, and frames no used pair joined to the
            reference).
        reason: (T,) why each interpolated frame was, '' for the others.
        reference: the reference frame's index.
        pairs: (P, 2) int64 frame pairs ``(i, j)`` measured.
        pair_shift_px: (P, D) float64 measured shift registering frame ``j``
            onto frame ``i``.
        pair_quality: (P,) float64 quality of each pair's estimate.
        pair_used: (P,) bool: the pair took part in the final solve.
        residual_px: (P,) float64 ``|measured - solved|`` of each pair
            (Euclidean, pixels), NaN where a frame of the pair has no solved
            shift.
    """

    shift_px: np.ndarray
    quality: np.ndarray
    blank: np.ndarray
    interpolated: np.ndarray
    reason: tuple[str, ...]
    reference: int
    pairs: np.ndarray
    pair_shift_px: np.ndarray
    pair_quality: np.ndarray
    pair_used: np.ndarray
    residual_px: np.ndarray

    @property
    def displacement_px(self) -> np.ndarray:
        """(T, D) how far each frame's content has moved since the reference: ``-shift_px``."""
        return -self.shift_px


@runtime_checkable
class FrameSource(Protocol):
    """Frames of a time-lapse read one at a time, for `estimate_drift` (instead of an array).

    ``n_frames`` is the number of time points T; ``frame(t)`` returns frame
    ``t`` as a (Y, X) or (Z, Y, X) real array, every frame of the same
    shape. `estimate_drift` asks for each frame once and holds at most
    ``largest step + 2`` of them (the reference and the frames within the
    largest time step of the one being measured).
    """

    n_frames: int

    def frame(self, t: int) -> np.ndarray:
        """Frame ``t``, (Y, X) or (Z, Y, X)."""
        ...


def _check_frame(frame: object, t: int, shape: tuple[int, ...] | None) -> np.ndarray:
    """One frame of a `FrameSource`, checked as the array path checks the whole array."""
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3):
        raise InvalidInputError(
            f"frame {t} must be a (Y, X) or (Z, Y, X) array, got {frame.ndim} dimension(s) "
            f"with shape {frame.shape}."
        )
    if shape is not None and frame.shape != shape:
        raise InvalidInputError(
            f"frame {t} has shape {frame.shape}, the frames before it {shape}: every frame "
            "must have the same shape."
        )
    if not (np.issubdtype(frame.dtype, np.integer) or np.issubdtype(frame.dtype, np.floating)):
        raise InvalidInputError(f"frames must be real-valued, got dtype {frame.dtype} (frame {t}).")
    if np.issubdtype(frame.dtype, np.floating) and not np.isfinite(frame).all():
        raise InvalidInputError(f"frames contain NaN or infinite values (time point {t}).")
    return frame


class _FrameCache:
    """The frames a pair needs, read on demand, each once; older frames are let go."""

    def __init__(self, read: Callable[[int], np.ndarray], reference: int) -> None:
        self._read = read
        self._reference = reference
        self._frames: dict[int, np.ndarray] = {}
        self._shape: tuple[int, ...] | None = None
        self.peak = 0

    def get(self, t: int) -> np.ndarray:
        if t not in self._frames:
            frame = _check_frame(self._read(t), t, self._shape)
            self._shape = frame.shape
            self._frames[t] = frame
            self.peak = max(self.peak, len(self._frames))
        return self._frames[t]

    def release_before(self, t: int) -> None:
        """Let go of every frame before ``t`` except the reference."""
        for old in [k for k in self._frames if k < t and k != self._reference]:
            del self._frames[old]


def measurement_order(pairs: np.ndarray, reference: int) -> np.ndarray:
    """The order `estimate_drift` measures ``pairs`` in: by the frame that is not the reference.

    Each pair is keyed by its later frame, or by its other frame if it
    involves the reference; pairs are measured by increasing key. Every
    pair measured at key ``t`` then needs only the reference and frames
    ``t - largest step`` to ``t``, so frames can be read in time order,
    each once, and dropped once older than the largest step.

    >>> pairs = frame_pairs(5, reference=2, max_step=1)
    >>> pairs[measurement_order(pairs, 2)].tolist()
    [[0, 2], [0, 1], [1, 2], [2, 3], [2, 4], [3, 4]]
    """
    return np.lexsort((pairs[:, 0], _pair_keys(pairs, reference)))


def _pair_keys(pairs: np.ndarray, reference: int) -> np.ndarray:
    """Each pair's frame that is not the reference (its later frame if neither is)."""
    return np.where(
        pairs[:, 0] == reference,
        pairs[:, 1],
        np.where(pairs[:, 1] == reference, pairs[:, 0], pairs[:, 1]),
    )


def _frames(frames: object) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim not in (3, 4):
        raise InvalidInputError(
            "frames must be a (T, Y, X) or (T, Z, Y, X) array (time first), "
            f"got {array.ndim} dimension(s) with shape {array.shape}."
        )
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InvalidInputError(f"frames must be real-valued, got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating):
        # Frame by frame: no temporary the size of the whole time-lapse.
        bad = [t for t in range(array.shape[0]) if not np.isfinite(array[t]).all()]
    else:
        bad = []
    if bad:
        raise InvalidInputError(
            f"frames contain NaN or infinite values (time points {bad})."
        )
    return array


def _frame_quality(n_frames: int, pairs: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Median quality of the pairs touching each frame."""
    result = np.zeros(n_frames)
    for t in range(n_frames):
        touching = (pairs[:, 0] == t) | (pairs[:, 1] == t)
        result[t] = float(np.median(quality[touching]))
    return result


def _interpolate(shift: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Fill the frames that are not ``good`` linearly in time from the good ones."""
    times = np.arange(shift.shape[0])
    filled = shift.copy()
    for axis in range(shift.shape[1]):
        filled[~good, axis] = np.interp(times[~good], times[good], shift[good, axis])
    return filled


def estimate_drift(
    frames: np.ndarray | FrameSource,
    *,
    reference: int = 0,
    max_step: int | None = 8,
    max_shift_px: float | Sequence[float] | None = None,
    min_quality: float = 0.3,
    min_quality_ratio: float = 0.5,
    max_residual_px: float = 0.5,
    band_px: tuple[float, float] = (6.0, 30.0),
    upsample_factor: int = 1000,
) -> DriftEstimate:
    """Estimate the drift of every frame against the reference frame, without chaining errors.

    See the module docstring for the method: pairs against the reference
    and against neighbours at time steps 1, 2, 4, ... ``max_step``, each
    measured with `estimate_shift`, solved together by weighted least
    squares; blank frames interpolated. About ``2 + log2(max_step)`` pair
    measurements per frame. Pairs are measured in `measurement_order`,
    so that only the reference and the last ``largest step + 1`` frames
    are needed at any time.

    Args:
        frames: (T, Y, X) or (T, Z, Y, X) array of one channel, any real
            dtype, time first, or a `FrameSource` giving one (Y, X) or
            (Z, Y, X) frame at a time: each frame is then read once, in time
            order, and at most ``largest step + 2`` frames (the reference
            among them) are held at once. Both give the same result, bit for
            bit. Not modified.
        reference: index of the frame every shift is relative to.
        max_step: largest time step between neighbour pairs; None: up to
            ``T - 1`` (``T log2 T`` pairs).
        max_shift_px: largest shift between any two frames, in pixels (one
            number or one per axis ((z,) y, x)); None: half the frame.
        min_quality: a pair whose quality is below this is not used.
        min_quality_ratio: a frame whose quality is below this fraction of
            the median frame quality is flagged blank (out of focus).
        max_residual_px: a pair that disagrees with the solution by more
            than this many pixels is dropped.
        band_px: (finest, coarsest) period in pixels the estimator weighs.
        upsample_factor: each pair's shift is rounded to ``1 /
            upsample_factor`` pixels.

    Returns:
        A `DriftEstimate`.

    Raises:
        InvalidInputError: (a ValueError) for frames that are not (T, Y, X)
            or (T, Z, Y, X), not real or not finite, fewer than 2 frames, a
            reference outside the frames, a blank reference frame, or an
            invalid option.

    >>> from fractal_roi_tasks.sample_data import load_source, shifted_field
    >>> source = load_source("retina")
    >>> path = np.array([(0.0, 0.0), (0.3, -0.2), (0.7, -0.5), (1.2, -0.6), (1.4, -1.1)])
    >>> frames = np.stack(
    ...     [shifted_field(source, p, origin=(500, 500), shape=(128, 128)) for p in path]
    ... )
    >>> drift = estimate_drift(frames)
    >>> bool(np.abs(drift.displacement_px - path).max() < 0.01), drift.interpolated.any()
    (True, np.False_)
    """
    if isinstance(frames, FrameSource):
        n_frames = frames.n_frames
        if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer):
            raise InvalidInputError(
                f"a frame source's n_frames must be an integer, got {n_frames!r}."
            )
        read = frames.frame
    else:
        array = _frames(frames)
        n_frames = array.shape[0]
        read = array.__getitem__
    is_index = isinstance(reference, int | np.integer) and not isinstance(reference, bool)
    if is_index and -n_frames <= reference < 0:
        reference += n_frames  # counted from the end, as numpy does
    pairs = frame_pairs(n_frames, reference=reference, max_step=max_step)
    if not 0 < min_quality_ratio <= 1:
        raise InvalidInputError(f"min_quality_ratio must be in (0, 1], got {min_quality_ratio!r}.")
    steps = time_steps(n_frames, max_step)
    cache = _FrameCache(read, reference)
    dims = cache.get(reference).ndim
    measured = np.zeros((pairs.shape[0], dims))
    quality = np.zeros(pairs.shape[0])
    reliable = np.zeros(pairs.shape[0], dtype=bool)
    reasons = [""] * pairs.shape[0]
    order = measurement_order(pairs, reference)
    keys = _pair_keys(pairs, reference)
    for k in order:
        i, j = (int(v) for v in pairs[k])
        cache.release_before(int(keys[k]) - steps[-1])
        estimate = estimate_shift(
            cache.get(i),
            cache.get(j),
            upsample_factor=upsample_factor,
            max_shift_px=max_shift_px,
            min_quality=min_quality,
            band_px=band_px,
        )
        measured[k] = estimate.shift
        quality[k] = estimate.quality
        reliable[k] = estimate.reliable
        reasons[k] = estimate.reason
    cache.release_before(n_frames)

    frame_quality = _frame_quality(n_frames, pairs, quality)
    frame_reason = [""] * n_frames
    for t in range(n_frames):
        touching = np.flatnonzero((pairs[:, 0] == t) | (pairs[:, 1] == t))
        if not reliable[touching].any():
            frame_reason[t] = f"blank: no reliable pair ({reasons[touching[0]]})"
    measurable = np.array([not r for r in frame_reason])
    typical = float(np.median(frame_quality[measurable])) if measurable.any() else 0.0
    for t in np.flatnonzero(measurable & (frame_quality < min_quality_ratio * typical)):
        frame_reason[t] = (
            f"blank or out of focus: quality {frame_quality[t]:.2f} below "
            f"{min_quality_ratio:g} x the median frame quality {typical:.2f}"
        )
    blank = np.array([bool(r) for r in frame_reason])
    if blank[reference]:
        best = int(np.argmax(np.where(blank, -np.inf, frame_quality)))
        hint = f"; frame {best} has the highest quality" if not blank.all() else ""
        raise InvalidInputError(
            f"the reference frame {reference} cannot be used ({frame_reason[reference]}): "
            f"choose another reference{hint}."
        )

    good_pair = reliable & ~blank[pairs[:, 0]] & ~blank[pairs[:, 1]]
    capped = np.minimum(quality, MAX_PAIR_QUALITY)
    weight = np.where(good_pair, capped / (1.0 - capped), 0.0)
    solution = solve_path(
        n_frames, pairs, measured, weight, reference=reference, max_residual_px=max_residual_px
    )
    for t in np.flatnonzero(~blank & ~solution.connected):
        frame_reason[t] = "no used pair joins it to the reference"
    good = ~blank & solution.connected
    shift = _interpolate(solution.shift_px, good)
    logger.debug(
        "estimate_drift: %d frames, %d of %d pairs used (%d dropped as outliers), "
        "%d blank, %d interpolated",
        n_frames,
        int(solution.used.sum()),
        pairs.shape[0],
        int(solution.rejected.sum()),
        int(blank.sum()),
        int((~good).sum()),
    )
    return DriftEstimate(
        shift_px=shift,
        quality=frame_quality,
        blank=blank,
        interpolated=~good,
        reason=tuple(frame_reason),
        reference=int(reference),
        pairs=pairs,
        pair_shift_px=measured,
        pair_quality=quality,
        pair_used=solution.used,
        residual_px=solution.residual_px,
    )
