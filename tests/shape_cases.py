"""ROI shapes the format tests share: skeleton branches built by hand (the
skeleton core is tested apart) and ellipses read back from a file."""

import math

import numpy as np
import pandas as pd

from fractal_roi_tasks.rois import ObjectRoi, Polyline, RoiSet


def skeleton_roi_set(ndim: int) -> RoiSet:
    """Branches of two skeletons (labels 5 and 8) in a 2D or 3D image.

    2D: an open line, a cycle (closed) and a one-pixel branch. 3D: a line
    climbing through three planes, one that goes back to the plane it left
    (z 0 -> 1 -> 0), and a line within one plane.
    """
    if ndim == 2:
        lines = [
            (5, 0, Polyline(np.array([[2.0, 3.0], [2.0, 4.0], [3.0, 5.0]]))),
            (5, 1, Polyline(np.array([[10.0, 10.0], [10.0, 11.0], [11.0, 11.0]]), closed=True)),
            (8, 0, Polyline(np.array([[20.0, 20.0]]))),
        ]
        shape = (30, 30)
    else:
        lines = [
            (5, 0, Polyline(np.array([[0, 2, 3], [0, 2, 4], [1, 3, 5], [1, 4, 5], [2, 5, 5.0]]))),
            (5, 1, Polyline(np.array([[0, 1, 1], [1, 1, 2], [0, 1, 3], [0, 1, 4.0]]))),
            (8, 0, Polyline(np.array([[2, 20, 20], [2, 21, 21.0]]))),
        ]
        shape = (3, 30, 30)
    rois = tuple(
        ObjectRoi(label=lab, name=f"{lab}-{br}", shapes=(line,), branch=br)
        for lab, br, line in lines
    )
    features = pd.DataFrame(
        {
            "label": [r.label for r in rois],
            "branch": [r.branch for r in rois],
            "length_px": [float(len(r.shapes[0].points)) for r in rois],
        }
    )
    return RoiSet("skeleton", rois, features, shape, (1.0,) * len(shape))


def ellipse_covariance(a: float, b: float, angle: float) -> np.ndarray:
    """(2, 2) covariance-like matrix of an ellipse with semi-axes a, b rotated by angle (x, y)."""
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return rot @ np.diag([a * a, b * b]) @ rot.T


def axis_aligned_blobs() -> np.ndarray:
    """Two rectangles with axis-aligned ellipses: 3 x 9 (major axis along x), 10 x 4 (along y)."""
    labels = np.zeros((20, 30), np.uint8)
    labels[2:5, 3:12] = 1
    labels[8:18, 20:24] = 2
    return labels


def assert_same_ellipses(read_back, roi_set, *, atol):
    """Ellipses read back from a file are those of ``roi_set``, one per ROI in order.

    ``read_back`` holds (centre, covariance) in corner-based (x, y), the
    ellipses' centres are pixel-centred (row, column); ``atol`` is the
    (centre, covariance) tolerance.
    """
    assert len(read_back) == len(roi_set.rois)
    for (centre_xy, covariance), roi in zip(read_back, roi_set.rois):
        (ellipse,) = roi.shapes
        np.testing.assert_allclose(centre_xy, np.array(ellipse.center[::-1]) + 0.5, atol=atol[0])
        expected = ellipse_covariance(*ellipse.semi_axes, ellipse.angle)
        np.testing.assert_allclose(covariance, expected, atol=atol[1])
