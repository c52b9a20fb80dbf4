"""Fusion of placed tiles on numpy arrays (no files).

Ground truth: tiles cut from bundled real images at known sub-pixel positions
(`fractal_roi_tasks.sample_data.tile_grid`, cubic spline cuts), so fusing
them at those positions must give the mosaic back.
"""

from __future__ import annotations


import numpy as np
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.sample_data import load_cardiomyocyte_nuclei, load_source, tile_grid
from fractal_roi_tasks.stitching.fusion import (
    Mosaic,
    block_grid,
    block_parts,
    block_reads,
    fuse_block,
    mosaic_geometry,
)


def fuse(mosaic, tiles, *, block=(128, 128), whole_pixels=False, **options):
    """The whole mosaic fused block by block, reading only what each block needs."""
    tiles = [np.asarray(t) for t in tiles]
    out = np.zeros(tiles[0].shape[:-2] + mosaic.shape, options.get("dtype") or tiles[0].dtype)
    for box in block_grid(mosaic.shape, block):
        parts = block_parts(mosaic, box, whole_pixels=whole_pixels)
        reads = [tiles[p.tile][(..., *p.read_box)] for p in parts]
        out[(..., *box)] = fuse_block(
            block_reads(mosaic, box, parts, reads, leading_shape=tiles[0].shape[:-2]), **options
        )
    return out


def in_mosaic_frame(image, mosaic):
    """The part of a truth image (frame of the positions) the mosaic covers."""
    oy, ox = mosaic.origin_px
    return image[..., oy : oy + mosaic.shape[0], ox : ox + mosaic.shape[1]]


def interiors(mosaic, margin=3):
    """Pixels at least ``margin`` inside some tile's footprint."""
    mask = np.zeros(mosaic.shape, bool)
    for start, size in zip(mosaic.starts_px, mosaic.tile_shapes, strict=True):
        mask[
            start[0] + margin : start[0] + size[0] - margin,
            start[1] + margin : start[1] + size[1] - margin,
        ] = True
    return mask


@pytest.fixture(scope="module")
def nuclei_grid():
    raw, _ = load_cardiomyocyte_nuclei()
    return tile_grid(
        raw.astype(np.float32) / 65535,
        grid=(3, 3),
        tile_shape=(96, 112),
        overlap=0.2,
        jitter_px=3,
        magnify=2,
        seed=3,
    )


def test_mosaic_geometry_is_the_smallest_box_of_rounded_footprints():
    positions = np.array([[10.4, -3.6], [12.5, 95.2], [101.0, 0.0]])
    mosaic = mosaic_geometry(positions, [[100, 100], [100, 90], [50, 120]])
    # Rounded starts (halves to even): (10, -4), (12, 95), (101, 0).
    assert mosaic.origin_px == (10, -4)
    assert mosaic.shape == (151 - 10, 185 + 4)
    np.testing.assert_allclose(mosaic.positions_px, positions - (10, -4))
    assert mosaic.starts_px.tolist() == [[0, 0], [2, 99], [91, 4]]
    assert mosaic.footprint(1) == (slice(2, 102), slice(99, 189))
    assert not mosaic.positions_px.flags.writeable
    assert mosaic.with_whole_positions().positions_px.tolist() == [[0, 0], [2, 99], [91, 4]]
    assert mosaic_geometry(positions, (7, 8)).tile_shapes.tolist() == [[7, 8]] * 3


@pytest.mark.parametrize(
    ("positions", "shapes", "match"),
    [
        (np.zeros((2, 3)), (5, 5), "positions_px must be an"),
        ([[0.0, np.nan]], (5, 5), "finite"),
        ([[0.0, 0.0]], [[5, 5], [5, 5]], "tile_shapes must be"),
        ([[0.0, 0.0]], (0, 5), "positive"),
        ([[0.0, 0.0]], (5.5, 5), "whole pixel"),
    ],
)
def test_mosaic_geometry_rejects_bad_input(positions, shapes, match):
    with pytest.raises(InvalidInputError, match=match):
        mosaic_geometry(positions, shapes)


def test_block_parts_agree_with_a_brute_force_search():
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 300, (40, 2))
    shapes = rng.integers(20, 90, (40, 2))
    mosaic = mosaic_geometry(positions, shapes)
    starts, stops = mosaic.starts_px, mosaic.starts_px + mosaic.tile_shapes
    fractions = mosaic.positions_px - starts
    for box in [
        (slice(0, 50), slice(0, 50)),
        (slice(37, 211), slice(101, 102)),
        *block_grid(mosaic.shape, (97, 61)),
    ]:
        lo = np.array([box[0].start, box[1].start])
        hi = np.array([box[0].stop, box[1].stop])
        expected = [
            t for t in range(40) if np.all(np.minimum(stops[t], hi) > np.maximum(starts[t], lo))
        ]
        for whole in (False, True):
            parts = block_parts(mosaic, box, whole_pixels=whole)
            assert [p.tile for p in parts] == expected
            for p in parts:
                t = p.tile
                first = np.maximum(starts[t], lo) - starts[t]
                last = np.minimum(stops[t], hi) - starts[t]
                assert [(s.start, s.stop) for s in p.tile_box] == list(
                    zip(first, last, strict=True)
                )
                assert [(s.start, s.stop) for s in p.block_box] == list(
                    zip(first + starts[t] - lo, last + starts[t] - lo, strict=True)
                )
                pad = np.where((np.abs(fractions[t]) > 1e-3) & (not whole), 2, 0)
                assert [(s.start, s.stop) for s in p.read_box] == list(
                    zip(
                        np.maximum(first - pad, 0),
                        np.minimum(last + pad, mosaic.tile_shapes[t]),
                        strict=True,
                    )
                )
                assert p.fraction_px == (
                    (0.0, 0.0) if whole or not pad.any() else tuple(fractions[t])
                )


def test_block_parts_is_quick_on_thousands_of_tiles():
    grid = np.array([(r * 460.0, c * 460.0) for r in range(80) for c in range(80)])
    mosaic = mosaic_geometry(grid + 0.3, (512, 512))
    parts = block_parts(
        mosaic, (slice(460 * 40, 460 * 40 + 64), slice(460 * 7 + 100, 460 * 7 + 110))
    )
    assert [p.tile for p in parts] == [39 * 80 + 7, 40 * 80 + 7]
    # every block of a 36800 px mosaic: only the few tiles meeting it
    counts = [len(block_parts(mosaic, b)) for b in block_grid(mosaic.shape, (4096, 4096))]
    assert max(counts) <= 100 and sum(counts) >= 6400


@pytest.mark.parametrize("blending", ["linear", "none"])
@pytest.mark.parametrize("source", ["nuclei", "hubble_deep_field"])
def test_fusing_at_the_true_positions_gives_the_mosaic_back(nuclei_grid, blending, source):
    if source == "nuclei":
        grid = nuclei_grid
    else:
        grid = tile_grid(load_source(source), grid=(2, 3), tile_shape=(100, 90), magnify=2, seed=5)
    mosaic = mosaic_geometry(grid.positions_px, grid.tile_shape)
    truth = in_mosaic_frame(grid.mosaic, mosaic)
    inside = interiors(mosaic)
    spread = float(truth.max() - truth.min())
    error = np.abs(fuse(mosaic, grid.tiles, blending=blending) - truth)[inside] / spread
    assert error.max() < 0.02 and error.mean() < 1e-3
    # Sub-pixel placement matters: whole-pixel placement is far worse.
    rounded = np.abs(fuse(mosaic, grid.tiles, blending=blending, whole_pixels=True) - truth)[inside]
    assert rounded.mean() / spread > 5 * error.mean()


@pytest.mark.parametrize("blending", ["linear", "none"])
def test_whole_pixel_positions_copy_integer_tiles_exactly(blending):
    truth = (load_source("retina")[300:560, 200:530] * 60000).astype(np.uint16)
    positions = np.array([[0, 0], [0, 141], [125, 3], [127, 139]])
    tiles = [truth[y : y + 130, x : x + 185] for y, x in positions]
    mosaic = mosaic_geometry(positions + 7, (130, 185))
    fused = fuse(mosaic, tiles, blending=blending, block=(61, 77))
    assert fused.dtype == np.uint16
    covered = np.zeros(truth.shape, bool)
    for y, x in positions:
        covered[y : y + 130, x : x + 185] = True
    np.testing.assert_array_equal(
        fused, np.where(covered, truth, 0)[: fused.shape[0], : fused.shape[1]]
    )


@pytest.mark.parametrize("blending", ["linear", "none"])
def test_leading_channel_and_z_axes_are_carried_through(blending):
    grid = tile_grid(load_source("cell"), grid=(2, 2), tile_shape=(80, 90), z_planes=3, magnify=2)
    tiles = np.stack([grid.tiles, 2 * grid.tiles + 1], axis=1)  # (N, C=2, Z=3, Y, X)
    mosaic = mosaic_geometry(grid.positions_px, grid.tile_shape[-2:])
    fused = fuse(mosaic, tiles, blending=blending, block=(47, 53))
    assert fused.shape == (2, 3) + mosaic.shape and fused.dtype == np.float32
    for c in range(2):
        for z in range(3):
            plane = fuse(mosaic, tiles[:, c, z], blending=blending, block=(47, 53))
            np.testing.assert_array_equal(fused[c, z], plane)
    truth = in_mosaic_frame(grid.mosaic, mosaic)
    inside = interiors(mosaic)
    np.testing.assert_allclose(fused[0][:, inside], truth[:, inside], atol=0.02)
    np.testing.assert_allclose(fused[1][:, inside], 2 * truth[:, inside] + 1, atol=0.04)


@pytest.mark.parametrize("blending", ["linear", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_block_by_block_equals_one_block(nuclei_grid, blending, dtype):
    tiles = (nuclei_grid.tiles * 50000).astype(dtype)
    mosaic = mosaic_geometry(nuclei_grid.positions_px, nuclei_grid.tile_shape)
    whole = fuse(mosaic, tiles, blending=blending, block=mosaic.shape)
    for block in [(37, 53), (101, 13), (1, mosaic.shape[1])]:
        np.testing.assert_array_equal(fuse(mosaic, tiles, blending=blending, block=block), whole)


@pytest.mark.parametrize("blending", ["linear", "none"])
def test_pixels_outside_every_tile_are_zero(blending):
    rng = np.random.default_rng(1)
    tiles = rng.integers(1000, 2000, (3, 40, 50)).astype(np.uint16)
    # An L of three tiles (the bottom-right corner is empty) and a gap between the top two.
    positions = np.array([[0.3, 0.0], [0.0, 60.6], [35.2, -0.4]])
    mosaic = mosaic_geometry(positions, (40, 50))
    fused = fuse(mosaic, tiles, blending=blending, block=(16, 16))
    covered = np.zeros(mosaic.shape, bool)
    for start in mosaic.starts_px:
        covered[start[0] : start[0] + 40, start[1] : start[1] + 50] = True
    assert not covered.all()
    assert np.all(fused[~covered] == 0)
    assert np.all(fused[covered] >= 900)
    box = (slice(60, 75), slice(61, 110))
    assert block_parts(mosaic, box) == []
    empty = fuse_block(
        block_reads(mosaic, box, [], [], leading_shape=(2,)), blending=blending, dtype=np.uint16
    )
    assert empty.shape == (2, 15, 49) and empty.dtype == np.uint16 and not empty.any()


def test_integer_output_is_rounded_and_clipped_not_wrapped():
    tile = np.zeros((20, 40), np.uint16)
    tile[:, 20:] = 65535  # a sharp edge: cubic resampling overshoots on both sides
    mosaic = mosaic_geometry([[0.0, 0.4]], (20, 40))
    fused = fuse(mosaic, [tile], block=(20, 40))
    assert fused.dtype == np.uint16
    assert fused[:, :17].max() == 0 and fused[:, 23:].min() == 65535
    assert np.all(np.diff(fused.astype(np.int64), axis=1) >= 0)
    signed_tile = np.where(tile > 0, 32767, -30000).astype(np.int16)
    signed = fuse(mosaic, [signed_tile], block=(20, 40))
    assert signed.dtype == np.int16 and signed.max() == 32767
    assert signed[:, 23:].min() == 32767 and signed[:, :17].max() <= -29000


def test_none_takes_every_pixel_from_one_tile_split_at_the_middle_of_the_overlap():
    tiles = [np.full((30, 60), 10 * (k + 1), np.uint16) for k in range(3)]
    # tiles 0 and 1 overlap on columns 40..59; tile 2 sits exactly on tile 0.
    mosaic = mosaic_geometry([[0, 0], [0, 40.3], [0, 0]], (30, 60))
    fused = fuse(mosaic, tiles, blending="none", block=(7, 11))
    assert set(np.unique(fused).tolist()) == {10, 20}  # tile 2 ties with tile 0 and loses
    row = fused[15]
    assert row[:50].tolist() == [10] * 50 and row[50:].tolist() == [20] * 50
    linear = fuse(mosaic_geometry([[0, 0], [0, 40.3]], (30, 60)), tiles[:2], block=(7, 11))[15]
    assert linear[:40].tolist() == [10] * 40 and linear[61:].tolist() == [20] * 39
    assert np.all(np.diff(linear.astype(int)) >= 0) and len(np.unique(linear[40:61])) > 5


def test_ramp_px_sets_where_weights_reach_one():
    tiles = [np.full((10, 60), 100.0, np.float32), np.full((10, 60), 200.0, np.float32)]
    mosaic = mosaic_geometry([[0, 0], [0, 40]], (10, 60))
    row = fuse(mosaic, tiles, ramp_px=4.0, block=(10, 100))[5]
    # Column 40 is tile 1's first pixel: weight 0.5 / 4 against tile 0's 1.
    assert row[40] == pytest.approx((100 + 200 * 0.125) / 1.125)
    assert row[45:55].tolist() == [150.0] * 10  # both weights are 1
    assert row[59] == pytest.approx((100 * 0.125 + 200) / 1.125)
    tent = fuse(mosaic, tiles, block=(10, 100))[5]
    assert tent[49] < tent[50] and tent[45] < 150 < tent[54]


def test_vignetting_seams_are_smoothed_by_linear_blending(nuclei_grid):
    grid = tile_grid(
        load_source("cell"), grid=(3, 3), tile_shape=(90, 90), vignetting=0.4, magnify=2
    )
    mosaic = mosaic_geometry(grid.positions_px, grid.tile_shape)
    truth = in_mosaic_frame(grid.mosaic, mosaic)
    inside = interiors(mosaic, margin=4)[4:-4, 4:-4]

    def worst_step(fused):
        residual = (fused - truth)[4:-4, 4:-4]
        steps = (
            np.abs(np.diff(residual, axis=1))[:-1, :] + np.abs(np.diff(residual, axis=0))[:, :-1]
        )
        return steps[inside[:-1, :-1]].max()

    assert worst_step(fuse(mosaic, grid.tiles)) < 0.5 * worst_step(
        fuse(mosaic, grid.tiles, blending="none")
    )


def test_bad_calls_are_refused_with_a_clear_error():
    mosaic = mosaic_geometry([[0, 0], [0, 50]], (40, 60))
    box = (slice(0, 40), slice(0, 110))
    parts = block_parts(mosaic, box)
    reads = [np.zeros(p.read_shape, np.float32) for p in parts]
    with pytest.raises(InvalidInputError, match="blending must be"):
        fuse_block(block_reads(mosaic, box, parts, reads), blending="cubic")
    with pytest.raises(InvalidInputError, match="ramp_px must be"):
        fuse_block(block_reads(mosaic, box, parts, reads), ramp_px=0)
    with pytest.raises(InvalidInputError, match="one read per part"):
        block_reads(mosaic, box, parts, reads[:1])
    with pytest.raises(InvalidInputError, match="expected"):
        block_reads(mosaic, box, parts, [reads[0], reads[1][:, 1:]])
    with pytest.raises(InvalidInputError, match="same leading axes"):
        block_reads(mosaic, box, parts, [reads[0], np.stack([reads[1]] * 2)])
    with pytest.raises(InvalidInputError, match="inside the mosaic"):
        block_parts(mosaic, (slice(0, 41), slice(0, 10)))
    with pytest.raises(InvalidInputError, match="pair of slices"):
        block_parts(mosaic, (slice(0, 10),))
    with pytest.raises(InvalidInputError, match="step 1"):
        block_parts(mosaic, (slice(0, 10, 2), slice(0, 10)))
    with pytest.raises(InvalidInputError, match="does not exist"):
        mosaic.footprint(2)
    with pytest.raises(InvalidInputError, match="Mosaic shape"):
        Mosaic(
            shape=(0, 5),
            origin_px=(0, 0),
            positions_px=np.zeros((1, 2)),
            tile_shapes=np.ones((1, 2), int),
        )
