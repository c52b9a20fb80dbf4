"""What the writers share to handle every ROI of a set at once.

Ten thousand outlines hold about a million vertices. Converting them one numpy
call per ring, or building one Python list per vertex, spends the time in call
overhead and in the garbage collector (which rescans every live object as
millions of small lists appear); formatting them one number at a time repeats
the same few thousand grid coordinates. So the writers gather the rings of all
polygons into one array (`gather_rings`), convert them with one call, and turn
every coordinate into text with one call per distinct value (`point_lists`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.rois.shapes import Mask, ObjectRoi, Polygon, RoiSet

# --------------------------------------------------------------------------
# Rows


def feature_columns(roi_set: RoiSet) -> dict[str, list]:
    """{column: its values as Python scalars}, one value per ROI.

    Raises:
        InvalidInputError: when the features table has not one row per ROI.
    """
    features = roi_set.features
    if len(features) != len(roi_set.rois):
        raise InvalidInputError(
            f"The ROI set has {len(roi_set.rois)} ROIs but {len(features)} feature rows; "
            "expected one row per ROI."
        )
    # One dict per row (to_dict(orient="records")) costs a dict per ROI; a
    # list per column holds the same Python scalars.
    return {column: features[column].tolist() for column in features.columns}


# --------------------------------------------------------------------------
# Polygons and rings


def object_polygons(roi: ObjectRoi) -> list[Polygon]:
    """The regions of one ROI as polygons: its Polygon shapes, then each Mask's outline.

    A Mask becomes its exact outline, traced with `extract_rois`, in the
    image's coordinates, for the formats that have no mask shape.
    """
    polygons = [s for s in roi.shapes if isinstance(s, Polygon)]
    for shape in roi.shapes:
        if isinstance(shape, Mask):
            polygons.extend(_mask_polygons(shape))
    return polygons


def by_plane(polygons: Sequence[Polygon]) -> dict:
    """{z: indices of the polygons in plane z}, planes in order of first appearance."""
    planes: dict = {}
    for n, polygon in enumerate(polygons):
        planes.setdefault(polygon.z, []).append(n)
    return planes


def _mask_polygons(mask: Mask) -> list[Polygon]:
    from fractal_roi_tasks.rois.extract import extract_rois

    traced = extract_rois(np.asarray(mask.mask).astype(np.uint8), shape="polygon")
    offset = np.asarray(mask.origin[-2:], float)
    z0 = mask.origin[0] if len(mask.origin) == 3 else 0
    return [
        Polygon(
            exterior=p.exterior + offset,
            holes=tuple(h + offset for h in p.holes),
            z=None if p.z is None else p.z + z0,
        )
        for roi in traced.rois
        for p in roi.shapes
    ]


@dataclass(frozen=True, eq=False)
class Rings:
    """The rings of many polygons in one array.

    Attributes:
        points: (N, 2) float64 vertices, core coordinates (y, x), ring after
            ring: each polygon's exterior, then its holes.
        bounds: (R + 1,) int64; ring r is ``points[bounds[r]:bounds[r + 1]]``.
        polygon: (R,) int64, the index of each ring's polygon.
        hole: (R,) bool, True for a hole.
    """

    points: np.ndarray
    bounds: np.ndarray
    polygon: np.ndarray
    hole: np.ndarray

    def per_polygon(self, items: list) -> list[list]:
        """`items` (one per ring) grouped by polygon: [exterior's, *holes']."""
        ends = np.cumsum(np.bincount(self.polygon)).tolist()
        return [items[lo:hi] for lo, hi in zip([0, *ends[:-1]], ends)]


def gather_rings(polygons: Sequence[Polygon]) -> Rings:
    """Every ring of `polygons` (exterior, then holes, polygon after polygon) in one array."""
    arrays, owner, hole = [], [], []
    for n, polygon in enumerate(polygons):
        arrays.append(polygon.exterior)
        arrays.extend(polygon.holes)
        owner.extend([n] * (1 + len(polygon.holes)))
        hole.extend([False] + [True] * len(polygon.holes))
    lengths = [len(a) for a in arrays]
    points = np.concatenate(arrays).astype(np.float64, copy=False) if arrays else np.zeros((0, 2))
    return Rings(
        points=points.reshape(-1, 2),
        bounds=np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        polygon=np.asarray(owner, np.int64),
        hole=np.asarray(hole, bool),
    )


def signed_areas(xy: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(R,) shoelace area of each ring of (N, 2) `xy`, closing back to its first vertex.

    Positive when the ring turns from +x towards +y; 0 for an empty ring.

    >>> square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> signed_areas(np.concatenate([square, square[::-1]]), np.array([0, 4, 8])).tolist()
    [1.0, -1.0]
    """
    lengths = np.diff(bounds)
    areas = np.zeros(len(lengths))
    filled = lengths > 0
    if not filled.any():
        return areas
    following = np.arange(1, len(xy) + 1)
    following[bounds[1:][filled] - 1] = bounds[:-1][filled]
    x, y = xy[:, 0], xy[:, 1]
    cross = x * y[following] - x[following] * y
    areas[filled] = 0.5 * np.add.reduceat(cross, bounds[:-1][filled])
    return areas


# --------------------------------------------------------------------------
# Text


def number_texts(values: np.ndarray, number: Callable[[float], str] = repr) -> np.ndarray:
    """``number(v)`` for every element of `values`, as an object array of the same shape.

    `number` is called once per distinct value: outlines on a pixel grid
    repeat the same few thousand coordinates.

    >>> number_texts(np.array([[0.5, 2.0], [2.0, -0.0]])).tolist()
    [['0.5', '2.0'], ['2.0', '-0.0']]
    """
    values = np.asarray(values, np.float64)
    texts, index = _number_table(values.ravel(), number)
    return np.array(texts, object)[index].reshape(values.shape)


def float_texts(values: list[float]) -> list[str]:
    """``repr`` of each float, once per distinct value (a table column repeats many)."""
    return number_texts(np.array(values, np.float64), float.__repr__).tolist()


def _number_table(flat: np.ndarray, number: Callable[[float], str]) -> tuple[list[str], np.ndarray]:
    """(the text of each distinct value, index of each element's text)."""
    if flat.size == 0:
        return [], np.zeros(0, np.int64)
    distinct, index = _distinct(flat)
    # -0.0 equals 0.0, so either may stand for both; each gets its own text.
    texts = [number(v) for v in np.where(distinct == 0, 0.0, distinct).tolist()]
    negative_zero = (flat == 0) & np.signbit(flat)
    if negative_zero.any():
        index = np.where(negative_zero, len(texts), index)
        texts.append(number(-0.0))
    return texts, index


def _distinct(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each element among them).

    Half-integers in a range not much wider than their count (outlines on
    pixel corners, at any integer scale) index a table directly; anything
    else goes through a sort.
    """
    lo, hi = float(flat.min()), float(flat.max())
    if math.isfinite(lo) and math.isfinite(hi) and 2 * (hi - lo) <= flat.size + 4096:
        first = math.floor(2 * lo)
        steps = 2 * flat - first
        index = steps.astype(np.int64)
        if np.array_equal(index, steps):
            present = np.bincount(index) > 0
            return (np.flatnonzero(present) + first) / 2, (np.cumsum(present) - 1)[index]
    return np.unique(flat, return_inverse=True)


def point_lists(
    points: np.ndarray,
    bounds: np.ndarray,
    *,
    number: Callable[[float], str] = repr,
    vertex: str = "[{},{}]",
    sep: str = ",",
    wrap: str = "[{}]",
) -> list[str]:
    """The text of each run of `points` between consecutive `bounds`.

    Run r is ``wrap.format(sep.join(vertex.format(*map(number, p)) for p in
    points[bounds[r]:bounds[r + 1]]))``, built for all runs with one array of
    text pieces and one join per run.

    Args:
        points: (N, D) float array.
        bounds: (R + 1,) increasing indices into `points`, from 0 to N.
        number: the text of one coordinate.
        vertex: template of one vertex, with D ``{}``.
        sep: text between vertices.
        wrap: template of one run, with one ``{}``.

    >>> point_lists(np.array([[0.5, 1.0], [2.0, 3.0], [4.0, 5.0]]), np.array([0, 2, 3]))
    ['[[0.5,1.0],[2.0,3.0]]', '[[4.0,5.0]]']
    """
    points = np.asarray(points, np.float64)
    n, ndim = points.shape
    before, *between, after = vertex.split("{}")
    if len(between) != ndim - 1:
        raise ValueError(f"vertex template {vertex!r} does not hold {ndim} values")
    start, end = wrap.split("{}")
    texts, index = _number_table(points.ravel(), number)
    index = index.reshape(n, ndim)
    # One piece per coordinate: its text and what follows it (within the
    # vertex, to the next vertex, or to the end of the run).
    pieces = np.empty((n, ndim), object)
    for axis, follows in enumerate([*between, after + sep + before]):
        pieces[:, axis] = np.array([t + follows for t in texts], object)[index[:, axis]]
    bounds = np.asarray(bounds, np.int64)
    last = bounds[1:][np.diff(bounds) > 0] - 1
    closing = np.array([t + after + end for t in texts], object)
    pieces[last, -1] = closing[index[last, -1]]
    flat = pieces.ravel().tolist()
    head = start + before
    return [
        head + "".join(flat[ndim * lo : ndim * hi]) if hi > lo else start + end
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist())
    ]


class Template:
    """Text with point lists still to format, all formatted by one `point_lists` call.

    >>> text = Template()
    >>> text.add('{"a":', np.array([[1.0, 2.0], [3.0, 4.0]]), ',"b":', np.array([[5.0, 6.0]]), "}")
    >>> text.render()
    '{"a":[[1.0,2.0],[3.0,4.0]],"b":[[5.0,6.0]]}'
    """

    def __init__(self) -> None:
        self._parts: list = []  # text, or the index of an array in _arrays
        self._arrays: list[np.ndarray] = []

    def add(self, *parts: str | np.ndarray) -> None:
        """Append text, or an (N, D) array of points to format at `render`."""
        for part in parts:
            if isinstance(part, str):
                self._parts.append(part)
            else:
                self._parts.append(len(self._arrays))
                self._arrays.append(part)

    def render(self, **style) -> str:
        """The whole text; `style` as for `point_lists`."""
        texts: list[str] = []
        if self._arrays:
            bounds = np.cumsum([0] + [len(a) for a in self._arrays])
            texts = point_lists(np.concatenate(self._arrays), bounds, **style)
        return "".join([p if isinstance(p, str) else texts[p] for p in self._parts])


_JSON = json.JSONEncoder(separators=(",", ":"))


def json_texts(values: Sequence) -> list[str]:
    """The JSON text of each value, as ``json.dumps`` writes it (numpy scalars as Python's).

    >>> json_texts([1, 2.5, float("nan"), "a\\"b", None, True])
    ['1', '2.5', 'NaN', '"a\\\\"b"', 'null', 'true']
    """
    kinds = set(map(type, values))
    # A column of finite floats or of ints (the usual table) skips the per-value checks.
    if kinds == {float} and all(map(math.isfinite, values)):
        return float_texts(values)
    if kinds == {int}:
        return list(map(int.__repr__, values))
    return [_JSON.encode(v.item() if isinstance(v, np.generic) else v) for v in values]


def json_key(key) -> str:
    """The JSON text of a dict key as ``json.dumps`` writes it (quoted)."""
    # json turns int, float, bool and None keys into strings its own way.
    return _JSON.encode({key: 0})[1:-3]
