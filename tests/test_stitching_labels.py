"""Label fusion and de-duplication on numpy arrays (no files).

Ground truth: real objects (ngio's cardiomyocyte nuclei, the coins of
scikit-image) in a mosaic, cut into overlapping tiles labelled tile by tile
(`fractal_roi_tasks.sample_data.tile_grid`): after fusion every true object
must have one id, and no id two objects.
"""

from __future__ import annotations


import numpy as np
import pytest
from scipy import ndimage
from skimage import filters, measure, morphology

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei, load_source, tile_grid
from fractal_roi_tasks.stitching.fusion import (
    block_grid,
    block_parts,
    block_reads,
    fuse_block,
    mosaic_geometry,
)
from fractal_roi_tasks.stitching.labels import (
    BoxAccumulator,
    fuse_label_block,
    merge_labels,
    overlap_matches,
    owned_ids,
    owner_block,
    pair_matches,
    tile_overlaps,
)


def stitch(label_tiles, positions, *, block=(97, 131), matches=None):
    """Fuse label tiles as the I/O layer does; returns (mosaic, merge, fused, boxes)."""
    label_tiles = [np.asarray(t) for t in label_tiles]
    mosaic = mosaic_geometry(positions, [t.shape[-2:] for t in label_tiles])
    ids = [owned_ids(mosaic, t, label_tiles[t]) for t in range(mosaic.n_tiles)]
    if matches is None:
        matches = {
            (o.first, o.second): pair_matches(
                mosaic,
                o,
                label_tiles[o.first][(..., *o.first_box)],
                label_tiles[o.second][(..., *o.second_box)],
            )
            for o in tile_overlaps(mosaic)
        }
    merge = merge_labels(ids, matches)
    fused = np.zeros(label_tiles[0].shape[:-2] + mosaic.shape, np.uint32)
    boxes = BoxAccumulator()
    for box in block_grid(mosaic.shape, block):
        parts = block_parts(mosaic, box, whole_pixels=True)
        reads = [label_tiles[p.tile][(..., *p.read_box)] for p in parts]
        fused[(..., *box)] = fuse_label_block(
            block_reads(mosaic, box, parts, reads, leading_shape=label_tiles[0].shape[:-2]), merge
        )
        boxes.add(fused[(..., *box)], (0,) * (fused.ndim - 2) + (box[0].start, box[1].start))
    return mosaic, merge, fused, boxes


def truth_as_fused(mosaic, truth_tiles):
    """The true object ids of every pixel the fused image shows (same owners)."""
    owner = owner_block(mosaic, (slice(0, mosaic.shape[0]), slice(0, mosaic.shape[1])))
    out = np.zeros(mosaic.shape, np.uint32)
    for tile in range(mosaic.n_tiles):
        footprint = mosaic.footprint(tile)
        mine = owner[footprint] == tile
        out[footprint][mine] = truth_tiles[tile][mine]
    return out


def id_pairs(fused, truth):
    foreground = truth > 0
    assert np.array_equal(fused > 0, foreground)
    return np.unique(np.stack([fused[foreground], truth[foreground]]), axis=1)


def _smaller_overlaps(image, other, image_ids, other_ids):
    """Ids of ``image`` that overlap more than one id of ``other`` -> the pixel counts of
    all but the largest of those overlaps; ``(image_ids[k], other_ids[k])`` are the
    pairs of ids that overlap."""
    ids, counts = np.unique(image_ids, return_counts=True)
    out = {}
    for own in ids[counts > 1]:
        sizes = sorted(
            int(np.count_nonzero((image == own) & (other == o)))
            for o in other_ids[image_ids == own]
        )
        out[int(own)] = sizes[:-1]
    return out


def split_objects(fused, truth):
    """True ids shown with more than one fused id -> sizes of all but the largest piece."""
    fused_ids, true_ids = id_pairs(fused, truth)
    return _smaller_overlaps(truth, fused, true_ids, fused_ids)


def merged_objects(fused, truth):
    """Fused ids covering more than one true object -> sizes of all but the largest."""
    fused_ids, true_ids = id_pairs(fused, truth)
    return _smaller_overlaps(fused, truth, fused_ids, true_ids)


def seen_in_pieces(fused_truth):
    """True ids whose shown pixels are not connected (cut apart by the mosaic's edge)."""
    pieces = measure.label(fused_truth, background=0)
    pairs = np.unique(np.stack([fused_truth[fused_truth > 0], pieces[fused_truth > 0]]), axis=1)
    ids, counts = np.unique(pairs[0], return_counts=True)
    return set(ids[counts > 1].tolist())


def nuclei_grid(seed):
    raw, nuclei = load_cardiomyocyte_nuclei()
    return tile_grid(
        raw.astype(np.float32),
        grid=(3, 3),
        tile_shape=(192, 192),
        overlap=0.15,
        jitter_px=3,
        object_labels=nuclei,
        seed=seed,
    )


def coin_objects():
    """The coins of scikit-image's image, segmented: (303, 384) labels."""
    coins = load_source("coins")
    mask = ndimage.binary_fill_holes(coins > filters.threshold_otsu(coins))
    return measure.label(morphology.remove_small_objects(mask, max_size=50))


def coins_grid(seed):
    return tile_grid(
        load_source("coins"),
        grid=(3, 3),
        tile_shape=(128, 128),
        overlap=0.15,
        jitter_px=3,
        object_labels=coin_objects(),
        seed=seed,
    )


def true_tiles(grid):
    h, w = grid.tile_shape[-2:]
    return np.stack(
        [grid.object_labels[..., y : y + h, x : x + w] for y, x in grid.label_positions_px]
    )


@pytest.mark.parametrize("make_grid", [nuclei_grid, coins_grid])
@pytest.mark.parametrize("seed", [0, 4])
def test_every_object_gets_one_id_at_the_true_positions(make_grid, seed):
    grid = make_grid(seed)
    mosaic, merge, fused, _ = stitch(grid.labels, grid.label_positions_px)
    truth = truth_as_fused(mosaic, true_tiles(grid))
    # What the fused image shows is the true objects, pixel for pixel.
    oy, ox = mosaic.origin_px
    in_frame = grid.object_labels[oy : oy + mosaic.shape[0], ox : ox + mosaic.shape[1]]
    shown = owner_block(mosaic, (slice(0, mosaic.shape[0]), slice(0, mosaic.shape[1]))) >= 0
    np.testing.assert_array_equal(truth, np.where(shown, in_frame, 0))
    assert merged_objects(fused, truth) == {}
    assert set(split_objects(fused, truth)) <= seen_in_pieces(truth)
    assert merge.n_objects == fused.max() > 20
    assert np.array_equal(np.unique(fused), np.arange(merge.n_objects + 1))
    # Tiles do cut objects: without de-duplication many objects get several ids.
    _, _, naive, _ = stitch(grid.labels, grid.label_positions_px, matches={})
    assert len(set(split_objects(naive, truth)) - seen_in_pieces(truth)) >= 5


@pytest.mark.parametrize(
    ("make_grid", "seed"), [(nuclei_grid, 0), (nuclei_grid, 4), (coins_grid, 1)]
)
def test_registration_errors_of_a_pixel_or_two_leave_at_most_slivers(make_grid, seed):
    grid = make_grid(seed)
    rng = np.random.default_rng(seed)
    cut_apart = seen_in_pieces(
        truth_as_fused(mosaic_geometry(grid.label_positions_px, grid.tile_shape), true_tiles(grid))
    )
    for _ in range(4):
        # Each tile placed up to 1 px off per axis: neighbours up to 2 px off each other.
        positions = grid.label_positions_px + rng.integers(-1, 2, grid.label_positions_px.shape)
        mosaic, merge, fused, _ = stitch(grid.labels, positions)
        truth = truth_as_fused(mosaic, true_tiles(grid))
        # No id covers two objects, but for a thin sliver of one object at the
        # mosaic's edge, moved onto its neighbour by the error.
        assert all(max(sizes) <= 40 for sizes in merged_objects(fused, truth).values())
        # No object has two ids, but for a few pixels cut off at a seam.
        splits = {k: v for k, v in split_objects(fused, truth).items() if k not in cut_apart}
        assert all(max(sizes) <= 10 for sizes in splits.values()), splits
        assert np.array_equal(np.unique(fused), np.arange(merge.n_objects + 1))


def test_an_object_at_the_corner_of_four_tiles_gets_one_id_transitively():
    yy, xx = np.mgrid[:112, :112]
    truth = np.zeros((112, 112), np.uint32)
    truth[(yy - 56) ** 2 + (xx - 56) ** 2 <= 10**2] = 1  # on the corner of all four tiles
    truth[(yy - 20) ** 2 + (xx - 20) ** 2 <= 8**2] = 2
    truth[(yy - 90) ** 2 + (xx - 30) ** 2 <= 8**2] = 3
    positions = np.array([[0, 0], [0, 48], [48, 0], [48, 48]])
    tiles = []
    for k, (y, x) in enumerate(positions):
        crop = truth[y : y + 64, x : x + 64]
        tiles.append(np.where(crop > 0, crop * 10 + 1000 * (k + 1), 0).astype(np.uint32))
    mosaic, merge, fused, _ = stitch(tiles, positions)
    assert merge.n_objects == 3
    assert len(np.unique(fused[truth == 1])) == 1
    np.testing.assert_array_equal(fused > 0, truth > 0)
    # Only a chain of matches links the four parts: still one object.
    first = [(o.first, o.second) for o in tile_overlaps(mosaic)]
    assert first == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    chain = {(0, 1): [[1010, 2010]], (1, 3): [[2010, 4010]], (2, 3): [[3010, 4010]]}
    _, merge, fused, _ = stitch(tiles, positions, matches=chain)
    assert merge.n_objects == 3 and len(np.unique(fused[truth == 1])) == 1


@pytest.mark.parametrize("kind", ["offset", "sparse", "unique per image"])
def test_huge_and_repeated_ids_give_the_same_objects(kind):
    grid = nuclei_grid(2)
    _, _, reference, _ = stitch(grid.labels, grid.label_positions_px)
    rng = np.random.default_rng(0)
    relabelled = []
    for k, tile in enumerate(grid.labels.astype(np.uint64)):
        if kind == "offset":  # every tile numbers 4e9 + 1, 4e9 + 2, ... (uint32 range)
            new = np.where(tile > 0, tile + 4_000_000_000, 0).astype(np.uint32)
        elif kind == "sparse":  # ids scattered up to 2**62
            table = np.concatenate([[0], rng.choice(2**62, int(tile.max()), replace=False)]).astype(
                np.uint64
            )
            new = table[tile]
        else:  # ids unique across the whole input, as after a global segmentation
            new = np.where(tile > 0, tile + 10_000_000 * k, 0).astype(np.int64)
        relabelled.append(new)
    _, merge, fused, _ = stitch(relabelled, grid.label_positions_px)
    pairs = id_pairs(fused, reference)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1] == merge.n_objects
    if kind != "sparse":  # the order of ids within tiles is kept: the same numbering
        np.testing.assert_array_equal(fused, reference)


def test_three_dimensional_labels_are_fused_plane_by_plane_with_one_owner():
    grid = tile_grid(
        load_source("coins"),
        grid=(2, 2),
        tile_shape=(128, 160),
        z_planes=3,
        object_labels=coin_objects(),
    )
    assert grid.labels.shape[1] == 3
    _, merge3, fused3, boxes3 = stitch(grid.labels, grid.label_positions_px, block=(57, 71))
    _, merge2, fused2, _ = stitch(grid.labels[:, 1], grid.label_positions_px)
    assert fused3.shape[0] == 3 and merge3.n_objects == merge2.n_objects
    for plane in fused3:
        np.testing.assert_array_equal(plane, fused2)
    ids, starts, stops = boxes3.result()
    found = ndimage.find_objects(fused3)
    assert ids.tolist() == [k + 1 for k, s in enumerate(found) if s is not None]
    assert starts.tolist() == [[s.start for s in found[k - 1]] for k in ids]
    assert stops.tolist() == [[s.stop for s in found[k - 1]] for k in ids]


@pytest.mark.parametrize("block", [(1000, 1000), (61, 47), (13, 500)])
def test_box_accumulator_equals_find_objects_on_the_whole_image(block):
    grid = nuclei_grid(1)
    _, merge, fused, boxes = stitch(grid.labels, grid.label_positions_px, block=block)
    ids, starts, stops = boxes.result()
    found = ndimage.find_objects(fused)
    assert ids.tolist() == list(range(1, merge.n_objects + 1))
    assert starts.tolist() == [[s.start for s in box] for box in found]
    assert stops.tolist() == [[s.stop for s in box] for box in found]
    assert ids.dtype == np.uint64 and starts.dtype == stops.dtype == np.int64


def test_box_accumulator_with_sparse_ids_and_many_blocks():
    boxes = BoxAccumulator()
    image = np.zeros((40, 300), np.uint64)
    image[3:5, 10:200] = 2**40
    image[30:31, 290:300] = 7
    image[10:20, 0:1] = 2**40  # the same object in another place
    for box in block_grid(image.shape, (3, 7)):  # > 64 blocks: compaction happens
        boxes.add(image[box], (box[0].start + 100, box[1].start - 5))
    ids, starts, stops = boxes.result()
    assert ids.tolist() == [7, 2**40]
    assert starts.tolist() == [[130, 285], [103, -5]] and stops.tolist() == [[131, 295], [120, 195]]
    empty = BoxAccumulator()
    empty.add(np.zeros((4, 4), np.uint32), (0, 0))
    assert [a.shape for a in empty.result()] == [(0,), (0, 2), (0, 2)]
    with pytest.raises(InvalidInputError, match="one start per axis"):
        boxes.add(image, (0, 0, 0))
    with pytest.raises(InvalidInputError, match="must all have 2 axes"):
        boxes.add(np.ones((2, 2, 2), np.uint32), (0, 0, 0))


def test_overlap_matches_uses_the_smaller_part_not_the_union():
    first = np.zeros((20, 30), np.uint16)
    second = np.zeros((20, 30), np.uint16)
    second[5:15, 0:30] = 9  # seen whole by the second tile
    first[5:15, 20:30] = 4  # a third of it, the rest cut off by the first tile's border
    first[0:3, 0:10] = 5  # only in the first tile
    second[16:20, 0:4] = 6
    first[16:20, 2:6] = 7  # half of 7 lies on 6: the same object, just matched
    assert overlap_matches(first, second).tolist() == [[4, 9], [7, 6]]
    # IoU would reject the cut object (1/3): the smaller part decides.
    assert overlap_matches(first, second, min_overlap=0.9).tolist() == [[4, 9]]
    first[16:20, 2:6] = 0
    first[5:15, 0:4] = 3  # a second piece of the object: both pieces match it
    assert overlap_matches(first, second).tolist() == [[3, 9], [4, 9]]
    three_d = overlap_matches(np.stack([first, first]), np.stack([second, second]))
    assert three_d.tolist() == [[3, 9], [4, 9]] and three_d.dtype == np.uint64


def test_overlap_matches_keeps_a_sliver_off_its_neighbour():
    # Two touching objects crossing the seam; a thin sliver of a third object at
    # the edge of the region lands on object 2 when the tiles are 2 px apart.
    first = np.zeros((30, 30), np.uint32)
    second = np.zeros((30, 30), np.uint32)
    first[0:30, 2:4] = 8  # sliver of an object lying mostly outside the region
    first[0:30, 4:14] = 1
    first[0:30, 14:24] = 2
    second[0:30, 0:2] = 18  # the same sliver, seen 2 px off
    second[0:30, 2:12] = 11
    second[0:30, 12:22] = 12
    owner = np.zeros((30, 30), int)
    owner[:, 15:] = 1
    plain = overlap_matches(first, second)
    assert plain.tolist() == [[1, 11], [2, 12], [8, 11]]  # 8 would merge with 1
    seam = ndimage.binary_dilation(owner == 1, np.ones((3, 3)), iterations=4)
    other = ndimage.binary_dilation(owner == 0, np.ones((3, 3)), iterations=4)
    assert overlap_matches(first, second, first_at_seam=seam, second_at_seam=other).tolist() == [
        [1, 11],
        [2, 12],
    ]


def test_merge_labels_joins_transitively_and_numbers_by_first_appearance():
    tile_ids = [
        np.array([5, 3, 3, 0]),
        np.array([2**63 + 1, 7], np.uint64),
        np.array([1]),
        np.array([], np.uint8),
    ]
    matches = [
        ((1, 2), np.array([[7, 1]])),
        ((0, 2), np.array([[5, 1]])),
        ((0, 1), np.array([[3, 99]])),  # 99 is not shown: ignored
        ((2, 3), np.zeros((0, 2), np.int64)),
    ]
    merge = merge_labels(tile_ids, matches)
    assert merge.n_objects == 3
    assert [m.tolist() for m in merge.tile_ids] == [[3, 5], [7, 2**63 + 1], [1], []]
    assert [m.tolist() for m in merge.final_ids] == [[1, 2], [2, 3], [2], []]
    assert merge.lookup(1, np.array([[0, 2**63 + 1], [7, 7]], np.uint64)).tolist() == [
        [0, 3],
        [2, 2],
    ]
    assert merge.lookup(3, np.zeros((2, 2), np.uint16)).tolist() == [[0, 0], [0, 0]]
    assert merge.lookup(0, np.array([3], np.int8)).dtype == np.uint32
    with pytest.raises(InvalidInputError, match="not among its ids"):
        merge.lookup(0, np.array([4]))
    with pytest.raises(InvalidInputError, match="does not exist"):
        merge.lookup(4, np.array([1]))
    with pytest.raises(InvalidInputError, match="negative ids"):
        merge.lookup(0, np.array([-3]))
    with pytest.raises(InvalidInputError, match="tile_ids has 4 tiles"):
        merge_labels(tile_ids, {(0, 4): [[1, 1]]})
    with pytest.raises(InvalidInputError, match=r"\(K, 2\)"):
        merge_labels(tile_ids, {(0, 1): [1, 2, 3]})
    with pytest.raises(InvalidInputError, match="integer label"):
        merge_labels([np.array([1.5])], {})
    assert merge_labels([], {}).n_objects == 0


def test_lookup_paths_agree():
    # Dense small ids, a dense range of huge ids, and scattered ids take different paths.
    rng = np.random.default_rng(3)
    for ids in (
        np.arange(1, 300),
        np.arange(1, 300) + 2**35,
        np.sort(rng.choice(2**60, 299, replace=False)) + 1,
    ):
        merge = merge_labels([ids], {})
        sample = rng.choice(np.concatenate([[0], ids]), (50, 40))
        expected = np.searchsorted(ids, sample) + 1
        expected[sample == 0] = 0
        np.testing.assert_array_equal(merge.lookup(0, sample), expected)
        with pytest.raises(InvalidInputError, match="not among its ids"):
            merge.lookup(0, np.array([int(ids[-1]) + 1], np.uint64))


def test_owner_matches_blending_none_and_owned_ids():
    rng = np.random.default_rng(5)
    positions = np.array([[0, 0], [3, 70], [75, -4], [80, 66], [40, 30]]) + rng.integers(
        -2, 3, (5, 2)
    )
    shapes = np.array([[90, 90], [90, 80], [85, 90], [80, 80], [30, 40]])
    mosaic = mosaic_geometry(positions, shapes)
    full = (slice(0, mosaic.shape[0]), slice(0, mosaic.shape[1]))
    owner = owner_block(mosaic, full)
    constant = [np.full(tuple(s), k + 1, np.uint8) for k, s in enumerate(shapes)]
    parts = block_parts(mosaic, full, whole_pixels=True)
    none = fuse_block(
        block_reads(mosaic, full, parts, [constant[p.tile][p.read_box] for p in parts]),
        blending="none",
    )
    np.testing.assert_array_equal(none.astype(int) - 1, owner)
    assert (owner == -1).any() and set(np.unique(owner)) == {-1, 0, 1, 2, 3, 4}
    for box in block_grid(mosaic.shape, (23, 31)):
        np.testing.assert_array_equal(owner_block(mosaic, box), owner[box])
    tile_labels = rng.integers(0, 50, tuple(shapes[1])).astype(np.uint16)
    shown = np.zeros(mosaic.shape, np.int64)
    shown[mosaic.footprint(1)] = tile_labels
    expected = np.unique(shown[(owner == 1) & (shown > 0)])
    assert owned_ids(mosaic, 1, tile_labels).tolist() == expected.tolist()
    assert (
        owned_ids(mosaic, 1, tile_labels.astype(np.uint64) * 2**50).tolist()
        == (expected.astype(np.uint64) * 2**50).tolist()
    )


def test_label_errors_are_clear():
    mosaic = mosaic_geometry([[0, 0], [0, 8]], (10, 10))
    box = (slice(0, 10), slice(0, 18))
    whole = block_parts(mosaic, box, whole_pixels=True)
    tiles = [np.ones((10, 10), np.uint16), np.full((10, 10), 2, np.uint16)]
    merge = merge_labels([[1], [2]], {})
    fused = fuse_label_block(
        block_reads(mosaic, box, whole, [tiles[p.tile][p.read_box] for p in whole]), merge
    )
    assert fused.dtype == np.uint32 and set(np.unique(fused).tolist()) == {1, 2}
    shifted = mosaic_geometry([[0, 0], [0, 8.5]], (10, 10))
    sub_pixel = block_parts(shifted, box)
    with pytest.raises(InvalidInputError, match="whole_pixels=True"):
        fuse_label_block(
            block_reads(shifted, box, sub_pixel, [np.ones(p.read_shape) for p in sub_pixel]), merge
        )
    with pytest.raises(InvalidInputError, match="merge_labels was not given"):
        fuse_label_block(
            block_reads(mosaic, box, whole, [np.full((10, 10), 3, np.uint16)] * 2), merge
        )
    with pytest.raises(InvalidInputError, match="integer label"):
        fuse_label_block(
            block_reads(mosaic, box, whole, [np.ones((10, 10), np.float32)] * 2), merge
        )
    with pytest.raises(InvalidInputError, match="same region"):
        overlap_matches(np.ones((3, 3), int), np.ones((3, 4), int))
    with pytest.raises(InvalidInputError, match="min_overlap"):
        overlap_matches(np.ones((3, 3), int), np.ones((3, 3), int), min_overlap=0)
    with pytest.raises(InvalidInputError, match="first_at_seam has shape"):
        overlap_matches(
            np.ones((3, 3), int), np.ones((3, 3), int), first_at_seam=np.ones((2, 3), bool)
        )
    with pytest.raises(InvalidInputError, match="seam_tolerance_px"):
        pair_matches(
            mosaic, tile_overlaps(mosaic)[0], tiles[0][:, 8:], tiles[1][:, :2], seam_tolerance_px=-1
        )
    with pytest.raises(InvalidInputError, match="have shape"):
        owned_ids(mosaic, 0, np.ones((10, 9), np.uint8))
    empty = fuse_label_block(block_reads(mosaic, box, [], [], leading_shape=(2,)), merge)
    assert empty.shape == (2, 10, 18) and not empty.any()
