"""ImageJ RoiSet export: written, read back with roifile, filled as ImageJ fills.

ImageJ's rule (ij.process.PolygonFiller, also behind composite ShapeRois):
pixel (x, y) is inside when its centre (x + 0.5, y + 0.5) is, even-odd over
all subpaths; `consumer_raster.fill_even_odd` implements it.
"""

import math
import re
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import roifile
from roifile import ROI_OPTIONS, ROI_SUBTYPE, ROI_TYPE

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats import get_format, imagej, imagej_properties
from fractal_roi_tasks.formats.coordinates import ELLIPSE_VERTICES, scaled_ellipse
from fractal_roi_tasks.rois import extract_rois
from tests.consumer_raster import fill_even_odd, paint
from tests.label_cases import hard_cases_2d, hard_cases_3d
from tests.shape_cases import (
    assert_same_ellipses,
    axis_aligned_blobs,
    ellipse_covariance,
    skeleton_roi_set,
)


def _label_image(case, nuclei):
    return hard_cases_2d() if case == "hard" else nuclei


def _roundtrip(tmp_path, roi_set, context=None):
    path = imagej.write(tmp_path / f"rois{imagej.EXTENSION}", roi_set, context=context)
    assert path.name.endswith(".roi.zip")
    return roifile.roiread(path)


def _rings(roi):
    """What ImageJ fills: a composite's subpaths, else the polygon."""
    return roi.coordinates(multi=True)


def _rebuild(rois, shape, *, planes=None):
    """Fill every ROI the ImageJ way into a label image (per plane in 3D)."""
    out = np.zeros(shape if planes is None else (planes, *shape), np.int64)
    for roi in rois:
        target = out if planes is None else out[roi.z_position - 1]
        paint(target, fill_even_odd(_rings(roi), shape), int(roi.properties["label"]))
    return out


# --------------------------------------------------------------------------
# Outlines


@pytest.mark.parametrize("kind", ["polygon", "mask"])
@pytest.mark.parametrize("case", ["hard", "nuclei"])
def test_outlines_fill_back_to_exactly_the_labels(tmp_path, nuclei, kind, case):
    labels = _label_image(case, nuclei)
    rois = _roundtrip(tmp_path, extract_rois(labels, shape=kind))
    assert len(rois) == len(np.unique(labels)) - 1
    np.testing.assert_array_equal(_rebuild(rois, labels.shape), labels)


def test_holes_and_pieces_become_composites_simple_outlines_traced(tmp_path):
    rois = {
        int(r.properties["label"]): r for r in _roundtrip(tmp_path, extract_rois(hard_cases_2d()))
    }
    # 3: hole with an island; 70000 and 14: two pieces; 13: a hole holding a pixel of 14
    for label in (3, 13, 14, 70_000):
        assert rois[label].composite and rois[label].roitype == ROI_TYPE.RECT
    assert len(rois[3].coordinates(multi=True)) == 3  # outer ring, hole, island
    for label in (9, 11, 12):
        assert not rois[label].composite and rois[label].roitype == ROI_TYPE.TRACED
        assert not rois[label].subpixelresolution  # corners on integers: exact ints
    # the one-pixel object on the top border is the unit square at x=30, y=0
    np.testing.assert_array_equal(
        np.sort(rois[9].coordinates(), axis=0), [[30, 0], [30, 0], [31, 1], [31, 1]]
    )


@pytest.mark.parametrize("kind", ["polygon", "mask"])
def test_3d_outlines_fill_back_plane_by_plane(tmp_path, kind):
    labels = hard_cases_3d()
    rois = _roundtrip(tmp_path, extract_rois(labels, shape=kind))
    rebuilt = _rebuild(rois, labels.shape[1:], planes=labels.shape[0])
    np.testing.assert_array_equal(rebuilt, labels)
    for roi in rois:
        assert roi.name.endswith(f"-z{roi.z_position - 1:02d}")
        assert int(roi.properties["z"]) == roi.z_position - 1
    # label 9 is absent from the middle plane: no ROI there
    assert sorted(r.z_position for r in rois if int(r.properties["label"]) == 9) == [1, 3]


def test_scale_doubles_coordinates_around_pixel_corners(tmp_path):
    labels = np.zeros((6, 8), np.uint16)
    labels[1:3, 1:4] = 5  # rows 1-2, columns 1-3
    (roi,) = _roundtrip(tmp_path, extract_rois(labels), context={"scale": (2.0, 2.0)})
    assert roi.roitype == ROI_TYPE.TRACED
    corners = {tuple(p) for p in roi.coordinates().tolist()}
    assert corners == {(2, 2), (8, 2), (8, 6), (2, 6)}  # full-resolution pixels 2..7 x 2..5


def test_scaled_outlines_fill_the_full_resolution_pixels(tmp_path):
    labels = hard_cases_2d()
    rois = _roundtrip(tmp_path, extract_rois(labels), context={"scale": (2.0, 2.0)})
    full = np.kron(labels, np.ones((2, 2), labels.dtype))
    np.testing.assert_array_equal(_rebuild(rois, full.shape), full)


def test_fractional_scale_gives_sub_pixel_polygons(tmp_path):
    labels = np.zeros((6, 8), np.uint16)
    labels[1:3, 1:4] = 5
    (roi,) = _roundtrip(tmp_path, extract_rois(labels), context={"scale": (1.5, 1.5)})
    assert roi.roitype == ROI_TYPE.POLYGON and roi.subpixelresolution
    corners = {tuple(p) for p in roi.coordinates().tolist()}
    assert corners == {(1.5, 1.5), (6.0, 1.5), (6.0, 4.5), (1.5, 4.5)}


# --------------------------------------------------------------------------
# Names, positions, measurements, files


def test_names_are_unique_sortable_and_from_the_label(tmp_path, nuclei):
    for labels in (hard_cases_2d(), nuclei, hard_cases_3d()):
        rois = _roundtrip(tmp_path, extract_rois(labels))
        names = [r.name for r in rois]
        assert len(set(names)) == len(names)
        assert names == sorted(names)  # zero-padded: text order is label (then plane) order
        for roi in rois:
            match = re.fullmatch(r"label-(\d{4,})(-z\d{2,})?", roi.name)
            assert match and int(match.group(1)) == int(roi.properties["label"])
    with zipfile.ZipFile(tmp_path / "rois.roi.zip") as archive:
        assert archive.namelist() == [f"{r.name}.roi" for r in rois]


def test_positions_2d_everywhere_3d_on_its_plane(tmp_path):
    rois_2d = _roundtrip(tmp_path, extract_rois(hard_cases_2d(), shape="point"))
    assert {(r.position, r.c_position, r.z_position, r.t_position) for r in rois_2d} == {
        (0, 0, 0, 0)
    }
    with_channel = _roundtrip(tmp_path, extract_rois(hard_cases_2d()), context={"channel": 2})
    assert {(r.c_position, r.z_position, r.t_position) for r in with_channel} == {(3, 0, 0)}
    rois_3d = _roundtrip(tmp_path, extract_rois(hard_cases_3d(), shape="ellipse"))
    assert {r.z_position for r in rois_3d} == {1, 2, 3}
    assert all(r.c_position == 0 and r.t_position == 0 and r.position == 0 for r in rois_3d)


def test_measurements_travel_as_roi_properties(tmp_path, nuclei):
    roi_set = extract_rois(nuclei, spacing=(0.5, 0.5))
    rois = _roundtrip(tmp_path, roi_set, context={"label_name": "nuclei"})
    features = roi_set.features.set_index("label")
    assert len(rois) == len(features) == 168
    for roi in rois:
        props = roi.properties
        row = features.loc[props["label"]]
        assert props["label_name"] == "nuclei"
        for column in ("area_px", "area_um2", "perimeter_um", "centroid_x_um", "bbox_len_y_px"):
            assert props[column] == pytest.approx(row[column], rel=1e-15)


def test_second_write_replaces_the_first(tmp_path):
    path = tmp_path / "x" / "rois.roi.zip"
    imagej.write(path, extract_rois(hard_cases_2d()))
    only_12 = np.where(hard_cases_2d() == 12, 12, 0)
    imagej.write(path, extract_rois(only_12))
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["label-0012.roi"]
    assert [r.name for r in roifile.roiread(path)] == ["label-0012"]
    assert [p.name for p in path.parent.iterdir()] == ["rois.roi.zip"]


def test_same_rois_same_bytes():
    roi_set = extract_rois(hard_cases_2d())
    assert imagej.to_bytes(roi_set) == imagej.to_bytes(roi_set)


def test_from_bytes_reads_zips_and_single_rois_and_refuses_the_rest():
    data = imagej.to_bytes(extract_rois(hard_cases_2d()))
    rois = imagej.from_bytes(data)
    assert len(rois) == 7
    (single,) = imagej.from_bytes(rois[0].tobytes())
    assert single.name == rois[0].name
    with pytest.raises(InvalidInputError, match="Not an ImageJ RoiSet"):
        imagej.from_bytes(b"{not a zip}")


def test_bad_context_is_refused_clearly():
    roi_set = extract_rois(hard_cases_2d())
    with pytest.raises(InvalidInputError, match=r"scale.*2 values"):
        imagej.to_bytes(roi_set, context={"scale": (1.0, 2.0, 2.0)})
    with pytest.raises(InvalidInputError, match="0-based channel index"):
        imagej.to_bytes(roi_set, context={"channel": -1})


def test_registry_finds_the_module():
    assert get_format("imagej") is imagej
    assert imagej.EXTENSION == ".roi.zip"


# --------------------------------------------------------------------------
# Points, ellipses, polylines


def test_points_sit_on_pixel_centres(tmp_path):
    labels = hard_cases_2d()
    rois = {
        int(r.properties["label"]): r
        for r in _roundtrip(tmp_path, extract_rois(labels, shape="point"))
    }
    assert all(r.roitype == ROI_TYPE.POINT and r.subpixelresolution for r in rois.values())
    np.testing.assert_array_equal(rois[9].coordinates(), [[30.5, 0.5]])  # pixel (y=0, x=30)
    np.testing.assert_array_equal(rois[11].coordinates(), [[16.0, 16.0]])  # between 15 and 16
    roi_set = extract_rois(hard_cases_3d(), shape="point")
    rois_3d = _roundtrip(tmp_path, roi_set)
    for roi, row in zip(rois_3d, roi_set.features.itertuples()):
        expected = [[row.centroid_x_px + 0.5, row.centroid_y_px + 0.5]]
        np.testing.assert_allclose(roi.coordinates(), expected, rtol=1e-7)  # float32
        assert roi.z_position == round(row.centroid_z_px) + 1
    assert {int(r.properties["label"]): r.z_position for r in rois_3d}[9] == 2  # planes 0, 2


def _ellipse_from_imagej(roi):
    """(centre (x, y), covariance) of an ImageJ OVAL or EllipseRoi."""
    if roi.roitype == ROI_TYPE.OVAL:
        assert roi.subpixelrect
        a, b = roi.widthd / 2, roi.heightd / 2
        return np.array([roi.xd + a, roi.yd + b]), np.diag([a * a, b * b])
    assert roi.roitype == ROI_TYPE.FREEHAND and roi.subtype == ROI_SUBTYPE.ELLIPSE
    p1, p2 = np.array([roi.x1, roi.y1], float), np.array([roi.x2, roi.y2], float)
    a = np.linalg.norm(p2 - p1) / 2
    b = a * imagej.ellipse_aspect_ratio(roi)
    angle = math.atan2(*(p2 - p1)[::-1])
    return (p1 + p2) / 2, ellipse_covariance(a, b, angle)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_ellipses_round_trip_as_ovals_or_ellipse_rois(tmp_path, nuclei, scale):
    roi_set = extract_rois(nuclei, shape="ellipse")
    rois = _roundtrip(tmp_path, roi_set, context={"scale": (scale, scale)})
    kinds = {(r.roitype, r.subtype) for r in rois}
    assert (ROI_TYPE.FREEHAND, ROI_SUBTYPE.ELLIPSE) in kinds
    for roi, original in zip(rois, roi_set.rois):
        (ellipse,) = original.shapes
        centre, cov = _ellipse_from_imagej(roi)
        expected_centre = (np.array(ellipse.center[::-1]) + 0.5) * scale
        a, b = (s * scale for s in ellipse.semi_axes)
        # ImageJ stores float32: exact up to float32 rounding of the coordinates
        step = np.finfo(np.float32).eps * 512 * scale
        np.testing.assert_allclose(centre, expected_centre, rtol=0, atol=step)
        expected_cov = ellipse_covariance(a, b, ellipse.angle)
        np.testing.assert_allclose(cov, expected_cov, rtol=0, atol=2 * a * step)
        if roi.subtype == ROI_SUBTYPE.ELLIPSE:  # its stored polygon lies on the ellipse
            d = roi.coordinates() - expected_centre
            inside = np.einsum("ni,ij,nj->n", d, np.linalg.inv(expected_cov), d)
            np.testing.assert_allclose(inside, 1.0, atol=1e-4)
            assert len(d) == ELLIPSE_VERTICES


def test_axis_aligned_ellipses_are_ellipse_rois_too(tmp_path):
    # Not OVALs: ImageJ fills an oval from its whole-pixel bounds (seen in real
    # ImageJ, test_real_imagej_fills_ellipses_like_the_ellipse_by_pixel_centres).
    roi_set = extract_rois(axis_aligned_blobs(), shape="ellipse")
    rois = _roundtrip(tmp_path, roi_set)
    assert [(r.roitype, r.subtype) for r in rois] == [(ROI_TYPE.FREEHAND, ROI_SUBTYPE.ELLIPSE)] * 2
    assert_same_ellipses([_ellipse_from_imagej(r) for r in rois], roi_set, atol=(1e-6, 1e-5))


def test_2d_branches_are_polylines_through_pixel_centres(tmp_path):
    rois = _roundtrip(tmp_path, skeleton_roi_set(2), context={"label_name": "retic"})
    assert [r.name for r in rois] == [
        "label-0005-branch-000",
        "label-0005-branch-001",
        "label-0008-branch-000",
    ]
    open_line, cycle, single = rois
    assert (
        open_line.roitype == ROI_TYPE.POLYLINE
        and open_line.options & ROI_OPTIONS.SUB_PIXEL_RESOLUTION
    )
    # ImageJ line ROIs put pixel centres at integer coordinates
    np.testing.assert_array_equal(open_line.coordinates(), [[3, 2], [4, 2], [5, 3]])
    np.testing.assert_array_equal(  # a cycle repeats its first vertex
        cycle.coordinates(), [[10, 10], [11, 10], [11, 11], [10, 10]]
    )
    assert single.roitype == ROI_TYPE.POINT
    np.testing.assert_array_equal(single.coordinates(), [[20.5, 20.5]])
    assert [r.properties["branch"] for r in rois] == [0, 1, 0]
    assert [r.properties["length_px"] for r in rois] == [3.0, 3.0, 1.0]


def test_3d_branches_split_into_runs_of_constant_z(tmp_path):
    rois = _roundtrip(tmp_path, skeleton_roi_set(3))
    summary = [(r.name, r.roitype, r.z_position, r.coordinates().tolist()) for r in rois]
    assert summary == [
        ("label-0005-branch-000-z00", ROI_TYPE.POLYLINE, 1, [[3, 2], [4, 2]]),
        ("label-0005-branch-000-z01", ROI_TYPE.POLYLINE, 2, [[5, 3], [5, 4]]),
        ("label-0005-branch-000-z02", ROI_TYPE.POINT, 3, [[5.5, 5.5]]),
        ("label-0005-branch-001-z00-01", ROI_TYPE.POINT, 1, [[1.5, 1.5]]),
        ("label-0005-branch-001-z01", ROI_TYPE.POINT, 2, [[2.5, 1.5]]),
        ("label-0005-branch-001-z00-02", ROI_TYPE.POLYLINE, 1, [[3, 1], [4, 1]]),
        ("label-0008-branch-000-z02", ROI_TYPE.POLYLINE, 3, [[20, 20], [21, 21]]),
    ]


@pytest.mark.parametrize("scale", [1.0, 1.5])
def test_single_outlines_are_the_rois_roifile_makes_from_their_points(scale):
    roi_set = extract_rois(hard_cases_2d())
    rois = imagej.imagej_rois(roi_set, context={"scale": (scale, scale)})
    simple = 0
    for ij, roi in zip(rois, roi_set.rois):  # 2D: one ImageJ ROI per object
        if ij.composite:
            continue
        ((polygon,),) = [roi.shapes]
        ring = (polygon.exterior[:, ::-1] + 0.5) * scale  # corner-based x, y
        if np.array_equal(ring, np.round(ring)):
            expected = roifile.ImagejRoi.frompoints(np.round(ring).astype(np.int32))
            expected.roitype, expected.options = ROI_TYPE.TRACED, ROI_OPTIONS.NONE
        else:
            expected = roifile.ImagejRoi.frompoints(ring)
            expected.roitype = ROI_TYPE.POLYGON
            expected.options = ROI_OPTIONS.SUB_PIXEL_RESOLUTION
        expected.name, expected.props = ij.name, ij.props
        assert ij.tobytes() == expected.tobytes()
        simple += 1
    assert simple == 3  # objects 9, 11 and 12


def test_properties_are_what_roifile_writes_for_the_row():
    roi_set = skeleton_roi_set(3)
    roi_set.features["z"] = -1.0  # the ROI's plane wins, as in {**row, "z": plane}
    roi_set.features["label name"] = "column"  # same ImageJ key as label_name: the context wins
    roi_set.features["note"] = "two  words\tand\na line"
    rows = roi_set.features.to_dict(orient="records")
    index = {(r.label, r.branch): n for n, r in enumerate(roi_set.rois)}
    for ij in imagej.imagej_rois(roi_set, context={"label_name": "retic"}):
        n = index[(ij.properties["label"], ij.properties["branch"])]
        props = {**rows[n], "label_name": "retic", "z": ij.z_position - 1}
        expected = roifile.ImagejRoi()
        expected.properties = {
            imagej_properties.property_key(k): imagej_properties.java_value(v)
            for k, v in props.items()
        }
        assert ij.props == expected.props
        assert ij.properties["label_name"] == "retic"
        assert ij.properties["note"] == "two words and a line"


# --------------------------------------------------------------------------
# Real ImageJ (ij.jar): how ImageJ itself decodes and fills our RoiSets


def test_real_imagej_fills_outlines_to_exactly_the_labels(tmp_path):
    from tests.imagej_java import imagej_pixels

    labels = hard_cases_2d()
    path = imagej.write(tmp_path / "rois.roi.zip", extract_rois(labels))
    filled = np.zeros_like(labels)
    for name, (_, _, pixels) in imagej_pixels(path).items():
        xy = np.array(sorted(pixels))
        filled[xy[:, 1], xy[:, 0]] = int(name.split("-")[1])
    np.testing.assert_array_equal(filled, labels)


def _coverage(roi_set, found):
    """Fraction of the polyline pixels that ImageJ's rasterisation of their ROI covers."""
    covered = total = 0
    for roi, (_, z, pixels) in zip(roi_set.rois, found.values(), strict=True):
        points = np.asarray(roi.shapes[0].points, int)
        if points.shape[1] == 3:
            points = points[points[:, 0] == z - 1]
        want = {(int(x), int(y)) for y, x in points[:, -2:]}
        covered += len(want & pixels)
        total += len(want)
    return covered / total


def test_real_imagej_covers_every_pixel_of_the_retic_skeleton(tmp_path):
    import importlib.resources

    import tifffile
    from skan.pre import threshold
    from skimage.morphology import skeletonize

    from fractal_roi_tasks.rois.skeleton import extract_branches
    from tests.imagej_java import imagej_pixels

    resource = importlib.resources.files("skan") / "test" / "data" / "retic.tif"
    with importlib.resources.as_file(resource) as file, tifffile.TiffFile(file) as tif:
        image = tif.asarray()
    binary = threshold(image, sigma=2.0, radius=10)
    roi_set = extract_branches(skeletonize(binary)).roi_set
    assert len(roi_set.rois) > 100
    found = imagej_pixels(imagej.write(tmp_path / "retic.roi.zip", roi_set))
    assert _coverage(roi_set, found) == 1.0


def test_real_imagej_covers_synthetic_2d_and_3d_branches(tmp_path):
    from tests.imagej_java import imagej_pixels

    for ndim in (2, 3):
        roi_set = skeleton_roi_set(ndim)
        found = imagej_pixels(imagej.write(tmp_path / f"s{ndim}.roi.zip", roi_set))
        covered = set()
        for _, z, pixels in found.values():
            covered |= {(x, y, z - 1) for x, y in pixels}
        for roi in roi_set.rois:
            points = np.asarray(roi.shapes[0].points, int)
            zs = points[:, 0] if ndim == 3 else np.full(len(points), -1)
            want = {(int(x), int(y), int(z)) for z, (y, x) in zip(zs, points[:, -2:])}
            assert want <= covered, roi


def _planes_of(found, shape, planes):
    """ImageJ's pixels of each ROI painted into a (planes, *shape) label image by ROI name."""
    filled = np.zeros((planes, *shape), np.int64)
    for roi in found.values():
        xy = np.array(sorted(roi.pixels)).reshape(-1, 2)
        paint(filled[max(roi.z, 1) - 1], _mask_of(xy, shape), int(roi.name.split("-")[1]))
    return filled


def _mask_of(xy, shape):
    inside = (xy >= 0).all(axis=1) & (xy[:, 0] < shape[1]) & (xy[:, 1] < shape[0])
    assert inside.all(), "ImageJ fills pixels outside the image"
    mask = np.zeros(shape, bool)
    mask[xy[:, 1], xy[:, 0]] = True
    return mask


def test_real_imagej_puts_each_point_on_the_pixel_holding_the_centroid(tmp_path, nuclei):
    from tests.imagej_java import imagej_rois

    checked = 0
    for n, labels in enumerate((hard_cases_2d(), nuclei, hard_cases_3d())):
        roi_set = extract_rois(labels, shape="point")
        found = imagej_rois(imagej.write(tmp_path / f"p{n}.roi.zip", roi_set))
        assert len(found) == len(roi_set.rois)
        for roi, row in zip(found.values(), roi_set.features.itertuples(), strict=True):
            assert roi.type == 10  # Roi.POINT
            # pixel k spans [k - 0.5, k + 0.5) around its centre k: floor(c + 0.5)
            x, y = (math.floor(c + 0.5) for c in (row.centroid_x_px, row.centroid_y_px))
            assert roi.pixels == {(x, y)}, (roi.name, row)
            z = round(row.centroid_z_px) + 1 if labels.ndim == 3 else 0
            assert (roi.z, roi.position, roi.c, roi.t) == (z, 0, 0, 0)
            checked += 1
    assert checked == 7 + 168 + 7


def _drawn_ellipses():
    """Six ellipses drawn by pixel centres: axis-aligned and rotated."""
    from skimage.draw import ellipse

    labels = np.zeros((200, 300), np.uint16)
    drawn = [(40, 50, 20, 35, 0), (40, 150, 12, 30, 30), (40, 240, 25, 25, 0)]
    drawn += [(130, 60, 30, 50, 60), (130, 170, 8, 20, -45), (150, 250, 20, 40, 90)]
    for label, (row, col, r_radius, c_radius, degrees) in enumerate(drawn, start=1):
        rr, cc = ellipse(row, col, r_radius, c_radius, rotation=np.deg2rad(degrees))
        labels[rr, cc] = label
    return labels


def _centre_raster(ellipse, shape):
    """The pixels whose centres lie inside `ellipse`, and its perimeter (Ramanujan)."""
    (cx, cy), a, b, angle = scaled_ellipse(ellipse, np.ones(2))
    y, x = np.mgrid[: shape[0], : shape[1]] + 0.5
    u = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
    v = (y - cy) * math.cos(angle) - (x - cx) * math.sin(angle)
    perimeter = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
    return (u / a) ** 2 + (v / b) ** 2 < 1, perimeter


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_real_imagej_fills_ellipses_like_the_ellipse_by_pixel_centres(tmp_path, nuclei):
    from tests.imagej_java import imagej_rois

    pad = 40  # ellipses of objects on the border reach outside the image
    for n, labels in enumerate((_drawn_ellipses(), nuclei, hard_cases_2d())):
        roi_set = extract_rois(labels, shape="ellipse")
        found = imagej_rois(imagej.write(tmp_path / f"e{n}.roi.zip", roi_set))
        shape = tuple(s + 2 * pad for s in labels.shape)
        for roi, original in zip(found.values(), roi_set.rois, strict=True):
            (ellipse,) = original.shapes
            moved = replace(ellipse, center=tuple(c + pad for c in ellipse.center))
            ours, perimeter = _centre_raster(moved, shape)
            theirs = _mask_of(np.array(sorted(roi.pixels)).reshape(-1, 2) + pad, shape)
            differ = int((ours ^ theirs).sum())
            # EllipseRoi: ImageJ fills its polygon on the ellipse, from x1..y2, ratio
            assert roi.type == 3  # FREEHAND (subtype ELLIPSE), axis-aligned ones too
            assert differ <= 2 + 0.05 * perimeter, (roi.name, differ, perimeter)
            if n == 0:  # a drawn ellipse is its own moment ellipse: they differ in a
                # band of about one pixel along the outline
                obj = np.pad(labels == original.label, pad)
                assert _iou(theirs, obj) >= 1 - perimeter / obj.sum(), roi.name


def test_real_imagej_reads_3d_rois_on_their_plane(tmp_path):
    from tests.imagej_java import imagej_rois

    labels = hard_cases_3d()
    for kind in ("polygon", "mask"):
        path = imagej.write(tmp_path / f"{kind}.roi.zip", extract_rois(labels, shape=kind))
        found = imagej_rois(path)
        for entry, roi in found.items():
            plane = int(entry.rsplit("-z", 1)[1])
            # a hyperstack position: z set, the stack position 0, on every channel and frame
            assert (roi.z, roi.position, roi.c, roi.t) == (plane + 1, 0, 0, 0), entry
            assert roi.properties["z"] == str(plane)
        planes = sorted(int(e.rsplit("-z", 1)[1]) for e in found)
        assert len(planes) == 3 * 7 - 1  # label 9 is absent from the middle plane
        np.testing.assert_array_equal(_planes_of(found, labels.shape[1:], 3), labels)
    for kind in ("ellipse", "point"):
        roi_set = extract_rois(labels, shape=kind)
        expected = [r.z_position for r in imagej.imagej_rois(roi_set)]
        found = imagej_rois(imagej.write(tmp_path / f"{kind}.roi.zip", roi_set))
        assert [r.z for r in found.values()] == expected
        assert {r.position for r in found.values()} == {0}


def test_real_imagej_decodes_names_and_properties_of_labels_above_9999(tmp_path):
    from tests.imagej_java import imagej_rois

    big = [10_000, 65_535, 65_536, 99_999, 1_000_000, 2**31 - 1, 2**31, 2**32 - 1]
    labels = np.zeros((2, 20, 50), np.uint32)
    for n, label in enumerate(big):
        labels[n % 2, 2 + 2 * n : 4 + 2 * n, 3 + 5 * n : 7 + 5 * n] = label
    labels[1, 18, 49] = 7  # a small label beside them: names padded to ten digits
    roi_set = extract_rois(labels)
    path = imagej.write(tmp_path / "big.roi.zip", roi_set, context={"label_name": "nuclei"})
    found = imagej_rois(path)
    features = roi_set.features.set_index("label")
    assert len(found) == len(big) + 1
    for entry, roi in found.items():
        label = int(roi.properties["label"])
        assert roi.name == entry == f"label-{label:010d}-z{roi.z - 1:02d}"
        assert roi.properties["label_name"] == "nuclei"
        for column in ("area_px", "centroid_x_px", "centroid_y_px", "bbox_len_y_px"):
            assert float(roi.properties[column]) == features.loc[label, column], column
    np.testing.assert_array_equal(_planes_of(found, labels.shape[1:], 2), labels)
