"""Fractal init task: pair every image with its well's reference acquisition."""

from __future__ import annotations

import logging

from pydantic import validate_call

from fractal_roi_tasks.io.wells import reference_pairs, well_url_of

logger = logging.getLogger(__name__)


@validate_call
def init_calculate_registration(
    *,
    zarr_urls: list[str],
    zarr_dir: str,
    reference_acquisition: int = 0,
) -> dict:
    """Pair each image with the image of the reference acquisition of its well.

    Images are grouped by well with the well's own acquisition metadata. Every
    image that is not of the reference acquisition becomes one unit of work,
    registered against the reference image of its well. When an acquisition
    has several images in a well, they pair with the reference images by the
    part of their name after the first "_" (e.g. `1_illum_corr` with
    `0_illum_corr`).

    Args:
        zarr_urls: Images to process (set by Fractal).
        zarr_dir: Folder of the plate (set by Fractal; not used).
        reference_acquisition: Acquisition id of the reference cycle, as in
            the wells' metadata.
    """
    items = [
        {"zarr_url": pair.zarr_url, "init_args": {"reference_zarr_url": pair.reference_zarr_url}}
        for pair in reference_pairs(zarr_urls, reference_acquisition)
        if not pair.is_reference
    ]
    logger.info(
        "%d images of %d wells to register against acquisition %d",
        len(items),
        len({well_url_of(zarr_url) for zarr_url in zarr_urls}),
        reference_acquisition,
    )
    return {"parallelization_list": items}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=init_calculate_registration)
