"""Fractal task: label image -> one ROI per object, with measurements."""

from __future__ import annotations

import logging
from typing import Literal, Optional

from pydantic import validate_call

from fractal_roi_tasks.arguments import SegmentationOptions, check_level
from fractal_roi_tasks.formats import get_format
from fractal_roi_tasks.io import ngio_tables
from fractal_roi_tasks.io.context import image_context
from fractal_roi_tasks.io.label_metadata import write_label_properties
from fractal_roi_tasks.io.open import open_image_container, require_label
from fractal_roi_tasks.io.table_write import add_table
from fractal_roi_tasks.names import (
    BRANCH_TABLE,
    FEATURE_TABLE,
    MASKING_ROI_TABLE,
    ROI_EXPORT_DIR,
    ROI_EXPORT_STEM,
    check_name,
)
from fractal_roi_tasks.rois.time_points import select_time_points

logger = logging.getLogger(__name__)


@validate_call
def segment_to_rois(
    *,
    zarr_url: str,
    label_name: str,
    segmentation: Optional[SegmentationOptions] = None,
    level: str = "0",
    min_area: int = 0,
    shape: Literal["polygon", "mask", "ellipse", "point", "skeleton"] = "polygon",
    skeletonize: bool = False,
    exports: list[Literal["json", "imagej", "geojson", "ome_xml"]] = [],  # noqa: B006
    time_points: Optional[list[int]] = None,
) -> dict:
    """Turn every object of a label image into a ROI with its measurements.

    Reads the label image (or first segments a channel into it), finds every
    object in one pass and writes a masking ROI table `{label_name}_ROI_table`
    (one bounding box per object, micrometers), a feature table
    `{label_name}_features` (area, perimeter, centroid, bounding box, in pixels
    and micrometers) and per-label colors and properties in the label image's
    metadata; for skeletons also `{label_name}_branches` (one row per branch);
    on request also ROI files for Fiji, QuPath, OMERO and napari next to the
    image, under `rois/{label_name}/`.

    On a time-lapse (a `t` axis of more than one time point, label image
    t(z)yx) each time point is its own image: objects are found per time
    point, one ROI per object per time point, named `t{t}-{label}`; the
    tables gain the time index `t` and the time in the image's unit (e.g.
    `time_s`), and the ROI files place each ROI at its time point. A single
    time point gives exactly what an image without `t` gives.

    Args:
        zarr_url: Path of the OME-Zarr image to process.
        label_name: The label image to read; with `segmentation`, the label
            image to write.
        segmentation: Segment a channel into `label_name` first, region by
            region of a ROI table, with ids unique across the image (on a
            time-lapse: each time point thresholded on its own, ids unique
            within each time point).
        level: Pyramid level to work on ("0" is full resolution).
        min_area: Smallest object kept, in pixels (voxels in 3D) of the
            chosen `level`; smaller objects get no ROI. 0 keeps every object.
        shape: The ROI shape: `polygon` (outline with holes; one per piece
            and per z-plane), `mask` (cropped binary mask), `ellipse` (fitted
            from the object's moments), `point` (centroid) or `skeleton` (the
            label image holds skeletons: one polyline per branch).
        skeletonize: With `skeleton`, skeletonize each object first (for a
            label image of thick objects).
        exports: Files to write besides the OME-Zarr tables: `json` (every
            shape and measurement), `imagej` (Fiji RoiSet .roi.zip), `geojson`
            (QuPath), `ome_xml` (OMERO, Bio-Formats; needs the `ome-xml`
            extra).
        time_points: The time points to work on, as indices along t (0 is
            the first); None: every one. Only for an image with a t axis.
    """
    check_name(label_name, what="label_name")
    if min_area < 0:
        raise ValueError(f"min_area must be >= 0, got {min_area}.")
    if skeletonize and shape != "skeleton":
        raise ValueError(f"skeletonize needs shape 'skeleton', got shape {shape!r}.")
    formats = [get_format(name) for name in dict.fromkeys(exports)]  # fail before writing
    ome_zarr = open_image_container(zarr_url)
    check_level(level, ome_zarr.level_paths)
    channel = None
    if segmentation is None:
        require_label(ome_zarr, label_name, zarr_url)
        source = ome_zarr.get_label(label_name, path=level)
    else:
        source = ome_zarr.get_image(path=level)
    chosen = select_time_points(source.dimensions.get("t"), time_points)
    if segmentation is not None:
        from fractal_roi_tasks.io.segment_image import segment_into_label

        channel = segment_into_label(
            ome_zarr, zarr_url, label_name, segmentation, level=level, time_points=chosen
        )

    label = ome_zarr.get_label(label_name, path=level)
    image = None if channel is None else ome_zarr.get_image(path=level)
    from fractal_roi_tasks.io.label_reads import measure_time_points, time_scale

    # The tables need no outlines: shapes are only traced for the files.
    measured_shape = shape if formats or shape == "skeleton" else "point"
    roi_set, skeletons, axes = measure_time_points(
        label, image, channel, chosen, shape=measured_shape, min_area=min_area,
        skeletonize=skeletonize,
    )
    time_step, time_unit = time_scale(label) if chosen else (None, None)

    masking_name = MASKING_ROI_TABLE.format(label_name=label_name)
    feature_name = FEATURE_TABLE.format(label_name=label_name)
    add_table(
        ome_zarr, zarr_url, masking_name,
        ngio_tables.masking_table(roi_set, label_name, time_step=time_step, time_unit=time_unit),
    )
    summaries = None if skeletons is None else skeletons.objects
    add_table(
        ome_zarr, zarr_url, feature_name, ngio_tables.feature_table(roi_set, label_name, summaries)
    )
    if skeletons is not None:
        add_table(
            ome_zarr, zarr_url, BRANCH_TABLE.format(label_name=label_name),
            ngio_tables.branch_table(skeletons.roi_set),
        )
    in_metadata = write_label_properties(
        zarr_url, label_name, ngio_tables.label_properties(roi_set)
    )
    exported = roi_set if skeletons is None else skeletons.roi_set

    written = []
    if formats:
        context = image_context(zarr_url)
        folder = f"{zarr_url.rstrip('/')}/{ROI_EXPORT_DIR.format(label_name=label_name)}"
        stem = ROI_EXPORT_STEM.format(prefix=context.file_prefix, label_name=label_name)
        about = {
            "zarr_url": zarr_url,
            "well": context.well,
            "image": context.image,
            "label_name": label_name,
            "level": level,
            "scale": ngio_tables.level_scale(ome_zarr, label, axes),
            "channel": channel,
        }
        if chosen:  # the files place each ROI at its time point (formats.context)
            about.update(
                n_time_points=source.dimensions.get("t"), time_spacing=time_step, time_unit=time_unit
            )
        for fmt in formats:
            written.append(str(fmt.write(f"{folder}/{stem}{fmt.EXTENSION}", exported, context=about)))

    logger.info(
        "%s: %d objects%s%s in %r (level %s, %d below min_area) -> %s, %s%s%s",
        zarr_url,
        len(roi_set.rois),
        "" if chosen is None else f" over {len(chosen)} time points",
        "" if skeletons is None else f", {len(exported.rois)} branches",
        label_name,
        level,
        roi_set.n_too_small,
        masking_name,
        feature_name,
        "" if in_metadata else " (too many labels for colors/properties in metadata)",
        f", files {written}" if written else "",
    )
    return {"image_list_updates": [{"zarr_url": zarr_url}]}


if __name__ == "__main__":
    from fractal_task_tools.task_wrapper import run_fractal_task

    run_fractal_task(task_function=segment_to_rois)
