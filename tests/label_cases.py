"""Label images every ROI writer must get exactly right (shared by the format tests)."""

import numpy as np


def hard_cases_2d() -> np.ndarray:
    """Holes, pieces, an island in a hole, diagonal contact, borders, big ids."""
    img = np.zeros((40, 50), np.uint32)
    img[2:12, 2:12] = 3  # square with a hole holding an island of itself
    img[4:10, 4:10] = 0
    img[6:8, 6:8] = 3
    img[20:23, 5:8] = 70_000  # id above 65535, two pieces
    img[30:33, 15:19] = 70_000
    img[0, 30] = 9  # one pixel on the top border
    img[15, 15] = 11  # pixels touching only diagonally: one object
    img[16, 16] = 11
    img[35:40, 45:50] = 12  # bottom-right corner of the image
    img[10:20, 30:40] = 13  # touches 14
    img[10:20, 40:45] = 14
    img[12, 33] = 14  # a pixel of 14 inside 13: 13 gets a hole
    return img


def hard_cases_3d() -> np.ndarray:
    """Three planes: the 2D cases shifted from plane to plane, one object absent in the middle."""
    base = hard_cases_2d()
    vol = np.stack([base, np.roll(base, 1, axis=1), np.roll(base, 2, axis=0)])
    vol[1][vol[1] == 9] = 0
    return vol
