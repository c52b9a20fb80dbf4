"""Tile placement on numpy arrays (no files): overlapping pairs, pairwise offsets, global solve.

Ground truth: grids of tiles cut by `tile_grid` from the bundled real images
at known sub-pixel positions, with a gaussian stage error (the prior),
vignetting and camera noise. Accuracy is the RMS over grid neighbours of the
error of the solved relative position (a global offset does not count).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import ndimage

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data import load_source, tile_grid
from fractal_roi_tasks.stitching.pairwise import (
    Link,
    LinkOptions,
    LinkWindow,
    link_windows,
    measure_link,
    measure_links,
    search_radius,
)
from fractal_roi_tasks.stitching.solve import Placement, place_tiles, solve_positions

RETINA_INSIDE = (slice(250, 1150), slice(250, 1150))
"""The retina image within its black circular border."""


def retina() -> np.ndarray:
    return load_source("retina")[RETINA_INSIDE]


def neighbour_pairs(grid: tuple[int, int]) -> np.ndarray:
    index = np.arange(grid[0] * grid[1]).reshape(grid)
    across = np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1)
    down = np.stack([index[:-1].ravel(), index[1:].ravel()], axis=1)
    return np.concatenate([across, down])


def neighbour_errors(grid, positions, truth) -> np.ndarray:
    """|solved - true relative position| of every pair of grid neighbours, px."""
    pairs = neighbour_pairs(grid)
    solved = positions[pairs[:, 1]] - positions[pairs[:, 0]]
    true = truth[pairs[:, 1]] - truth[pairs[:, 0]]
    return np.linalg.norm(solved - true, axis=1)


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


def true_offset(grid, link) -> np.ndarray:
    return grid.positions_px[link.second] - grid.positions_px[link.first]


# --------------------------------------------------------------------------
# link_windows


def test_link_windows_boxes_hold_the_overlap_plus_the_search_margin():
    windows = link_windows([[0.0, 0.0], [2.5, 100.0]], [128, 120], max_shift_px=4)
    (window,) = windows
    margin = search_radius(4) + 1
    assert (window.first, window.second) == (0, 1)
    assert window.prior_offset_px == (2.5, 100.0)
    # Prior overlap: rows 2.5..128 and columns 100..120 of the first tile.
    assert window.first_box == (slice(0, 128), slice(100 - margin, 120))
    # In the second tile: rows -2.5..125.5 (clipped) and columns 0..20 (+ margin).
    assert window.second_box == (slice(0, 128), slice(0, 20 + margin))
    assert window.first_shape == (128, 20 + margin) and window.second_shape == (128, 20 + margin)


def test_link_windows_links_side_neighbours_and_corners_only_on_request():
    grid = tile_grid(retina(), grid=(3, 4), tile_shape=(64, 64), overlap=0.2, jitter_px=2.0)
    sides = link_windows(grid.stage_px, (64, 64), max_shift_px=6)
    pairs = {(w.first, w.second) for w in sides}
    assert pairs == {tuple(p) for p in np.sort(neighbour_pairs((3, 4)), axis=1)}
    with_corners = link_windows(grid.stage_px, (64, 64), max_shift_px=6, include_corners=True)
    assert len(with_corners) == len(sides) + 2 * 2 * 3  # two diagonals per 2 x 2 block
    for window in with_corners:
        assert window.first < window.second
        for box, shape in ((window.first_box, (64, 64)), (window.second_box, (64, 64))):
            assert all(0 <= s.start < s.stop <= n for s, n in zip(box, shape))


def test_link_windows_scales_to_thousands_of_tiles():
    rows, columns, step = 60, 50, 80.0
    prior = np.array([(r * step, c * step) for r in range(rows) for c in range(columns)])
    prior += np.random.default_rng(0).normal(0, 2, prior.shape)
    windows = link_windows(prior, (100, 100), max_shift_px=6)
    assert len(windows) == rows * (columns - 1) + (rows - 1) * columns
    assert windows == sorted(windows, key=lambda w: (w.first, w.second))


def test_link_windows_finds_nothing_between_distant_tiles():
    assert link_windows([[0.0, 0.0], [0.0, 200.0], [300.0, 0.0]], (100, 100), max_shift_px=5) == []
    assert link_windows(np.zeros((1, 2)), (100, 100), max_shift_px=5) == []
    # Touching boxes (no overlap) and overlaps thinner than min_overlap_px are not pairs either.
    assert link_windows([[0.0, 0.0], [0.0, 100.0]], (100, 100), max_shift_px=5) == []
    assert link_windows([[0.0, 0.0], [0.0, 97.0]], (100, 100), max_shift_px=5, min_overlap_px=4) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prior_px": np.zeros((3,)), "tile_shapes": (10, 10)}, r"prior_px must be an \(N, 2\)"),
        ({"prior_px": [[0.0, np.nan]], "tile_shapes": (10, 10)}, "NaN or infinite"),
        ({"prior_px": np.zeros((2, 2)), "tile_shapes": np.ones((3, 2), int)}, "one per tile"),
        ({"prior_px": np.zeros((2, 2)), "tile_shapes": (10, 10), "max_shift_px": -1}, "max_shift_px"),
    ],
)
def test_link_windows_rejects_bad_input(kwargs, match):
    kwargs.setdefault("max_shift_px", 5)
    with pytest.raises(InvalidInputError, match=match):
        link_windows(**kwargs)


# --------------------------------------------------------------------------
# measure_link


def shifted_pair(offset, *, first_shape=(128, 140), width=140, noise=0.0, seed=0):
    """Two tiles of the retina, the second at ``offset`` (y, x) from the first."""
    image = retina()[200:520, 200:700].astype(np.float64)
    fraction = np.asarray(offset) - np.floor(offset)
    moved = ndimage.shift(image, -fraction, order=3, mode="mirror")
    whole = np.floor(offset).astype(int)
    first = image[20 : 20 + first_shape[0], 20 : 20 + first_shape[1]]
    second = moved[20 + whole[0] : 20 + whole[0] + first_shape[0], 20 + whole[1] : 20 + whole[1] + width]
    rng = np.random.default_rng(seed)
    spread = noise * float(image.max() - image.min())
    return first + rng.normal(0, spread, first.shape), second + rng.normal(0, spread, second.shape)


@pytest.mark.parametrize("offset", [(0.0, 110.0), (2.3, 113.6), (-3.7, 106.45), (4.5, 108.2)])
def test_measure_link_is_sub_pixel_accurate(offset):
    first, second = shifted_pair(offset)
    (window,) = link_windows([[0.0, 0.0], [0.0, 110.0]], [first.shape, second.shape], max_shift_px=6)
    link = measure_link(window, first[window.first_box], second[window.second_box], max_shift_px=6)
    assert link.accepted, link.reason
    assert link.reason == "" and link.weight == link.quality > 0.9
    assert np.abs(np.array(link.offset_px) - offset).max() < 0.03
    assert link.prior_offset_px == (0.0, 110.0)
    assert 0 < link.uncertainty_px < 0.1


def test_measure_link_with_noise_and_a_thin_overlap():
    # 18 px of overlap, noise at 3% of the range: still well below a pixel.
    errors = []
    for seed, offset in enumerate([(1.3, 121.7), (-2.2, 122.4), (0.6, 120.9)]):
        first, second = shifted_pair(offset, noise=0.03, seed=seed)
        (window,) = link_windows([[0.0, 0.0], [0.0, 122.0]], [first.shape, second.shape], max_shift_px=5)
        link = measure_link(window, first[window.first_box], second[window.second_box], max_shift_px=5)
        assert link.accepted, link.reason
        errors.append(np.abs(np.array(link.offset_px) - offset).max())
    assert max(errors) < 0.4


def test_measure_link_rejects_a_shift_beyond_max_shift():
    first, second = shifted_pair((0.0, 117.0))
    (window,) = link_windows([[0.0, 0.0], [0.0, 110.0]], [first.shape, second.shape], max_shift_px=4)
    link = measure_link(window, first[window.first_box], second[window.second_box], max_shift_px=4)
    assert not link.accepted and link.weight == 0.0
    assert "max_shift_px 4" in link.reason


def test_measure_link_rejects_flat_and_unrelated_windows():
    first, second = shifted_pair((1.0, 111.0))
    (window,) = link_windows([[0.0, 0.0], [0.0, 110.0]], [first.shape, second.shape], max_shift_px=6)
    flat = np.full(window.second_shape, 7.0)
    link = measure_link(window, first[window.first_box], flat, max_shift_px=6)
    assert not link.accepted and link.reason == "no contrast in the overlap of tile 1"
    assert link.offset_px == link.prior_offset_px
    noise = np.random.default_rng(1).normal(0.5, 0.1, window.second_shape)
    link = measure_link(window, first[window.first_box], noise, max_shift_px=6)
    assert not link.accepted and link.weight == 0.0 and link.reason
    # Unrelated content: both tests that reject a link fail, not one by chance.
    assert link.quality < 0.2 and link.uncertainty_px > 0.3


def test_measure_link_names_what_is_wrong_with_its_input():
    window = LinkWindow(0, 1, (slice(0, 40), slice(20, 60)), (slice(0, 40), slice(0, 40)), (0.0, 20.0))
    good = np.ones((40, 40))
    with pytest.raises(InvalidInputError, match=r"second_patch has shape \(40, 30\), but its window is 40 x 40"):
        measure_link(window, good, np.ones((40, 30)), max_shift_px=3)
    with pytest.raises(InvalidInputError, match="project 3D tiles over z first"):
        measure_link(window, np.ones((2, 40, 40)), good, max_shift_px=3)
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        measure_link(window, np.full((40, 40), np.nan), good, max_shift_px=3)
    with pytest.raises(InvalidInputError, match="band_px"):
        measure_link(window, good, good, max_shift_px=3, band_px=(10, 5))
    with pytest.raises(InvalidInputError, match="min_quality"):
        measure_link(window, good, good, max_shift_px=3, min_quality=2)
    with pytest.raises(InvalidInputError, match="tile 1 has shape"):
        measure_links([good, np.ones((2, 40, 40))], [[0.0, 0.0], [0.0, 20.0]], max_shift_px=3)
    with pytest.raises(InvalidInputError, match="got 1 tiles but 2 prior positions"):
        measure_links([good], [[0.0, 0.0], [0.0, 20.0]], max_shift_px=3)


# --------------------------------------------------------------------------
# Placement on grids (the targets)


def placed(source, *, max_shift_px, **kwargs):
    grid = tile_grid(source, **kwargs)
    placement = place_tiles(grid.tiles, grid.stage_px, max_shift_px=max_shift_px)
    return grid, placement


def test_dense_texture_with_stage_error_vignetting_and_noise():
    grid, placement = placed(
        retina(), grid=(3, 3), tile_shape=(192, 192), overlap=0.15, jitter_px=3.0,
        noise=0.02, vignetting=0.3, max_shift_px=12,
    )
    stage = neighbour_errors(grid.grid, grid.stage_px, grid.positions_px)
    errors = neighbour_errors(grid.grid, placement.positions_px, grid.positions_px)
    assert rms(stage) > 3  # several pixels of stage error to correct
    assert rms(errors) <= 0.35 and errors.max() < 0.6
    assert not placement.fell_back.any() and placement.n_accepted == 12
    # The gauge: the mean correction is 0, the frame is the prior's.
    assert np.allclose(placement.correction_px.mean(axis=0), 0.0, atol=1e-9)
    assert np.allclose(placement.positions_px, grid.stage_px + placement.correction_px)


# Grids the placement must get right. Per case: the image; tile_grid's grid,
# (square) tile size, overlap, stage error, noise, vignetting and magnification;
# place_tiles' max_shift_px; the largest RMS and (where given) 95th percentile
# of the neighbour errors, px.
GRID_TARGETS = {
    "sparse fluorescence-like": ("hubble_deep_field", (3, 3), 160, 0.15, 3.0, 0.02, 0.3, 1, 12, 0.35, None),
    "five percent overlap": ("retina", (2, 3), 256, 0.05, 2.0, 0.02, 0.3, 1, 8, 1.0, None),
    "8 x 8 magnified low texture": ("cell", (8, 8), 128, 0.15, 2.0, 0.005, 0.3, 2, 8, 1.0, None),
    "hundreds of small tiles": ("retina", (16, 16), 96, 0.15, 2.0, 0.01, 0.2, 1, 8, 0.35, 1.0),
}


@pytest.mark.parametrize("case", GRID_TARGETS.values(), ids=GRID_TARGETS.keys())
def test_placement_corrects_the_stage_on_a_grid(case):
    source, shape, size, overlap, jitter, noise, vignetting, magnify, max_shift, max_rms, max_p95 = case
    image = retina() if source == "retina" else load_source(source)
    grid, placement = placed(
        image, grid=shape, tile_shape=(size, size), overlap=overlap, jitter_px=jitter,
        noise=noise, vignetting=vignetting, magnify=magnify, max_shift_px=max_shift,
    )
    stage = neighbour_errors(grid.grid, grid.stage_px, grid.positions_px)
    errors = neighbour_errors(grid.grid, placement.positions_px, grid.positions_px)
    assert rms(errors) <= max_rms < rms(stage)
    if max_p95 is not None:
        assert np.percentile(errors, 95) < max_p95
    assert len(placement.links) == len(neighbour_pairs(grid.grid))  # every side neighbour
    assert not placement.fell_back.any()


# --------------------------------------------------------------------------
# What must not be trusted


@pytest.mark.parametrize(("source", "seed"), [("retina", 0), ("hubble_deep_field", 1), ("cardiomyocyte", 2)])
def test_a_tile_of_pure_noise_falls_back_to_its_prior(source, seed):
    image = retina() if source == "retina" else load_source(source)
    grid = tile_grid(image, grid=(3, 3), tile_shape=(128, 128), jitter_px=2.0, noise=0.02, vignetting=0.3, seed=seed)
    tiles = grid.tiles.copy()
    tiles[4] = np.random.default_rng(seed).normal(tiles.mean(), tiles.std(), tiles[4].shape)
    placement = place_tiles(tiles, grid.stage_px, max_shift_px=8)
    centre_links = [link for link in placement.links if 4 in (link.first, link.second)]
    assert len(centre_links) == 4
    assert all(not link.accepted and link.weight == 0.0 and link.reason for link in centre_links)
    assert placement.fell_back.tolist() == [False] * 4 + [True] + [False] * 4
    assert placement.correction_px[4].tolist() == [0.0, 0.0]
    assert placement.component[4] not in np.delete(placement.component, 4)
    others = [i for i in range(9) if i != 4]
    assert len(set(placement.component[others])) == 1
    errors = neighbour_errors(grid.grid, placement.positions_px, grid.positions_px)
    ok = [k for k, (a, b) in enumerate(neighbour_pairs(grid.grid)) if 4 not in (a, b)]
    assert rms(errors[ok]) < 0.35


def test_link_options_reach_the_pairs_and_the_verdicts():
    grid = tile_grid(retina(), grid=(2, 2), tile_shape=(128, 128), jitter_px=2.0, noise=0.01, vignetting=0.2, seed=3)
    default = measure_links(grid.tiles, grid.stage_px, max_shift_px=10)
    assert [(k.first, k.second) for k in default] == [(0, 1), (0, 2), (1, 3), (2, 3)]
    assert all(k.accepted for k in default)
    corners = measure_links(grid.tiles, grid.stage_px, max_shift_px=10, options=LinkOptions(include_corners=True))
    assert [(k.first, k.second) for k in corners] == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    strict = LinkOptions(min_quality=0.999)
    placement = place_tiles(grid.tiles, grid.stage_px, max_shift_px=10, options=strict)
    assert placement.n_accepted == 0 and placement.fell_back.all()
    assert all(k.reason.startswith("quality ") and k.reason.endswith("below 0.999") for k in placement.links)
    np.testing.assert_array_equal(placement.positions_px, grid.stage_px)
    with pytest.raises(dataclasses.FrozenInstanceError):
        strict.min_quality = 0.5  # type: ignore[misc]


def test_the_solver_drops_a_corrupted_link():
    grid = tile_grid(retina(), grid=(3, 3), tile_shape=(128, 128), jitter_px=2.0, noise=0.01, vignetting=0.2, seed=3)
    links = measure_links(grid.tiles, grid.stage_px, max_shift_px=10)
    assert all(link.accepted for link in links)
    # A wrong patch: the second tile's window is read from the tile below it.
    windows = link_windows(grid.stage_px, (128, 128), max_shift_px=10)
    k = next(i for i, w in enumerate(windows) if (w.first, w.second) == (3, 4))
    wrong_patch = grid.tiles[7][windows[k].second_box]
    wrong = measure_link(windows[k], grid.tiles[3][windows[k].first_box], wrong_patch, max_shift_px=10)
    # And a link whose offset is off by (4, -5) px with a high quality. (A link
    # in a single loop of the grid, at a corner, could not be told from the
    # other links of that loop: the loop only says that one of them is wrong.)
    j = next(i for i, link in enumerate(links) if (link.first, link.second) == (4, 5))
    bad = dataclasses.replace(links[j], offset_px=(links[j].offset_px[0] + 4, links[j].offset_px[1] - 5))
    corrupted = list(links)
    corrupted[k], corrupted[j] = wrong, bad
    placement = solve_positions(grid.stage_px, corrupted)
    dropped = placement.links[j]
    assert not dropped.accepted and dropped.weight == 0.0
    assert dropped.reason.startswith("disagrees with the other links by") and "max_residual_px 1.5" in dropped.reason
    assert not placement.links[k].accepted
    assert placement.residual_px[j] > 3
    assert sum(link.accepted for link in placement.links) == len(links) - 2
    errors = neighbour_errors(grid.grid, placement.positions_px, grid.positions_px)
    assert rms(errors) < 0.35 and not placement.fell_back.any()
    # Without the rejection the bad link pulls the mosaic apart.
    kept = solve_positions(grid.stage_px, corrupted, max_rejections=0)
    assert rms(neighbour_errors(grid.grid, kept.positions_px, grid.positions_px)) > 1


def test_tiles_that_do_not_overlap_all_fall_back():
    tiles = [np.random.default_rng(k).random((64, 64)) for k in range(4)]
    prior = np.array([[0.0, 0.0], [0.0, 80.0], [90.0, 0.0], [90.0, 80.0]])
    placement = place_tiles(tiles, prior, max_shift_px=5)
    assert placement.links == () and placement.fell_back.all()
    assert np.array_equal(placement.positions_px, prior)
    assert placement.residual_px.shape == (0,) and placement.n_accepted == 0
    assert sorted(placement.component.tolist()) == [0, 1, 2, 3]


# --------------------------------------------------------------------------
# solve_positions on given links


def link(first, second, offset, prior_offset, weight=1.0, accepted=True) -> Link:
    return Link(first, second, tuple(offset), tuple(prior_offset), weight, weight if accepted else 0.0, accepted, "")


def test_solve_positions_is_weighted_least_squares_in_each_component():
    prior = np.array([[0.0, 0.0], [0.0, 100.0], [100.0, 0.0], [100.0, 100.0], [500.0, 500.0], [500.0, 600.0]])
    truth = prior + np.array([[1.0, -2.0], [0.5, 1.5], [-1.0, 0.0], [2.0, 1.0], [3.0, 3.0], [-3.0, 1.0]])

    def exact(i, j, weight=1.0):
        return link(i, j, truth[j] - truth[i], prior[j] - prior[i], weight)

    # A loop of four tiles, a separate pair, a link disagreeing by 1 px (below the threshold).
    links = [exact(0, 1), exact(1, 3), exact(0, 2), exact(2, 3), exact(4, 5)]
    off = link(0, 3, truth[3] - truth[0] + (1.0, 0.0), prior[3] - prior[0], weight=0.5)
    placement = solve_positions(prior, [*links, off], max_residual_px=2.0)
    assert isinstance(placement, Placement) and placement.n_accepted == 6
    assert placement.component.tolist()[:4] == [placement.component[0]] * 4
    assert placement.component[4] == placement.component[5] != placement.component[0]
    for members in ([0, 1, 2, 3], [4, 5]):
        # Each component keeps the mean of its prior positions.
        assert np.allclose(placement.correction_px[members].mean(axis=0), 0.0, atol=1e-9)
    # The pair is exact; in the loop the 1 px disagreement spreads by weight.
    assert np.allclose(placement.positions_px[5] - placement.positions_px[4], truth[5] - truth[4])
    spread = placement.residual_px[:4]
    assert np.allclose(spread, spread[0]) and 0 < spread[0] < placement.residual_px[5] < 1.0
    assert math.isclose(spread[0] * 4 + placement.residual_px[5] * 0.5 * 2, 1.0, rel_tol=0.3)


def test_solve_positions_ignores_rejected_links_and_checks_indices():
    prior = np.array([[0.0, 0.0], [0.0, 100.0]])
    rejected = link(0, 1, (30.0, 130.0), (0.0, 100.0), accepted=False)
    placement = solve_positions(prior, [rejected])
    assert placement.fell_back.all() and np.array_equal(placement.positions_px, prior)
    assert placement.links == (rejected,)
    with pytest.raises(InvalidInputError, match="link 0 joins tiles 0 and 5, but there are 2 tiles"):
        solve_positions(prior, [link(0, 5, (0, 1), (0, 1))])
    with pytest.raises(InvalidInputError, match="max_residual_px must be > 0"):
        solve_positions(prior, [], max_residual_px=0)


def test_solve_positions_on_thousands_of_tiles_finds_the_corrupted_links():
    rows, columns = 40, 50
    prior = np.array([(r * 90.0, c * 90.0) for r in range(rows) for c in range(columns)])
    rng = np.random.default_rng(5)
    truth = prior + rng.normal(0, 3, prior.shape)
    windows = link_windows(prior, (100, 100), max_shift_px=12)
    links = [
        link(w.first, w.second, truth[w.second] - truth[w.first] + rng.normal(0, 0.05, 2), w.prior_offset_px, 0.9)
        for w in windows
    ]
    corrupted = {int(k) for k in rng.choice(len(links), 20, replace=False)}
    for k in corrupted:
        links[k] = dataclasses.replace(links[k], offset_px=(links[k].offset_px[0] + 5, links[k].offset_px[1] - 4))
    placement = solve_positions(prior, links)
    assert {k for k, one in enumerate(placement.links) if not one.accepted} == corrupted
    error = placement.positions_px - truth
    error -= error.mean(axis=0)
    assert np.abs(error).max() < 0.5 and not placement.fell_back.any()
