"""The consensus's choice of translations: a ROI of too low quality takes the median of the others."""

import numpy as np
import pytest

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.registration.consensus import choose_translations


def test_low_quality_rois_take_the_median_of_the_others():
    translations = np.array([[0.0, 1.0, -2.0], [0.0, 3.0, -4.0], [0.0, 8.0, 0.0], [5.0, 50.0, 50.0]])
    quality = np.array([0.9, 0.6, 0.7, 0.2])
    chosen = choose_translations(translations, quality, min_quality=0.5)
    assert chosen.fallback.tolist() == [False, False, False, True]
    assert chosen.translations[3].tolist() == [0.0, 3.0, -2.0]
    assert np.array_equal(chosen.translations[:3], translations[:3])
    assert translations[3].tolist() == [5.0, 50.0, 50.0]  # the input is not changed
    assert np.array_equal(chosen.quality, quality)


def test_the_bound_is_inclusive_and_nan_quality_is_not_trusted():
    translations = np.array([[1.0], [2.0], [7.0]])
    chosen = choose_translations(translations, np.array([0.5, np.nan, 0.4]), min_quality=0.5)
    assert chosen.fallback.tolist() == [False, True, True]
    assert chosen.translations[:, 0].tolist() == [1.0, 1.0, 1.0]


def test_every_roi_below_the_bound_is_an_error_naming_the_best():
    with pytest.raises(InvalidInputError, match=r"'plate/B/03/1'.*below 0\.95 \(best 0\.900\)"):
        choose_translations(
            np.zeros((2, 2)), np.array([0.9, 0.1]), min_quality=0.95, where="'plate/B/03/1'"
        )


def test_shapes_that_do_not_match_are_refused():
    with pytest.raises(InvalidInputError, match=r"\(n_rois, n_axes\).*\(2, 3\) and \(3,\)"):
        choose_translations(np.zeros((2, 3)), np.ones(3), min_quality=0.3)
