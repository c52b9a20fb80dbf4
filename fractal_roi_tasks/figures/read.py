"""Gather the figure's panels from a plate (or image) the tasks have run on.

Reads with ngio, a crop of the full-resolution level (at most `CROP` pixels a
side) or the coarsest pyramid level holding the whole mosaic at no more than
`OVERVIEW` pixels a side, never a whole large image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fractal_roi_tasks.figures import panels
from fractal_roi_tasks.errors import FractalRoiTasksError
from fractal_roi_tasks.names import (
    FEATURE_TABLE,
    FOV_ROI_TABLE,
    ROI_LENGTH_COLUMN,
    ROI_START_COLUMN,
    STITCHED_IMAGE,
)

logger = logging.getLogger(__name__)

CROP = 256
"""Side of the full-resolution crops (pixels)."""

OVERVIEW = 1024
"""Largest side of the level read for the whole stitched mosaic."""

SEAM_ZOOM = 96
"""Side of the seam zoom (pixels)."""


@dataclass
class Panel:
    """One panel: a docs key, a title, and its RGB array (uint8, (Y, X, 3)) or the data of a plot.

    A plot panel (``rgb`` None) carries what `compose` plots, e.g. a
    `fractal_roi_tasks.figures.drift.DriftPath`.
    """

    key: str
    title: str
    rgb: np.ndarray | None
    plot: object | None = None


@dataclass
class FigureData:
    """The panels that could be made, and why the others could not."""

    panels: list[Panel] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)


def _open(zarr_url):
    import ngio

    return ngio.open_ome_zarr_container(str(zarr_url), mode="r")


def _plane(array_like, axes, **slices) -> np.ndarray:
    """Read a 2D (Y, X) plane: channel 0, middle z plane, first time point."""
    kwargs = dict(slices)
    shape = dict(zip(axes, array_like.shape))
    if "z" in shape:
        kwargs["z"] = shape["z"] // 2
    if "t" in shape:
        kwargs["t"] = 0
    if "c" in shape:
        data = array_like.get_array(channel_selection=0, **kwargs)
    else:
        data = array_like.get_array(**kwargs)
    data = np.squeeze(np.asarray(data))
    while data.ndim > 2:
        data = data[data.shape[0] // 2]
    return data


_ZARR_METADATA = ("zarr.json", ".zattrs", ".zgroup")


def _image_urls(image_or_plate: str) -> list[str]:
    path = Path(image_or_plate)
    if path.is_dir() and not any((path / name).exists() for name in _ZARR_METADATA):
        # A plain folder (e.g. the demo's): every image or plate in it.
        children = [c for c in sorted(path.iterdir())
                    if c.is_dir() and any((c / name).exists() for name in _ZARR_METADATA)]
        return [url for child in children for url in _image_urls(str(child))]
    if (path / "labels").is_dir() or (path / "tables").is_dir() or _is_image(path):
        return [str(path)]
    from fractal_roi_tasks.runner import image_urls

    return image_urls(str(path))


def _is_image(path: Path) -> bool:
    import ngio

    try:
        _open(path).get_image()
    except ngio.NgioError:  # not an image: a plate or a well
        return False
    return True


def _box_px(row, pixel_um: float) -> tuple[float, float, float, float]:
    """(y0, x0, height, width) in pixels of one ROI table row."""
    return tuple(
        row[column.format(axis=axis)] / pixel_um
        for column in (ROI_START_COLUMN, ROI_LENGTH_COLUMN)
        for axis in "yx"
    )


def _reference_of(source: Path) -> Path | None:
    """The first acquisition's image that `source` was registered against (well metadata)."""
    from fractal_roi_tasks.io.wells import reference_of, well_url_of, wells_of

    try:
        well = wells_of([str(source)])[well_url_of(str(source))]
        return Path(reference_of(str(source), well, min(well.by_acquisition)))
    except FractalRoiTasksError:  # outside a plate, or no pairing reference
        return None


def _centre_crop(shape, size=CROP, container=None, pixel_um=None) -> dict:
    """A crop of `size` px centred in the first field of view (else in the image)."""
    cy, cx = shape["y"] / 2, shape["x"] / 2
    if container is not None and FOV_ROI_TABLE in container.list_tables():
        y0, x0, h, w = _box_px(container.get_roi_table(FOV_ROI_TABLE).dataframe.iloc[0], pixel_um)
        cy, cx = y0 + h / 2, x0 + w / 2
    y0 = int(np.clip(cy - size / 2, 0, max(0, shape["y"] - size)))
    x0 = int(np.clip(cx - size / 2, 0, max(0, shape["x"] - size)))
    return {"y": slice(y0, min(shape["y"], y0 + size)), "x": slice(x0, min(shape["x"], x0 + size))}


def segmentation_panels(urls: list[str], data: FigureData) -> None:
    """Outlines of the segmented label image (or any measured one) on its image."""
    for url in urls:
        container = _open(url)
        tables = set(container.list_tables())
        measured = [
            name for name in container.list_labels()
            if FEATURE_TABLE.format(label_name=name) in tables
        ]
        if not measured:
            continue
        label_name = next((n for n in measured if n.endswith("_segmented")), measured[-1])
        image = container.get_image()
        label = container.get_label(label_name, path="0")
        shape = dict(zip(label.axes, label.shape))
        crop = _centre_crop(shape, container=container, pixel_um=float(label.pixel_size.x))
        labels = _plane(label, label.axes, **crop)
        image_plane = _plane(container.get_image(pixel_size=label.pixel_size), image.axes, **crop)
        counts = {
            name: len(container.get_feature_table(FEATURE_TABLE.format(label_name=name)).dataframe)
            for name in measured
        }
        text = ", ".join(f"{name}: {n}" for name, n in counts.items())
        data.panels.append(Panel(
            "segment_to_rois",
            f"Segment to ROIs: '{label_name}' outlines\n{Path(url).parent.name}/{Path(url).name}; "
            f"objects {text}",
            panels.outline_panel(image_plane, labels),
        ))
        data.facts.update({f"objects_{name}": float(n) for name, n in counts.items()})
        data.facts["roi_labels"] = labels  # type: ignore[assignment]
        return
    data.missing["segment_to_rois"] = "no image has a measured label image ({label}_features): run Segment to ROIs"


def registration_panels(urls: list[str], data: FigureData) -> None:
    """Reference vs moving cycle before and after registration, same crop."""
    registered = [u for u in urls if Path(u).name.endswith("_registered")]
    for url in registered:
        source = Path(url).with_name(Path(url).name.removesuffix("_registered"))
        reference = _reference_of(source) if source.exists() else None
        if reference is None or reference == source:
            continue
        ref_image, before_image, after_image = (
            _open(p).get_image() for p in (reference, source, url)
        )
        shape = dict(zip(ref_image.axes, ref_image.shape))
        crop = _centre_crop(shape, container=_open(reference), pixel_um=float(ref_image.pixel_size.x))
        ref = _plane(ref_image, ref_image.axes, **crop)
        before = _plane(before_image, before_image.axes, **crop)
        after = _plane(after_image, after_image.axes, **crop)
        r_before, r_after = panels.correlation(ref, before), panels.correlation(ref, after)
        name = f"{source.parent.name}: cycle {reference.name} (magenta) vs {source.name} (green)"
        data.panels.append(Panel("registration_before", f"Before registration\n{name}, r = {r_before:.2f}",
                                 panels.two_colour_overlay(ref, before)))
        data.panels.append(Panel("registration_after", f"After registration\n{Path(url).name}, r = {r_after:.2f}",
                                 panels.two_colour_overlay(ref, after)))
        data.facts.update(correlation_before=r_before, correlation_after=r_after)
        return
    data.missing["registration"] = (
        "no '{image}_registered' image next to its source: run Calculate Registration, Find "
        "Registration Consensus and Apply Registration to Image (overwrite_input=False)"
    )


def _level_for(image_container, limit=OVERVIEW):
    """The finest level whose largest side is at most `limit` (else the coarsest)."""
    for path in image_container.level_paths:
        image = image_container.get_image(path=path)
        shape = dict(zip(image.axes, image.shape))
        if max(shape["y"], shape["x"]) <= limit:
            return image
    return image_container.get_image(path=image_container.level_paths[-1])


def stitching_panels(urls: list[str], data: FigureData) -> None:
    """Fused mosaic with tile borders, a seam with/without blending, labels before/after."""
    stitched = [u for u in urls if Path(u).name.endswith(STITCHED_IMAGE.format(image=""))]
    if not stitched:
        for url in urls:
            candidate = Path(url).with_name(STITCHED_IMAGE.format(image=Path(url).name))
            if candidate.exists():
                stitched.append(str(candidate))
    if not stitched:
        data.missing["stitch_and_dedup"] = "no '{image}_stitched' image: run Stitch and Deduplicate"
        return
    url = stitched[0]
    source_url = Path(url).with_name(Path(url).name.removesuffix("_stitched"))
    container, source = _open(url), _open(source_url)
    full = container.get_image()
    overview = _level_for(container)
    scale = float(full.pixel_size.x) / float(overview.pixel_size.x)
    mosaic = _plane(overview, overview.axes)
    placed = container.get_roi_table(FOV_ROI_TABLE).dataframe
    read_from = source.get_roi_table(FOV_ROI_TABLE).dataframe
    pixel = float(full.pixel_size.x)
    boxes = []
    for _, row in placed.iterrows():
        y0, x0, h, w = _box_px(row, pixel)
        boxes.append((y0, x0, y0 + h, x0 + w))
    coarse = [tuple(int(round(v * scale)) for v in box) for box in boxes]
    data.panels.append(Panel("stitch_mosaic", f"Stitched mosaic, {len(boxes)} tiles (red: tile borders)",
                             panels.mark_boxes(panels.grey_rgb(mosaic), coarse, width=2)))
    # Seam zoom: where the first two tiles overlap, at full resolution.
    shape = dict(zip(full.axes, full.shape))
    a, b = boxes[0], boxes[1]
    seam_y = int((max(a[0], b[0]) + min(a[2], b[2])) / 2)
    seam_x = int((max(a[1], b[1]) + min(a[3], b[3])) / 2)
    half = SEAM_ZOOM // 2
    y0 = int(np.clip(seam_y - half, 0, max(0, shape["y"] - SEAM_ZOOM)))
    x0 = int(np.clip(seam_x - half, 0, max(0, shape["x"] - SEAM_ZOOM)))
    window = (y0, x0, min(shape["y"], y0 + SEAM_ZOOM), min(shape["x"], x0 + SEAM_ZOOM))
    blended = _plane(full, full.axes, y=slice(window[0], window[2]), x=slice(window[1], window[3]))
    source_image = source.get_image()
    unblended, _ = _place_tiles(source_image, read_from, boxes, window, pixel)
    low, high = np.percentile(blended, (1.0, 99.5))

    def grey(plane):
        scaled = np.clip((plane - low) / max(high - low, 1e-12), 0.0, 1.0)
        return np.repeat((scaled * 255).astype(np.uint8)[..., None], 3, axis=2)

    data.panels.append(Panel("stitch_seam_hard", "Seam zoom, no blending (last tile wins)", grey(unblended)))
    data.panels.append(Panel("stitch_seam_blended", "Seam zoom, blended (the task's output)", grey(blended)))
    # Labels before (per-tile labels at the solved positions) and after dedup.
    labels_name = next(iter(container.list_labels()), None)
    if labels_name is None or labels_name not in source.list_labels():
        data.missing["stitch_labels"] = "the stitched image has no label image from its tiles"
        return
    label_window = (0, 0, shape["y"], shape["x"])
    if max(shape["y"], shape["x"]) > OVERVIEW:
        label_window = (0, 0, min(shape["y"], CROP * 2), min(shape["x"], CROP * 2))
    before, parity = _place_tiles(source.get_label(labels_name, path="0"), read_from, boxes,
                                  label_window, pixel, labels=True)
    after_label = container.get_label(labels_name, path="0")
    after = _plane(after_label, after_label.axes,
                   y=slice(label_window[0], label_window[2]), x=slice(label_window[1], label_window[3]))
    data.panels.append(Panel("stitch_labels_before",
                             "Labels before de-duplication\n(colour = tile; cut objects show two colours)",
                             panels.tile_colour_panel(parity, before)))
    data.panels.append(Panel("stitch_labels_after",
                             f"After de-duplication: {len(np.unique(after)) - 1} objects, one colour each",
                             panels.object_colour_panel(after)))
    data.facts["dedup_labels"] = after  # type: ignore[assignment]


def _place_tiles(source_array, read_from, boxes, window, pixel, *, labels=False):
    """Paste each tile (read at its ROI) at its solved position within `window`, last wins."""
    y0w, x0w, y1w, x1w = window
    out = np.zeros((y1w - y0w, x1w - x0w), np.uint32 if labels else float)
    parity = np.zeros(out.shape, np.uint8)
    offset = 0
    lengths = {a: read_from[ROI_LENGTH_COLUMN.format(axis=a)] / pixel for a in "yx"}
    grid_rows = _grid_index([box[0] for box in boxes], lengths["y"])
    grid_cols = _grid_index([box[1] for box in boxes], lengths["x"])
    for index, ((_, row), box) in enumerate(zip(read_from.iterrows(), boxes)):
        ty, tx = int(round(box[0])), int(round(box[1]))
        sy, sx, h, w = (int(round(v)) for v in _box_px(row, pixel))
        ya, yb = max(ty, y0w), min(ty + h, y1w)
        xa, xb = max(tx, x0w), min(tx + w, x1w)
        if ya >= yb or xa >= xb:
            continue
        tile = _plane(source_array, source_array.axes,
                      y=slice(sy + ya - ty, sy + yb - ty), x=slice(sx + xa - tx, sx + xb - tx))
        if labels:
            tile = np.where(tile != 0, tile.astype(np.uint64) + offset, 0)
            offset += int(tile.max()) + 1
        out[ya - y0w : yb - y0w, xa - x0w : xb - x0w] = tile
        # A checkerboard by grid position: every pair of neighbours differs.
        parity[ya - y0w : yb - y0w, xa - x0w : xb - x0w] = (grid_rows[index] + grid_cols[index]) % 2
    return out, parity


def _grid_index(starts, lengths) -> list[int]:
    """Row (or column) of each tile in the grid: starts within half a tile of a row's first share it."""
    lengths = np.asarray(lengths, float)
    index, current, first = [0] * len(starts), -1, None
    for i in np.argsort(starts, kind="stable").tolist():
        if first is None or starts[i] - first > lengths[i] / 2:
            current, first = current + 1, starts[i]
        index[i] = current
    return index


def gather(*images_or_plates: str) -> FigureData:
    """Every panel that can be made from what the tasks wrote under these images or plates."""
    urls = [url for path in images_or_plates for url in _image_urls(str(path))]
    if not urls:
        from fractal_roi_tasks.errors import NotFoundError

        raise NotFoundError(f"No OME-Zarr image found in {', '.join(map(str, images_or_plates))}.")
    data = FigureData()
    segmentation_panels(urls, data)
    registration_panels(urls, data)
    stitching_panels(urls, data)
    from fractal_roi_tasks.figures.drift import drift_panels

    drift_panels(urls, data)
    return data
