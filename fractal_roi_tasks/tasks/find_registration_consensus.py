"""Fractal compute task: the region of each ROI that every acquisition sees."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import pandas as pd
from pydantic import Field, validate_call
from typing_extensions import Annotated

from fractal_roi_tasks.arguments import WellAcquisitions
from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.open import open_image_container
from fractal_roi_tasks.io.roi_tables import read_roi_table, write_roi_table
from fractal_roi_tasks.names import (
    FALLBACK_COLUMN,
    FOV_ROI_TABLE,
    QUALITY_COLUMN,
    REFERENCE_COLUMNS,
    REGISTERED_TABLE,
    ROI_LENGTH_COLUMN,
    ROI_START_COLUMN,
    TRANSLATION_COLUMNS,
    check_name,
)

logger = logging.getLogger(__name__)
_AXES = ("z", "y", "x")


@validate_call
def find_registration_consensus(
    *,
    zarr_url: str,
    init_args: WellAcquisitions,
    roi_table: str = FOV_ROI_TABLE,
    registered_roi_table: Optional[str] = None,
    min_quality: Annotated[float, Field(ge=-1, le=1)] = 0.3,
) -> dict:
    """Find, for every ROI, the region that every acquisition of the well sees.

    Reads the translations Calculate Registration wrote into each
    acquisition's `roi_table` and writes `{roi_table}_registered` (or
    `registered_roi_table`) into every acquisition, the reference included:
    one row per ROI with its region in that acquisition, in micrometers on
    whole pixels of full resolution (so that the regions an apply step pairs
    have equal shapes), the translation used, and where the region lies in
    the reference (`*_micrometer_reference`), so applying the registration to
    one image never needs to read another. A ROI whose registration quality
    is below `min_quality` takes the median translation of its acquisition's
    other ROIs; this is logged and marked in `registration_fallback`.

    Args:
        zarr_url: The well's reference image (set by Fractal).
        init_args: Set by the init part: every image of the well.
        roi_table: The ROI table Calculate Registration worked through.
        registered_roi_table: Name of the table to write; default
            `{roi_table}_registered`.
        min_quality: ROIs registered with a lower quality (normalized
            cross-correlation, -1 to 1) fall back to the median translation.
    """
    check_name(roi_table, what="roi_table")
    output = registered_roi_table or REGISTERED_TABLE.format(roi_table=roi_table)
    check_name(output, what="registered_roi_table")
    urls = list(dict.fromkeys([zarr_url, *init_args.zarr_url_list]))
    images = {url: open_image_container(url) for url in urls}
    tables = {url: read_roi_table(images[url], roi_table, url) for url in urls}
    names = list(tables[zarr_url][1].index)
    pixel = _pixel_size(images[zarr_url])
    translations = {}
    for url in urls:
        frame = tables[url][1]
        if set(frame.index) != set(names):
            raise InvalidInputError(
                f"The ROIs of {roi_table!r} in {url!r} ({sorted(frame.index)}) differ from "
                f"the reference's ({sorted(names)}); registration pairs ROIs by name."
            )
        if not np.allclose(_pixel_size(images[url]), pixel):
            raise InvalidInputError(f"{url!r} has another pixel size than the reference {zarr_url!r}.")
        translations[url] = _translations(url, frame.loc[names], zarr_url, min_quality)

    from fractal_roi_tasks.registration import consensus_boxes

    reference = tables[zarr_url][1].loc[names]
    boxes = {}
    for name in names:
        row = reference.loc[name]
        start = [row[ROI_START_COLUMN.format(axis=a)] / p for a, p in zip(_AXES, pixel)]
        length = [row[ROI_LENGTH_COLUMN.format(axis=a)] / p for a, p in zip(_AXES, pixel)]
        shifts = {url: translations[url][0].loc[name].to_numpy() / pixel for url in urls}
        boxes[name] = consensus_boxes(start, length, shifts)

    for url in urls:
        table, frame = tables[url]
        frame = frame.loc[names].copy()
        used, fallback, quality = translations[url]
        for a, p in enumerate(pixel):
            axis = _AXES[a]
            frame[ROI_START_COLUMN.format(axis=axis)] = [boxes[n][url].start_px[a] * p for n in names]
            frame[ROI_LENGTH_COLUMN.format(axis=axis)] = [boxes[n][url].length_px[a] * p for n in names]
            frame[REFERENCE_COLUMNS[a]] = [boxes[n][url].reference_start_px[a] * p for n in names]
        frame[list(TRANSLATION_COLUMNS)] = used.to_numpy()
        frame[QUALITY_COLUMN] = quality
        frame[FALLBACK_COLUMN] = fallback.astype(float)
        write_roi_table(images[url], output, frame, like=table)
    logger.info("%s: %s written to %d acquisitions, %d ROIs", zarr_url, output, len(urls), len(names))
    return {"image_list_updates": [{"zarr_url": url} for url in urls]}


def _pixel_size(ome_zarr) -> np.ndarray:
    size = ome_zarr.get_image(path=ome_zarr.level_paths[0]).pixel_size
    return np.array([size.z, size.y, size.x], dtype=float)


def _translations(url, frame: pd.DataFrame, reference_url, min_quality):
    """(translations used, fallback flags, quality) of one acquisition's ROIs."""
    from fractal_roi_tasks.registration.consensus import choose_translations

    columns = list(TRANSLATION_COLUMNS)
    if url == reference_url:
        zeros = pd.DataFrame(0.0, index=frame.index, columns=columns)
        return zeros, np.zeros(len(frame), bool), np.ones(len(frame))
    missing = [c for c in columns if c not in frame]
    if missing:
        raise NotFoundError(
            f"{url!r} has no {missing} in its ROI table: run Calculate Registration "
            "(image-based) on this plate first."
        )
    quality = frame[QUALITY_COLUMN].to_numpy(float) if QUALITY_COLUMN in frame else np.ones(len(frame))
    chosen = choose_translations(
        frame[columns].to_numpy(float), quality, min_quality=min_quality, where=repr(url)
    )
    if chosen.fallback.any():
        logger.warning(
            "%s: ROIs %s registered with quality below %s take the median translation %s",
            url, list(frame.index[chosen.fallback]), min_quality,
            chosen.translations[chosen.fallback][0].round(4).tolist(),
        )
    used = pd.DataFrame(chosen.translations, index=frame.index, columns=columns)
    return used, chosen.fallback, chosen.quality


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=find_registration_consensus)
