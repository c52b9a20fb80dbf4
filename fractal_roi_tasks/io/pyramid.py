"""Build the pyramid levels of an ngio Image or Label from its level 0, in bounded memory.

ngio's ``consolidate(mode="auto")`` builds a small pyramid in memory (numpy,
about 1.6x level 0) and a large one block by block through dask, and it takes
the in-memory path only where both give the same pixels. `build_pyramid`
therefore gives exactly what ``consolidate(mode="auto")`` gives, with its own,
lower bound on the in-memory path (`IN_MEMORY_MAX_BYTES`) and the dask path's
threads and blocks capped, so that memory stays a few write blocks per worker
whatever the image size.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

IN_MEMORY_MAX_BYTES = 64 * 2**20
"""Level 0 up to this size is downsampled in memory (fast on small images)."""
BLOCK_BYTES = 4 * 2**20
"""The most one dask task assembles before writing it (ngio's own default cap)."""
MAX_WORKERS = 2
"""Threads downsampling at once: a task stays within the CPUs it declares."""


def build_pyramid(image, *, in_memory_max_bytes: int | None = None) -> None:
    """Write every other level of `image` (an ngio Image or Label) from its level 0.

    Pixel-identical to ``image.consolidate(mode="auto")`` (images: linear,
    labels: nearest, as ngio does); memory is bounded by `in_memory_max_bytes`
    (times about 1.6) or, above it, by a few blocks of `BLOCK_BYTES` per worker.

    Args:
        image: an ngio ``Image`` or ``Label`` opened at its full resolution,
            whose level 0 is written.
        in_memory_max_bytes: level 0 up to this size is downsampled in memory
            (default `IN_MEMORY_MAX_BYTES`); 0 never.
    """
    import dask

    if in_memory_max_bytes is None:
        in_memory_max_bytes = IN_MEMORY_MAX_BYTES

    source_bytes = image.zarr_array.nbytes
    mode = "auto" if source_bytes <= in_memory_max_bytes else "dask"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = max(1, min(MAX_WORKERS, cpus))
    logger.debug("pyramid of %s (%d bytes): mode %s", image.zarr_array.path, source_bytes, mode)
    with dask.config.set({"array.chunk-size": BLOCK_BYTES, "scheduler": "threads", "num_workers": workers}):
        image.consolidate(mode=mode)
