"""`check_name`: names of labels, tables and channels are names, never paths."""

import pytest

from fractal_roi_tasks.errors import InvalidNameError
from fractal_roi_tasks.names import check_name


@pytest.mark.parametrize(
    "good",
    ["nuclei", "cell_ROI_table", "DAPI 405nm", "sample.zarr", "nuclei.v2", "Kern-µm", "a", "0"],
)
def test_plain_names_pass_unchanged(good):
    assert check_name(good, what="label_name") is good


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", r"label_name must be a non-empty name, got ''"),
        ("   ", r"label_name must be a non-empty name"),
        ("../nuclei", r"not a path: got '\.\./nuclei' \(remove '/', '\\' and '\.\.'\)"),
        ("..", r"not a path: got '\.\.'"),
        ("...", r"not a path: got '\.\.\.'"),
        (".", r"not a path: got '\.' \(a name of dots only is a folder or its parent\)"),
        ("a/b", r"not a path: got 'a/b'"),
        ("a\\b", r"not a path"),
        ("nuclei\x00", r"without control characters: got 'nuclei\\x00' \(remove '\\x00'\)"),
        ("nu\nclei", r"without control characters: .* \(remove '\\n'\)"),
        ("\tnuclei", r"without control characters"),
        ("nuclei\x7f", r"without control characters"),
        (" nuclei", r"must not start or end with spaces, got ' nuclei'"),
        ("nuclei ", r"must not start or end with spaces"),
        (".zattrs", r"must not start with '\.': got '\.zattrs'"),
        (".hidden", r"must not start with '\.'"),
        ("zarr.json", r"must not be 'zarr\.json': zarr keeps its group metadata"),
        ("ZARR.JSON", r"must not be 'ZARR\.JSON'"),
    ],
)
def test_paths_and_special_names_are_refused(bad, message):
    with pytest.raises(InvalidNameError, match=message):
        check_name(bad, what="label_name")


def test_the_error_names_the_argument_and_is_a_value_error():
    with pytest.raises(ValueError, match=r"^roi_table must be a plain name, not a path: got '\.'"):
        check_name(".", what="roi_table")


def test_non_strings_are_refused():
    with pytest.raises(InvalidNameError, match="label_name must be a non-empty name, got None"):
        check_name(None, what="label_name")
