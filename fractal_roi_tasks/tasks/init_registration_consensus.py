"""Fractal init task: one unit of work per well (per reference image)."""

from __future__ import annotations

import logging

from pydantic import validate_call

from fractal_roi_tasks.io.wells import reference_pairs

logger = logging.getLogger(__name__)


@validate_call
def init_registration_consensus(
    *,
    zarr_urls: list[str],
    zarr_dir: str,
    reference_acquisition: int = 0,
) -> dict:
    """Group the images of each well around its reference image.

    Args:
        zarr_urls: Images to process (set by Fractal).
        zarr_dir: Folder of the plate (set by Fractal; not used).
        reference_acquisition: Acquisition id of the reference cycle, as in
            the wells' metadata.
    """
    groups: dict[str, list[str]] = {}
    for pair in reference_pairs(zarr_urls, reference_acquisition):
        members = groups.setdefault(pair.reference_zarr_url, [pair.reference_zarr_url])
        if not pair.is_reference:
            members.append(pair.zarr_url)
    items = [
        {"zarr_url": reference, "init_args": {"zarr_url_list": members}}
        for reference, members in groups.items()
    ]
    logger.info("%d wells (reference images) to find the consensus of", len(items))
    return {"parallelization_list": items}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=init_registration_consensus)
