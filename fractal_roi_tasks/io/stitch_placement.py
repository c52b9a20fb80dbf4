"""Tile placement for one image: read the overlap windows, measure, solve."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fractal_roi_tasks.io.tiles import TilePixels, TileTable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StitchPlan:
    """What to write: the tiles, where each goes (full-resolution pixels), how to blend.

    Attributes:
        tiles: the tiles as read from the ROI table.
        positions_px: (N, 2) solved (y, x) of each tile, full-resolution pixels.
        correction_px: (N, 2) solved minus prior position.
        fell_back: (N,) tiles left at their prior (no trustworthy overlap).
        tile_quality: (N,) best quality of a tile's accepted links (NaN: none).
        links: one row per measured overlap (tiles, offsets, quality, verdict).
        blending, label_names, min_overlap: the task's options.
        placement_time_point: the time point whose pixels placed the tiles
            (0 without a ``t`` axis); every time point is fused with this
            one placement.
    """

    tiles: TileTable
    positions_px: np.ndarray
    correction_px: np.ndarray
    fell_back: np.ndarray
    tile_quality: np.ndarray
    links: pd.DataFrame
    blending: str
    label_names: list[str]
    min_overlap: float
    placement_time_point: int = 0


def place_image_tiles(
    tiles: TileTable,
    image,
    full_resolution,
    *,
    channel: int,
    max_shift_um: float,
    t: int = 0,
):
    """Placement of every tile, in full-resolution pixels of the prior's frame.

    Measures on ``image`` (the chosen pyramid level; stacks projected over
    z) at time point ``t``, reading only the overlap windows, then scales to
    ``full_resolution``.

    Returns:
        ``(placement, scale)``: the `Placement` in pixels of
        ``full_resolution`` and the (y, x) level-to-full-resolution factor.
    """
    from fractal_roi_tasks.stitching.pairwise import link_windows, measure_link
    from fractal_roi_tasks.stitching.solve import solve_positions

    boxes = tiles.boxes(image)
    shapes = np.array([[b.stop - b.start for b in box] for box in boxes])
    prior = tiles.prior_px(image)
    spacing = np.array([image.pixel_size.y, image.pixel_size.x])
    max_shift_px = float(max_shift_um / spacing.min())
    pixels = TilePixels(image, boxes)
    links = []
    windows = link_windows(prior, shapes, max_shift_px=max_shift_px)
    for done, window in enumerate(windows, start=1):
        first = pixels.read_projected(window.first, window.first_box, c=channel, t=t)
        second = pixels.read_projected(window.second, window.second_box, c=channel, t=t)
        links.append(measure_link(window, first, second, max_shift_px=max_shift_px))
        if done % 200 == 0:
            logger.info("measured %d of %d tile overlaps", done, len(windows))
    placement = solve_positions(prior, links)
    full = np.array([full_resolution.pixel_size.y, full_resolution.pixel_size.x])
    scale = spacing / full
    return placement, scale


LINK_COLUMNS = (
    "first", "second", "offset_y_px", "offset_x_px", "prior_offset_y_px", "prior_offset_x_px",
    "quality", "accepted", "residual_px", "reason",
)


def _links_frame(links, names: list[str], scale: np.ndarray, residual: np.ndarray) -> pd.DataFrame:
    """One row per measured overlap, offsets in full-resolution pixels."""
    rows = [
        (
            names[link.first], names[link.second],
            link.offset_px[0] * scale[0], link.offset_px[1] * scale[1],
            link.prior_offset_px[0] * scale[0], link.prior_offset_px[1] * scale[1],
            link.quality, link.accepted, float(rest) * float(scale.max()), link.reason,
        )
        for link, rest in zip(links, residual)
    ]
    frame = pd.DataFrame(rows, columns=list(LINK_COLUMNS))
    for column in ("first", "second", "reason"):  # text columns are stored as categories
        frame[column] = frame[column].astype("category")
    frame.index = pd.Index([f"{row[0]}-{row[1]}" for row in rows], name="link")
    return frame


def make_plan(
    tiles: TileTable,
    ome_zarr,
    zarr_url: str,
    *,
    channel: int,
    level: str,
    max_shift_um: float,
    blending: str,
    label_names: list[str],
    min_overlap: float,
    placement_time_point: int = 0,
) -> StitchPlan:
    """Place the tiles of one image and say what happened (INFO, WARNING on fallbacks).

    ``placement_time_point`` (checked by the caller) is the time point whose
    pixels are measured; the plan holds it for every time point to reuse.
    """
    image = ome_zarr.get_image(path=level)
    placement, scale = place_image_tiles(
        tiles, image, ome_zarr.get_image(), channel=channel, max_shift_um=max_shift_um,
        t=placement_time_point,
    )
    n = len(tiles.names)
    quality = np.full(n, np.nan)
    for link in placement.links:
        if link.accepted:
            for tile in (link.first, link.second):
                quality[tile] = np.fmax(quality[tile], link.quality)
    accepted = [link for link in placement.links if link.accepted]
    rejected = [link for link in placement.links if not link.accepted]
    when = f" on time point {placement_time_point}" if "t" in image.axes else ""
    logger.info(
        "%s: %d tiles from their %s, %d overlaps measured at level %s%s, %d accepted, %d rejected",
        zarr_url, n, tiles.prior_source, len(placement.links), level, when, len(accepted),
        len(rejected),
    )
    for link in rejected:
        logger.info("overlap %s-%s rejected: %s", tiles.names[link.first], tiles.names[link.second], link.reason)
    fell_back = np.asarray(placement.fell_back, dtype=bool)
    if fell_back.any():
        logger.warning(
            "%s: tiles %s have no trustworthy overlap with a neighbour: placed at their %s",
            zarr_url, [tiles.names[i] for i in np.flatnonzero(fell_back)], tiles.prior_source,
        )
    positions = placement.positions_px * scale
    return StitchPlan(
        tiles=tiles,
        positions_px=positions,
        correction_px=placement.correction_px * scale,
        fell_back=fell_back,
        tile_quality=quality,
        links=_links_frame(placement.links, tiles.names, scale, placement.residual_px),
        blending=blending,
        label_names=list(label_names),
        min_overlap=min_overlap,
        placement_time_point=placement_time_point,
    )
