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
        # Measured peak RSS (tests/test_registration_memory.py, docs/calculate_registration.md):
        # 465 MiB on a 4 x 8-field 48-plane well (768 MiB a channel), 571 MiB with 384
        # planes, 294 MiB on 2 x 8192^2: bounded by one ROI pair at the coarse level and
        # 96 px windows (a larger ROI is measured on its central 64 MiB); the margin is
        # for fields of 2160 x 2560 (about 20x the measured 512^2) at the coarse level.
        meta={"cpus_per_task": 1, "mem": 2000},
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
        # Reads tables only: 239-240 MiB peak on every well measured, whatever its size.
        meta={"cpus_per_task": 1, "mem": 1000},
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
        # Measured peak RSS (tests/test_segment_memory.py, docs/segment_to_rois.md): 443 MiB
        # reading an 8192^2 uint32 label image, 546 MiB segmenting 8192^2, 817 MiB segmenting
        # 12288^2 (97k nuclei: the tables grow ~2.5 KB per object), 766 MiB for skeletons on
        # 8192^2 uint64; blocks and ROIs, not the image, bound the rest.
        meta={"cpus_per_task": 1, "mem": 2000},
        category="Measurement",
        modality="HCS",
        tags=["ROI", "Segmentation", "Measurement", "Fiji", "QuPath", "napari", "OMERO"],
        docs_info="file:../../docs/segment_to_rois.md",
    ),
    ParallelTask(
        name="Stitch and Deduplicate",
        executable="tasks/stitch_and_dedup.py",
        # Measured peak RSS (tests/test_stitch_memory.py, docs/stitch_and_dedup.md): 356 MiB
        # on 5 x 10 tiles of 1024 px, 358 MiB on 9 x 19 (8k x 16.7k px, 2 channels), 366
        # MiB with 5,000 objects; about 2 KB more per object (the masking ROI table).
        meta={"cpus_per_task": 1, "mem": 2000},
        category="Image Processing",
        modality="HCS",
        tags=["Stitching", "Tiles", "Label de-duplication", "Sub-pixel", "Crash-safe"],
        docs_info="file:../../docs/stitch_and_dedup.md",
    ),
    ParallelTask(
        name="Calculate Drift",
        executable="tasks/calculate_drift.py",
        # Measured peak RSS (docs/calculate_drift.md): 252 MiB on 6 x 128^2 frames, 263 MiB
        # on 100 x 384^2, 299 MiB on 30 x 20 x 256^2: frames are read one time point at a
        # time and at most max_step + 2 (10) are held, whatever T. Estimated, not measured:
        # 2000 holds frames up to ~45 Mpx (10 uint16 frames plus one float pair), e.g. 2D
        # 6000^2 or 40 x 1000^2; a 40 x 2048^2 stack needs level 1 or more.
        meta={"cpus_per_task": 1, "mem": 2000},
        category="Registration",
        modality="Time lapse",
        tags=["Drift correction", "Time lapse", "Registration", "Sub-pixel"],
        docs_info="file:../../docs/calculate_drift.md",
    ),
    ParallelTask(
        name="Apply Drift Correction",
        executable="tasks/apply_drift_correction.py",
        # Measured peak RSS (docs/apply_drift_correction.md): 361-363 MiB on 100 x 384^2
        # (2 channels and a label; the in-memory pyramid of a small image), 314 MiB on
        # 20 x 16 x 384^2: block copy, one time point per block, independent of T.
        meta={"cpus_per_task": 1, "mem": 1000},
        category="Registration",
        modality="Time lapse",
        tags=["Drift correction", "Time lapse", "Crash-safe"],
        docs_info="file:../../docs/apply_drift_correction.md",
    ),
]
