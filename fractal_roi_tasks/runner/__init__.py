"""Run the package's Fractal tasks without a Fractal server.

Reads the task list from the installed ``__FRACTAL_MANIFEST__.json`` and runs
each task exactly as a Fractal server does: one ``python -m
fractal_roi_tasks.tasks.<module> --args-json A --out-json B`` process per
image (several at once), the init part of a compound task first. Nothing here
prints or configures logging: results come back as dataclasses and progress
through a callback.

>>> task = find_task("segment_to_rois")
>>> task.name, task.type
('Segment to ROIs', 'parallel')
"""

from fractal_roi_tasks.runner.arguments import argument_schema, split_arguments, task_arguments
from fractal_roi_tasks.runner.execute import run_task
from fractal_roi_tasks.runner.images import default_zarr_dir, display_name, image_urls
from fractal_roi_tasks.runner.manifest import TaskSpec, find_task, list_tasks

__all__ = [
    "TaskSpec",
    "argument_schema",
    "default_zarr_dir",
    "display_name",
    "find_task",
    "image_urls",
    "list_tasks",
    "run_task",
    "split_arguments",
    "task_arguments",
]
