"""The tasks this package offers; `fractal-manifest create` builds the manifest from it."""

from fractal_task_tools.task_models import ParallelTask

AUTHORS = "fractal-roi-tasks developers"
DOCS_LINK = None

TASK_LIST = [
    ParallelTask(
        name="Segment to ROIs",
        executable="tasks/segment_to_rois.py",
        meta={"cpus_per_task": 1, "mem": 8000},
        category="Measurement",
        modality="HCS",
        tags=["ROI", "Segmentation", "Measurement", "Fiji", "QuPath", "napari", "OMERO"],
        docs_info="file:../../docs/segment_to_rois.md",
    ),
]
