"""The ImageJ ROI properties of each ROI (its measurements), for `fractal_roi_tasks.formats.imagej`.

ImageJ 1.52+ keeps ``key: value`` lines per ROI (file version >= 224), read
back by ``Roi.getProperty(key)``; keys and values are written so that
ImageJ's ``java.util.Properties`` and ``Double.parseDouble`` read them back
unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from fractal_roi_tasks.formats.batch import float_texts


class RoiProperties:
    """The ImageJ properties text of each ROI: ``key: value`` lines, sorted by key.

    What roifile's ``properties`` setter writes for the dict {features row,
    branch, t, label_name, z}, with keys and values made readable by ImageJ;
    built per column, once per kind of ROI (with or without branch and z).
    """

    def __init__(self, columns: dict[str, list], rois, label_name):
        self._values = {k: _java_values(values) for k, values in columns.items()}
        self._rois = rois
        self._label_name = label_name
        self._texts: dict = {}

    def text(self, n: int, plane: int | None) -> str:
        """The properties of object `n` on full-resolution `plane` (None in 2D)."""
        kind = (self._rois[n].branch is not None, plane is not None)
        if kind not in self._texts:
            self._texts[kind] = self._build(*kind)
        before, z_key, after = self._texts[kind]
        if plane is None:
            return before[n]
        return f"{before[n]}{z_key}: {plane}\n{after[n]}"

    def _build(self, branch: bool, plane: bool):
        """(text before z, z's key, text after z) per object, for one kind of ROI."""
        n = len(self._rois)
        values = dict(self._values)
        if branch:
            values.setdefault("branch", _java_values([r.branch for r in self._rois]))
        if n and self._rois[0].t is not None:  # a set spanning time: every ROI has a t
            values.setdefault("t", _java_values([r.t for r in self._rois]))
        if self._label_name:
            values["label_name"] = [java_value(self._label_name)] * n
        if plane:
            values["z"] = None  # the plane, filled in per ROI
        by_key = {property_key(k): v for k, v in values.items()}
        keys = sorted(by_key)
        z_at = next((i for i, k in enumerate(keys) if by_key[k] is None), len(keys))
        lines = {k: [f"{k}: {v}\n" for v in by_key[k]] for k in keys if by_key[k] is not None}
        before = [lines[k] for k in keys[:z_at]]
        after = [lines[k] for k in keys[z_at + 1 :]]
        return (
            list(map("".join, zip(*before))) if before else [""] * n,
            keys[z_at] if z_at < len(keys) else None,
            list(map("".join, zip(*after))) if after else [""] * n,
        )


def property_key(key) -> str:
    """A key ImageJ's ``java.util.Properties`` reads back unchanged."""
    text = str(key)
    for char in " \t\r\n:=#!\\":
        text = text.replace(char, "_")
    return text


def _java_values(values: list) -> list[str]:
    """`java_value` of each value; a column of finite floats or of ints in one call."""
    kinds = set(map(type, values))
    if kinds == {float} and all(map(math.isfinite, values)):
        return float_texts(values)
    if kinds == {int}:
        return list(map(int.__repr__, values))
    return [java_value(v) for v in values]


def java_value(value) -> str:
    """Numbers as Java's Double.parseDouble / Integer.parseInt read them."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return " ".join(str(value).split())
