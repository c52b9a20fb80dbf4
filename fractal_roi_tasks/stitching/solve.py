"""Global tile positions from the offsets measured between overlapping tiles.

The second half of tile placement (`fractal_roi_tasks.stitching.pairwise`
measures the offsets). `solve_positions` finds the positions that agree best
with every accepted offset, drops the offsets that disagree with the rest,
and keeps tiles that no trusted offset reaches at their prior position;
`place_tiles` runs the whole placement on in-memory tiles.

Method: the unknowns are the corrections ``c = position - prior``; each
accepted link ``(i, j)`` with measured offset ``m`` and weight ``w`` asks
``c_j - c_i = m - (prior_j - prior_i)`` with weight ``w``. The weighted
least-squares solution solves the graph Laplacian system ``L c = b`` (sparse,
the same matrix for y and x), in each connected component of the graph of
accepted links with one tile held fixed, and then the component is moved so
that its mean correction is 0 (it keeps the mean of its prior positions: the
stage is right on average). A sparse direct solve (SuperLU) takes
milliseconds for thousands of tiles.

Outliers: after each solve, the accepted link whose measured offset differs
most from the solved one (its residual) is rejected while that residual
exceeds ``max_residual_px``, and the positions are solved again. A wrong
link in several cycles of the grid shows the largest residual because every
other path between its tiles disagrees with it. Two limits: the links of a
single cycle (e.g. around a corner tile of a grid) share its misfit equally,
so the cycle says that one of them is wrong but not which; and a link that
is the only path between two parts (a bridge) has no residual and cannot be
checked.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.stitching.pairwise import DEFAULT_LINK_OPTIONS, Link, LinkOptions, measure_links

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Solved tile positions and what they rest on.

    Attributes:
        positions_px: (N, 2) float64 solved (y, x) position of each tile's
            top-left pixel, in pixels, in the frame of the prior positions.
        correction_px: (N, 2) float64 ``positions_px - prior``.
        fell_back: (N,) bool: no accepted link connects this tile to another,
            so it sits at its prior position.
        links: the links, in the input order, after outlier rejection
            (``accepted``, ``weight`` and ``reason`` updated).
        residual_px: (len(links),) float64 ``|measured offset - solved
            offset|`` of each link (rejected ones included), in pixels.
        component: (N,) int64 index of the group of tiles joined by accepted
            links that each tile belongs to (a fell-back tile is a group of
            its own); each group keeps the mean of its prior positions.
    """

    positions_px: np.ndarray
    correction_px: np.ndarray
    fell_back: np.ndarray
    links: tuple[Link, ...]
    residual_px: np.ndarray
    component: np.ndarray

    @property
    def n_accepted(self) -> int:
        """Number of links the positions rest on."""
        return sum(link.accepted for link in self.links)


def _prior(prior_px: object) -> np.ndarray:
    prior = np.asarray(prior_px, dtype=np.float64)
    if prior.ndim != 2 or prior.shape[1] != 2:
        raise InvalidInputError(
            f"prior_px must be an (N, 2) array of (y, x) tile positions in pixels, got shape {prior.shape}."
        )
    if not np.isfinite(prior).all():
        raise InvalidInputError("prior_px contains NaN or infinite positions.")
    return prior


def _link_arrays(
    links: Sequence[Link], count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """first, second (L,) tile indices, measured offsets (L, 2), weights (L,)."""
    first = np.array([link.first for link in links], dtype=np.int64)
    second = np.array([link.second for link in links], dtype=np.int64)
    measured = np.array([link.offset_px for link in links], dtype=np.float64).reshape(-1, 2)
    weight = np.array([link.weight for link in links], dtype=np.float64)
    if first.size:
        bad = (first < 0) | (first >= count) | (second < 0) | (second >= count) | (first == second)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(
                f"link {k} joins tiles {first[k]} and {second[k]}, but there are {count} tiles "
                f"(indices 0 to {count - 1}) and a link must join two different tiles."
            )
    return first, second, measured, weight


def _solve(
    count: int,
    first: np.ndarray,
    second: np.ndarray,
    weight: np.ndarray,
    target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares corrections (N, 2) and component labels (N,).

    ``target[k]`` is the wanted ``c[second[k]] - c[first[k]]``, ``weight[k]``
    its weight. The normal equations are the weighted graph Laplacian, the
    same for y and x; in each component one tile is held fixed, then the
    component's mean correction is removed.
    """
    from scipy import sparse
    from scipy.sparse import csgraph
    from scipy.sparse.linalg import splu

    adjacency = sparse.coo_matrix(
        (np.ones(first.size), (first, second)), shape=(count, count)
    ).tocsr()
    n_components, component = csgraph.connected_components(adjacency, directed=False)
    correction = np.zeros((count, 2))
    if first.size == 0:
        return correction, component.astype(np.int64)
    rows = np.concatenate([first, second, first, second])
    cols = np.concatenate([first, second, second, first])
    values = np.concatenate([weight, weight, -weight, -weight])
    laplacian = sparse.coo_matrix((values, (rows, cols)), shape=(count, count)).tocsc()
    rhs = np.zeros((count, 2))
    np.add.at(rhs, second, weight[:, None] * target)
    np.add.at(rhs, first, -weight[:, None] * target)
    # Hold the first tile of every component fixed (singletons: their only tile).
    _, anchors = np.unique(component, return_index=True)
    free = np.ones(count, dtype=bool)
    free[anchors] = False
    if free.any():
        index = np.flatnonzero(free)
        reduced = laplacian[index][:, index].tocsc()
        correction[index] = splu(reduced).solve(rhs[index])
    sizes = np.bincount(component, minlength=n_components)
    for axis in range(2):
        means = np.bincount(component, weights=correction[:, axis], minlength=n_components) / sizes
        correction[:, axis] -= means[component]
    return correction, component.astype(np.int64)


def solve_positions(
    prior_px: np.ndarray,
    links: Sequence[Link],
    *,
    max_residual_px: float = 1.5,
    max_rejections: int | None = None,
) -> Placement:
    """Global tile positions from pairwise offsets, by weighted least squares.

    See the module docstring for the method. Only accepted links with a
    positive weight are used; outliers among them are rejected one at a
    time (the largest residual first) while their residual exceeds
    ``max_residual_px``.

    Args:
        prior_px: (N, 2) float (y, x) prior position of each tile's top-left
            pixel, in pixels (e.g. from the stage).
        links: measured offsets (`Link`), e.g. from `measure_links`; tile
            indices refer to the rows of ``prior_px``.
        max_residual_px: an accepted link whose measured offset differs from
            the solved one by more than this (Euclidean, pixels) is rejected.
        max_rejections: reject at most this many links; None: no limit.

    Returns:
        A `Placement`.

    Raises:
        InvalidInputError: (a ValueError) for positions of the wrong shape,
            a link to a tile that does not exist, or an invalid option.

    >>> prior = np.array([[0.0, 0.0], [0.0, 90.0], [0.0, 180.0]])
    >>> def link(i, j, dx):
    ...     return Link(i, j, (0.0, dx), (0.0, 90.0), 0.9, 0.9, True, "")
    >>> placement = solve_positions(prior, [link(0, 1, 91.0), link(1, 2, 91.0)])
    >>> placement.positions_px[:, 1].round(2).tolist(), placement.fell_back.tolist()
    ([-1.0, 90.0, 181.0], [False, False, False])
    """
    prior = _prior(prior_px)
    count = prior.shape[0]
    links = tuple(links)
    try:
        threshold = float(max_residual_px)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"max_residual_px must be a number, got {max_residual_px!r}."
        ) from err
    if not threshold > 0 or math.isnan(threshold):
        raise InvalidInputError(f"max_residual_px must be > 0 (pixels), got {max_residual_px!r}.")
    if max_rejections is not None and (
        isinstance(max_rejections, bool)
        or not isinstance(max_rejections, int | np.integer)
        or max_rejections < 0
    ):
        raise InvalidInputError(
            f"max_rejections must be None or an integer >= 0, got {max_rejections!r}."
        )
    first, second, measured, weight = _link_arrays(links, count)
    active = np.array([link.accepted for link in links], dtype=bool) & (weight > 0)
    active &= np.isfinite(measured).all(axis=1) & np.isfinite(weight)
    prior_offset = prior[second] - prior[first] if first.size else np.zeros((0, 2))
    reasons: dict[int, str] = {}
    while True:
        use = np.flatnonzero(active)
        correction, component = _solve(
            count, first[use], second[use], weight[use], measured[use] - prior_offset[use]
        )
        positions = prior + correction
        solved = positions[second] - positions[first] if first.size else np.zeros((0, 2))
        residual = np.linalg.norm(measured - solved, axis=1) if first.size else np.zeros(0)
        if use.size == 0 or (max_rejections is not None and len(reasons) >= max_rejections):
            break
        worst = int(use[np.argmax(residual[use])])
        if not residual[worst] > threshold:
            break
        active[worst] = False
        reasons[worst] = (
            f"disagrees with the other links by {residual[worst]:.1f} px "
            f"(more than max_residual_px {threshold:g})"
        )
        logger.debug("solve: rejected link %d-%d: %s", first[worst], second[worst], reasons[worst])
    updated = tuple(
        dataclasses.replace(link, accepted=False, weight=0.0, reason=reasons[k])
        if k in reasons
        else link
        for k, link in enumerate(links)
    )
    degree = np.bincount(np.concatenate([first[active], second[active]]), minlength=count)
    fell_back = degree == 0
    logger.debug(
        "solve: %d tiles, %d of %d links used, %d rejected as outliers, %d tiles at their prior",
        count,
        int(active.sum()),
        len(links),
        len(reasons),
        int(fell_back.sum()),
    )
    return Placement(
        positions_px=positions,
        correction_px=correction,
        fell_back=fell_back,
        links=updated,
        residual_px=residual,
        component=component,
    )


def place_tiles(
    tiles: Sequence[np.ndarray],
    prior_px: np.ndarray,
    *,
    max_shift_px: float,
    options: LinkOptions = DEFAULT_LINK_OPTIONS,
    max_residual_px: float = 1.5,
) -> Placement:
    """Place in-memory tiles: find overlapping pairs, measure them, solve the positions.

    `measure_links` followed by `solve_positions`.

    Args:
        tiles: N 2D (Y, X) arrays, any real dtype (project 3D tiles over z
            first). Not modified.
        prior_px: (N, 2) float (y, x) prior position of each tile's top-left
            pixel in a common mosaic frame (e.g. from the stage), in pixels.
        max_shift_px: largest expected error of the prior offset of two
            neighbouring tiles, per axis, in pixels.
        options: which pairs are linked and which measured offsets are used
            (`fractal_roi_tasks.stitching.pairwise.LinkOptions`).
        max_residual_px: links that disagree with the others by more than
            this are dropped.

    Returns:
        A `Placement` in the frame of ``prior_px``.

    Raises:
        InvalidInputError: (a ValueError) for tiles that are not 2D, a count
            of tiles that differs from that of positions, or an invalid option.

    >>> from fractal_roi_tasks.sample_data import load_source, tile_grid
    >>> truth = tile_grid(load_source("retina")[300:900, 300:900], grid=(2, 3), tile_shape=(96, 96))
    >>> placement = place_tiles(truth.tiles, truth.stage_px, max_shift_px=10)
    >>> error = placement.positions_px - truth.positions_px
    >>> error -= error.mean(axis=0)  # the truth's frame differs by a constant
    >>> bool(np.abs(error).max() < 0.1), bool(placement.fell_back.any())
    (True, False)
    """
    links = measure_links(tiles, prior_px, max_shift_px=max_shift_px, options=options)
    return solve_positions(prior_px, links, max_residual_px=max_residual_px)
