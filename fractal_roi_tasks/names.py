"""Table names, column names and output-name templates, in one place."""

from fractal_roi_tasks.errors import InvalidNameError

FOV_ROI_TABLE = "FOV_ROI_table"
WELL_ROI_TABLE = "well_ROI_table"
MASKING_ROI_TABLE = "{label_name}_ROI_table"
FEATURE_TABLE = "{label_name}_features"
BRANCH_TABLE = "{label_name}_branches"
ROI_EXPORT_DIR = "rois/{label_name}"
ROI_EXPORT_STEM = "{prefix}{label_name}_rois"


def check_name(value: str, *, what: str) -> str:
    """Return ``value`` if it is a plain name, else raise `InvalidNameError`.

    Names of labels, tables and channels are names, never paths: an empty
    name, a ``/`` or a ``..`` could make a task write outside the image.

    >>> check_name("nuclei", what="label_name")
    'nuclei'
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidNameError(f"{what} must be a non-empty name, got {value!r}.")
    if "/" in value or "\\" in value or ".." in value:
        raise InvalidNameError(
            f"{what} must be a plain name, not a path: got {value!r} "
            "(remove '/', '\\' and '..')."
        )
    if value != value.strip():
        raise InvalidNameError(
            f"{what} must not start or end with spaces, got {value!r}."
        )
    return value

# Registration: fractal-tasks-core's columns and naming, plus ours.
TRANSLATION_COLUMNS = ("translation_z", "translation_y", "translation_x")
QUALITY_COLUMN = "registration_quality"
FALLBACK_COLUMN = "registration_fallback"
REFERENCE_COLUMNS = ("z_micrometer_reference", "y_micrometer_reference", "x_micrometer_reference")
REGISTERED_TABLE = "{roi_table}_registered"

# Stitching: where each tile went and how sure we are.
STITCHED_IMAGE = "{image}_stitched"
STITCH_CORRECTION_COLUMNS = ("stitch_correction_y_micrometer", "stitch_correction_x_micrometer")
STITCH_QUALITY_COLUMN = "stitch_quality"
STITCH_FALLBACK_COLUMN = "stitch_fallback"
STITCH_LINKS_TABLE = "stitching_links"
