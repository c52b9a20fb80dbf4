"""Table names, column names and output-name templates, in one place."""

from fractal_roi_tasks.errors import InvalidNameError

FOV_ROI_TABLE = "FOV_ROI_table"
WELL_ROI_TABLE = "well_ROI_table"
MASKING_ROI_TABLE = "{label_name}_ROI_table"
FEATURE_TABLE = "{label_name}_features"
BRANCH_TABLE = "{label_name}_branches"
ROI_EXPORT_DIR = "rois/{label_name}"
ROI_EXPORT_STEM = "{prefix}{label_name}_rois"


# Names a store keeps for itself: a label or table of one of these names would
# overwrite the group's own metadata (zarr v3, and zarr v2's keys).
_STORE_NAMES = frozenset({"zarr.json", ".zattrs", ".zgroup", ".zarray", ".zmetadata"})


def check_name(value: str, *, what: str) -> str:
    """Return ``value`` if it is a plain name, else raise `InvalidNameError`.

    Names of labels, tables and channels are names, never paths: a task joins
    them to a folder (``labels/{name}``, ``tables/{name}``), so a name that is
    empty or blank, that holds ``/``, ``\\`` or ``..``, that is ``.`` or only
    dots, that starts with a dot (hidden files, zarr's ``.zattrs``), that is
    zarr's own ``zarr.json``, that holds a control character (newline, tab,
    NUL...) or that starts or ends with spaces could make a task write
    outside the image, into a group's metadata, or under a name no one can
    type back.

    >>> check_name("nuclei", what="label_name")
    'nuclei'
    >>> check_name(".", what="label_name")
    Traceback (most recent call last):
    ...
    fractal_roi_tasks.errors.InvalidNameError: label_name must be a plain name, not a path: got '.' (a name of dots only is a folder or its parent).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidNameError(f"{what} must be a non-empty name, got {value!r}.")
    if "/" in value or "\\" in value or ".." in value:
        raise InvalidNameError(
            f"{what} must be a plain name, not a path: got {value!r} "
            "(remove '/', '\\' and '..')."
        )
    if not value.strip("."):
        raise InvalidNameError(
            f"{what} must be a plain name, not a path: got {value!r} "
            "(a name of dots only is a folder or its parent)."
        )
    bad = [c for c in value if not c.isprintable()]
    if bad:
        raise InvalidNameError(
            f"{what} must be a plain name without control characters: got {value!r} "
            f"(remove {', '.join(repr(c) for c in dict.fromkeys(bad))})."
        )
    if value != value.strip():
        raise InvalidNameError(
            f"{what} must not start or end with spaces, got {value!r}."
        )
    if value.startswith("."):
        raise InvalidNameError(
            f"{what} must not start with '.': got {value!r} (hidden files and zarr's own "
            "'.zattrs', '.zgroup' start with a dot)."
        )
    if value.casefold() in _STORE_NAMES:
        raise InvalidNameError(
            f"{what} must not be {value!r}: zarr keeps its group metadata under that name; "
            "choose another name."
        )
    return value


# ROI tables (ngio's columns, micrometers): where each ROI starts, how long it
# is, and where the stage was (a converter's `*_original`). Use with
# `.format(axis="y")`.
ROI_START_COLUMN = "{axis}_micrometer"
ROI_LENGTH_COLUMN = "len_{axis}_micrometer"
STAGE_COLUMN = "{axis}_micrometer_original"

# Registration: fractal-tasks-core's columns and naming, plus ours.
TRANSLATION_COLUMN = "translation_{axis}"
TRANSLATION_COLUMNS = tuple(TRANSLATION_COLUMN.format(axis=a) for a in "zyx")
QUALITY_COLUMN = "registration_quality"
FALLBACK_COLUMN = "registration_fallback"
REFERENCE_COLUMN = "{axis}_micrometer_reference"
REFERENCE_COLUMNS = tuple(REFERENCE_COLUMN.format(axis=a) for a in "zyx")
REGISTERED_TABLE = "{roi_table}_registered"

# Stitching: where each tile went and how sure we are.
STITCHED_IMAGE = "{image}_stitched"
STITCH_CORRECTION_COLUMNS = ("stitch_correction_y_micrometer", "stitch_correction_x_micrometer")
STITCH_QUALITY_COLUMN = "stitch_quality"
STITCH_FALLBACK_COLUMN = "stitch_fallback"
STITCH_LINKS_TABLE = "stitching_links"

# Time series (Segment to ROIs): the time index of each row, the time in the
# image's t unit (`rois.time_points.time_column` names it, e.g. "time_s"), and
# the row index of tables whose rows span time points (label ids repeat across
# t, so rows are named like the ROIs: "t3-7").
TIME_INDEX_COLUMN = "t"
TIME_COLUMN = "time_{unit}"
ROI_NAME_INDEX = "roi_name"

# Drift (Calculate Drift -> Apply Drift Correction): the drift table, one row
# per time point (`io.drift_table` documents each column), and the key under
# which its attributes record what the drift was measured on. The shift
# columns take `.format(axis="y")`; the time index is TIME_INDEX_COLUMN.
DRIFT_TABLE = "drift_table"
DRIFT_TIME_COLUMN = "time"
DRIFT_SHIFT_PX_COLUMN = "shift_{axis}_px"
DRIFT_SHIFT_UM_COLUMN = "shift_{axis}_um"
DRIFT_QUALITY_COLUMN = "quality"
DRIFT_BLANK_COLUMN = "blank"
DRIFT_INTERPOLATED_COLUMN = "interpolated"
DRIFT_REFERENCE_COLUMN = "reference"
DRIFT_FLAG_COLUMNS = (DRIFT_BLANK_COLUMN, DRIFT_INTERPOLATED_COLUMN, DRIFT_REFERENCE_COLUMN)
DRIFT_SOURCE_ATTRS = "drift_source"
