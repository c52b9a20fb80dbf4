"""The sub-pixel refinement loop: move the window until it agrees with the estimate.

A sub-pixel estimate is measured on two windows, one of which is cut at the
whole-pixel part of a *placement* and tapered at its sub-pixel rest (see
`fractal_roi_tasks.translation.spectra.windowed_spectrum`), so both hold the
same content only when the placement equals the displacement. A window
misplaced by ``m`` px pulls the estimate by ``k * m`` towards it: ``k`` is
~0.001 on nuclei but reaches ~0.5 where a strong edge (the black rim of a
fundus image, a plate border, a thin overlap) crosses the taper. The
estimate is therefore the fixed point of ``g(w) = estimate(w) - w``, found
by Broyden's method (plain iteration ``w <- estimate`` first, then the pull
learnt from the rounds): two rounds on nuclei, four or five for large ``k``.

`follow_window` runs that loop around a caller's measurement, which crops,
tapers and correlates (and may keep whatever it needs for its quality);
`RefinementRule` holds the stopping and safety rules each caller measured.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

Payload = TypeVar("Payload")


@dataclass(frozen=True)
class RefinementRule:
    """How `follow_window` iterates and when it stops.

    Attributes:
        max_rounds: measurements at most.
        tolerance_px: stop once the estimate is this close to the placement
            it was measured at (per axis, px).
        restart_step_px: a secant step longer than this (per axis) means the
            learnt pull is wrong: restart from plain iteration.
        max_step_px: the placement moves by at most this per round (px).
        max_drift_px: the placement stays within this of the first estimate
            (per axis): with noise, the estimate is a rough function of the
            placement and the secant steps can run away. inf: no limit.
        stop_on_predicted_change: also stop once the next round is predicted
            (by the learnt pull) to move the estimate by less than
            ``tolerance_px``.
        stop_when_still: also stop once the next placement equals this one
            (``np.allclose`` with ``atol=1e-6``, so relative 1e-5 of the
            placement).
    """

    max_rounds: int
    tolerance_px: float
    restart_step_px: float = 1.0
    max_step_px: float = 0.5
    max_drift_px: float = math.inf
    stop_on_predicted_change: bool = True
    stop_when_still: bool = False


@dataclass(frozen=True)
class FollowedWindow(Generic[Payload]):
    """Result of `follow_window`: the last measurement and where it was made.

    Attributes:
        displacement: (dy, dx) estimate of the last round, pixels.
        placement: (dy, dx) placement of the window it was measured at.
        payload: what the measurement returned with it in that round.
        rounds: number of measurements made.
    """

    displacement: np.ndarray
    placement: np.ndarray
    payload: Payload
    rounds: int


def solve_2x2(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray | None:
    """``matrix^-1 vector`` for a 2 x 2 matrix, or None when singular or not finite.

    >>> solve_2x2(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([1.0, 1.0])).tolist()
    [0.5, 0.25]
    """
    (a, b), (c, d) = matrix.tolist()
    determinant = a * d - b * c
    if determinant == 0 or not math.isfinite(determinant):
        return None
    y, x = vector.tolist()
    out = np.array([d * y - b * x, a * x - c * y]) / determinant
    return out if np.all(np.isfinite(out)) else None


def follow_window(
    measure: Callable[[tuple[int, int], np.ndarray], tuple[np.ndarray, Payload] | None],
    start: Sequence[float],
    rule: RefinementRule,
) -> FollowedWindow[Payload] | None:
    """The fixed point where the window's placement and the estimate agree.

    Args:
        measure: ``measure(integer, residual)`` measures with the window cut
            at the whole pixels ``integer`` and tapered at the sub-pixel
            ``residual`` (placement ``integer + residual``) and returns the
            (dy, dx) displacement (a float array) and a payload, or None to
            give up.
        start: (dy, dx) first placement, pixels.
        rule: the `RefinementRule`.

    Returns:
        A `FollowedWindow` of the last round, or None when ``measure`` gave up.

    >>> # A taper that pulls the estimate by half the misplacement: truth 0.3.
    >>> pull = lambda integer, residual: (0.3 + 0.5 * (integer + residual - 0.3), None)
    >>> fit = follow_window(pull, (0.0, 0.0), RefinementRule(max_rounds=6, tolerance_px=1e-3))
    >>> [round(float(v), 3) for v in fit.displacement], fit.rounds
    ([0.3, 0.3], 3)
    """
    integer = tuple(int(v) for v in np.round(start))
    residual = np.array(start, dtype=np.float64) - np.array(integer)
    identity = np.eye(2)
    jacobian = -identity
    previous: tuple[np.ndarray, np.ndarray] | None = None  # (placement, gap)
    anchor: np.ndarray | None = None
    debug = logger.isEnabledFor(logging.DEBUG)
    last = None
    for round_index in range(rule.max_rounds):
        outcome = measure(integer, residual)
        if outcome is None:
            return None
        displacement, payload = outcome
        placement = np.array(integer) + residual
        last = (displacement, placement, payload, round_index + 1)
        gap = displacement - placement
        if float(np.abs(gap).max()) < rule.tolerance_px:
            break
        learnt = previous is not None
        if learnt:
            step_w, step_g = placement - previous[0], gap - previous[1]
            norm = float(step_w @ step_w)
            if norm > 1e-12:
                jacobian = jacobian + np.outer(step_g - jacobian @ step_w, step_w) / norm
        previous = (placement, gap)
        step = solve_2x2(jacobian, -gap)
        if step is None or float(np.abs(step).max()) > rule.restart_step_px:
            jacobian, step, learnt = -identity, gap, False  # lost: plain iteration again
        target = placement + np.clip(step, -rule.max_step_px, rule.max_step_px)
        if anchor is None:
            anchor = displacement
        if rule.max_drift_px < math.inf:
            target = np.clip(target, anchor - rule.max_drift_px, anchor + rule.max_drift_px)
        if debug:
            logger.debug(
                "round %d: window at %s, estimate %s, next %s",
                round_index,
                np.round(placement, 4),
                np.round(displacement, 4),
                np.round(target, 4),
            )
        if rule.stop_on_predicted_change:
            # d(estimate)/d(placement) = jacobian + I: what one more round would change.
            change = (jacobian + identity) @ (target - placement) if learnt else gap
            if float(np.abs(change).max()) < rule.tolerance_px:
                break
        if rule.stop_when_still and np.allclose(target, placement, atol=1e-6):
            break
        integer = tuple(int(v) for v in np.round(target))
        residual = target - np.array(integer)
    if last is None:
        return None
    displacement, placement, payload, rounds = last
    return FollowedWindow(np.asarray(displacement, dtype=np.float64), placement, payload, rounds)
