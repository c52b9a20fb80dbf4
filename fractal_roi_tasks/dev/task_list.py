"""The tasks this package offers; `fractal-manifest create` builds the manifest from it.

Listed in workflow order: the demo runs them in this order.
"""

from fractal_task_tools.task_models import CompoundTask, ParallelTask

AUTHORS = "fractal-roi-tasks developers"
DOCS_LINK = None

TASK_LIST = [
    CompoundTask(
        name="Calculate Registration (image-based)",
        executable_init="tasks/init_calculate_registration.py",
        executable="tasks/calculate_registration.py",
        meta_init={"cpus_per_task": 1, "mem": 1000},
        meta={"cpus_per_task": 1, "mem": 8000},
        category="Registration",
        modality="HCS",
        tags=["Multiplexing", "Registration", "Sub-pixel", "fractal-tasks-core compatible"],
        docs_info="file:../../docs/calculate_registration.md",
    ),
    CompoundTask(
        name="Find Registration Consensus",
        executable_init="tasks/init_registration_consensus.py",
        executable="tasks/find_registration_consensus.py",
        meta_init={"cpus_per_task": 1, "mem": 1000},
        meta={"cpus_per_task": 1, "mem": 2000},
        category="Registration",
        modality="HCS",
        tags=["Multiplexing", "Registration", "fractal-tasks-core compatible"],
        docs_info="file:../../docs/find_registration_consensus.md",
    ),
    ParallelTask(
        name="Apply Registration to Image",
        executable="tasks/apply_registration_to_image.py",
        # Measured peak RSS (benchmarks/bench_memory.py, tests/test_apply_memory.py):
        # 390 MiB at 2 x 4096^2 (the largest in-memory pyramid), 310-340 MiB at
        # 2 x 8192^2 (block copy, chunked pyramid); independent of the image size.
        meta={"cpus_per_task": 1, "mem": 2000},
        category="Registration",
        modality="HCS",
        tags=["Multiplexing", "Registration", "Crash-safe", "fractal-tasks-core compatible"],
        docs_info="file:../../docs/apply_registration_to_image.md",
    ),
    ParallelTask(
        name="Segment to ROIs",
        executable="tasks/segment_to_rois.py",
        # Label images: 462 MiB peak at 4096^2 (read whole), 404 MiB at 8192^2 (block by
        # block); kept high because segmentation and skeleton modes still read whole images.
        meta={"cpus_per_task": 1, "mem": 8000},
        category="Measurement",
        modality="HCS",
        tags=["ROI", "Segmentation", "Measurement", "Fiji", "QuPath", "napari", "OMERO"],
        docs_info="file:../../docs/segment_to_rois.md",
    ),
    ParallelTask(
        name="Stitch and Deduplicate",
        executable="tasks/stitch_and_dedup.py",
        meta={"cpus_per_task": 1, "mem": 4000},
        category="Image Processing",
        modality="HCS",
        tags=["Stitching", "Tiles", "Label de-duplication", "Sub-pixel", "Crash-safe"],
        docs_info="file:../../docs/stitch_and_dedup.md",
    ),
]
