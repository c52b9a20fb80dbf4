"""The region of a ROI that every acquisition sees, as whole-pixel boxes.

After registration each acquisition ``a`` of a well has, per ROI, a
translation ``t_a`` (pixels, fractal-tasks-core's sign: the shift that
registers acquisition ``a`` onto the reference, so a pixel at ``p`` in ``a``
shows what the reference shows at ``p + t_a``). A ROI box ``[s, s + L)`` of
acquisition ``a`` therefore covers ``[s + t_a, s + L + t_a)`` of the
reference, and the region every acquisition sees is, per axis,

``[s + max_a t_a, s + L + min_a t_a)``   (reference pixels)

which in acquisition ``a``'s own pixels starts at ``s + max_t - t_a``:
fractal-tasks-core's consensus (new start = start + max(t) - own t, new
length = L - (max(t) - min(t))).

An apply step reads the boxes of all acquisitions and pairs them pixel by
pixel, so their bounds must be whole pixels (ngio rounds fractional ROI
bounds outward, and equal lengths with different sub-pixel starts read
patches of different shapes: fractal-tasks-core issue #1044).
`consensus_boxes` therefore returns, per acquisition, a whole-pixel start
``round(r - t_a)`` (halves round up) for one whole-pixel reference start
``r`` and one length ``n`` shared by every acquisition, with every box inside
the acquisition's original ROI box (nothing is read from outside the field of
view) and ``n`` as large as possible. With integer translations this is
exactly fractal-tasks-core's consensus; with fractional ones the common
length is less than 3 pixels shorter and less than 1 pixel longer than the
exact ``L - (max t - min t)`` (whole-pixel ROI bounds, rounded offsets).
The sub-pixel part stays in the translations, for an apply step that
resamples with them.

`choose_translations` picks the translations a consensus uses: a ROI
registered with too low a quality takes the median of its acquisition's
other ROIs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

logger = logging.getLogger(__name__)

_AXIS_NAMES = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}

_TOLERANCE_PX = 1e-6
"""ROI bounds within this of a whole pixel count as that pixel (micrometre
to pixel conversions leave errors of ~1e-12 px)."""


@dataclass(frozen=True)
class RegisteredBox:
    """One acquisition's whole-pixel box of the region every acquisition sees.

    Attributes:
        start_px: ((z,) y, x) first pixel of the region in this acquisition's
            own pixels (full resolution), whole pixels.
        length_px: ((z,) y, x) size of the region in pixels; the same for
            every acquisition of the ROI.
        reference_start_px: ((z,) y, x) where the region starts in the
            reference acquisition's pixels, whole pixels; the same for every
            acquisition of the ROI.
    """

    start_px: tuple[int, ...]
    length_px: tuple[int, ...]
    reference_start_px: tuple[int, ...]

    @property
    def stop_px(self) -> tuple[int, ...]:
        """One past the last pixel, per axis, in this acquisition's pixels."""
        return tuple(s + n for s, n in zip(self.start_px, self.length_px))


def _floats(values: Sequence[float], what: str, ndim: int | None = None) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"{what} must be a sequence of numbers, got {values!r}.") from err
    if not out or len(out) > 3 or (ndim is not None and len(out) != ndim):
        expected = f"{ndim}" if ndim is not None else "1 to 3"
        raise InvalidInputError(
            f"{what} must have {expected} values ((z,) y, x), got {values!r}."
        )
    if not all(math.isfinite(v) for v in out):
        raise InvalidInputError(f"{what} must be finite, got {values!r}.")
    return out


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def consensus_boxes(
    start_px: Sequence[float],
    length_px: Sequence[float],
    translations_px: Mapping[Hashable, Sequence[float]],
    *,
    roi_name: str | None = None,
) -> dict[Hashable, RegisteredBox]:
    """Whole-pixel boxes of the part of one ROI that every acquisition sees.

    Args:
        start_px: ((z,) y, x) start of the ROI box in pixels (full
            resolution), the same in every acquisition, as in a
            ``FOV_ROI_table``; fractional values allowed.
        length_px: ((z,) y, x) size of the ROI box in pixels (> 0).
        translations_px: per acquisition (any hashable key), its ((z,) y, x)
            translation in pixels, fractal-tasks-core's sign (the shift that
            registers the acquisition onto the reference). The reference
            acquisition always takes part with a zero translation, whether
            or not it is a key; give it as a key (with zeros) to get its box.
        roi_name: the ROI's name, for error messages only.

    Returns:
        One `RegisteredBox` per key of ``translations_px``, all with the same
        ``length_px`` and ``reference_start_px``, each inside
        ``[start_px, start_px + length_px)`` of its acquisition, of maximal
        length given whole-pixel starts ``round(reference_start - t)``.

    Raises:
        InvalidInputError: (a ValueError) for no translations, mismatched
            axis counts, non-finite values, a non-positive length, or
            translations that differ by more than the ROI is long (nothing
            is seen by every acquisition).

    >>> boxes = consensus_boxes(
    ...     (0, 0), (100, 100), {0: (0, 0), 1: (3, -5), 2: (-2, 4)}
    ... )
    >>> boxes[1]
    RegisteredBox(start_px=(0, 9), length_px=(95, 91), reference_start_px=(3, 4))
    >>> boxes[0].start_px, boxes[2].start_px
    ((3, 4), (5, 0))

    Fractional translations give whole-pixel boxes inside every field:

    >>> consensus_boxes((0,), (10,), {"ref": (0,), "c1": (1.4,), "c2": (-0.6,)})["c1"]
    RegisteredBox(start_px=(0,), length_px=(8,), reference_start_px=(1,))
    """
    where = f"ROI {roi_name!r}" if roi_name else "the ROI"
    start = _floats(start_px, "start_px")
    ndim = len(start)
    length = _floats(length_px, "length_px", ndim)
    if any(n <= 0 for n in length):
        raise InvalidInputError(f"length_px must be positive, got {tuple(length_px)!r}.")
    if not translations_px:
        raise InvalidInputError(
            "translations_px is empty: give at least one acquisition's translation "
            "(the reference's is all zeros)."
        )
    translations = {
        key: _floats(value, f"the translation of acquisition {key!r}", ndim)
        for key, value in translations_px.items()
    }
    names = _AXIS_NAMES[ndim]
    # Integer offset of each acquisition's box from the reference start r:
    # round(r - t) = r + floor(0.5 - t) for whole r. The reference counts (0).
    offsets = {key: [math.floor(0.5 - v) for v in t] for key, t in translations.items()}
    reference_start, common_length = [], []
    for axis in range(ndim):
        low = math.ceil(start[axis] - _TOLERANCE_PX)
        high = math.floor(start[axis] + length[axis] + _TOLERANCE_PX)
        smallest = min(0, *(o[axis] for o in offsets.values()))
        largest = max(0, *(o[axis] for o in offsets.values()))
        n = (high - low) - (largest - smallest)
        if n <= 0:
            values = sorted(t[axis] for t in translations.values())
            raise InvalidInputError(
                f"No part of {where} is seen by every acquisition along {names[axis]}: "
                f"the translations along {names[axis]} range from {min(values[0], 0.0):g} "
                f"to {max(values[-1], 0.0):g} px (reference 0) but the ROI is "
                f"{length[axis]:g} px long. Check the registration of these "
                f"acquisitions: {', '.join(f'{k!r}: {t[axis]:g}' for k, t in translations.items())}."
            )
        reference_start.append(low - smallest)
        common_length.append(n)
    boxes = {
        key: RegisteredBox(
            start_px=tuple(r + o for r, o in zip(reference_start, offsets[key])),
            length_px=tuple(common_length),
            reference_start_px=tuple(reference_start),
        )
        for key in translations
    }
    logger.debug(
        "consensus of %s over %d acquisitions: reference start %s, length %s",
        where,
        len(boxes),
        reference_start,
        common_length,
    )
    return boxes


@dataclass(frozen=True)
class ChosenTranslations:
    """The translations a consensus uses for one acquisition's ROIs.

    Attributes:
        translations: (n_rois, n_axes) the translation used per ROI, in the
            units given (a ROI below the quality bound has the median of the
            others).
        fallback: (n_rois,) bool, True where the median replaced the ROI's own.
        quality: (n_rois,) the registration quality of each ROI, as given.
    """

    translations: np.ndarray
    fallback: np.ndarray
    quality: np.ndarray


def choose_translations(
    translations: np.ndarray,
    quality: np.ndarray,
    *,
    min_quality: float,
    where: str = "this acquisition",
) -> ChosenTranslations:
    """Each ROI's own translation, or the median of the others' where its quality is too low.

    A ROI whose quality is below `min_quality` (or NaN) is not trusted: it
    takes, per axis, the median translation of the acquisition's trusted ROIs.
    The inputs are not changed.

    Args:
        translations: (n_rois, n_axes) translations of one acquisition's ROIs,
            any unit (the result is in the same unit).
        quality: (n_rois,) registration quality (normalized cross-correlation).
        min_quality: the lowest quality trusted.
        where: names the acquisition in the error.

    Raises:
        InvalidInputError: every ROI is below `min_quality` (nothing to fall back on),
            or the shapes do not match.

    >>> chosen = choose_translations(
    ...     np.array([[0.0, 1.0], [0.0, 3.0], [9.0, 9.0]]), np.array([0.9, 0.8, 0.1]),
    ...     min_quality=0.3,
    ... )
    >>> chosen.translations.tolist(), chosen.fallback.tolist()
    ([[0.0, 1.0], [0.0, 3.0], [0.0, 2.0]], [False, False, True])
    """
    translations = np.array(translations, dtype=float)  # a copy: inputs are not mutated
    quality = np.asarray(quality, dtype=float)
    if translations.ndim != 2 or quality.shape != (len(translations),):
        raise InvalidInputError(
            f"translations must be (n_rois, n_axes) and quality (n_rois,); got "
            f"{translations.shape} and {quality.shape}."
        )
    failed = ~(quality >= min_quality)
    if failed.any():
        if failed.all():
            best = f"{np.nanmax(quality):.3f}" if np.isfinite(quality).any() else "none"
            raise InvalidInputError(
                f"Every ROI of {where} was registered with quality below {min_quality} "
                f"(best {best}): no translation to fall back on. Check the channel, or "
                "lower min_quality."
            )
        median = np.median(translations[~failed], axis=0)
        translations[failed] = median
        logger.debug("%s: %d ROIs below quality %s take the median %s", where, failed.sum(), min_quality, median)
    return ChosenTranslations(translations, failed, quality)
