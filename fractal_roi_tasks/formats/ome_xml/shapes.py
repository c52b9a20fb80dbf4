"""The shape elements of each ROI, in full-resolution OME pixels.

Polygons without holes stay ``Polygon``; a holed piece becomes the ``Mask``
of its pixels; masks become a ``Mask`` per plane; ellipses an ``Ellipse``
with an ``AffineTransform``; points a ``Point``; skeleton branches a
``Polyline`` per run of constant z. See the package docstring for the
coordinate conventions.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError
from fractal_roi_tasks.formats.batch import gather_rings
from fractal_roi_tasks.formats.coordinates import to_corner_based
from fractal_roi_tasks.formats.ome_xml.fill import even_odd_fills
from fractal_roi_tasks.formats.ome_xml.xml_text import float_attribute
from fractal_roi_tasks.rois.shapes import Ellipse, Mask, ObjectRoi, Point, Polygon, Polyline


class Planes:
    """What every shape needs: the scale and the plane indices."""

    def __init__(self, *, scale, ndim, size_z, the_c):
        self.scale_yx = scale[-2:]
        self.scale_z = scale[0] if ndim == 3 else 1.0
        self.ndim = ndim
        self.size_z = size_z
        self.the_c = the_c

    def of_plane(self, z) -> list[int]:
        """Full-resolution planes of level plane `z` (None in 2D -> [0])."""
        if z is None or self.ndim == 2:
            return [0]
        planes = _covered(int(z), int(z) + 1, self.scale_z).tolist()
        return planes or [self.of_position(float(z))]

    def of_position(self, z: float) -> int:
        """Full-resolution plane holding the core z coordinate `z`."""
        plane = math.floor(to_corner_based(np.array([[z]]), (self.scale_z,))[0, 0])
        return min(max(plane, 0), self.size_z - 1)

    def common(self, shape_id: str, the_z: int, text: str, the_t: int = 0) -> str:
        """The attributes every shape has; `text` already escaped."""
        return f'Text="{text}" ID="{shape_id}" TheZ="{the_z}" TheT="{the_t}" TheC="{self.the_c}"'


def polygon_outlines(shapes: list, planes: Planes) -> list:
    """Per Polygon of `shapes`, in order: its exterior (x, y), or its Mask when it has holes.

    All rings are converted to full-resolution (x, y) at once; a holed piece
    becomes (x0, y0, bits), the pixels it encloses (OME polygons have no holes).
    """
    polygons = [s for s in shapes if isinstance(s, Polygon)]
    rings = gather_rings(polygons)
    xy = _xy(rings.points, planes)
    views = [xy[lo:hi] for lo, hi in zip(rings.bounds[:-1].tolist(), rings.bounds[1:].tolist())]
    pieces = rings.per_polygon(views)
    holed = [n for n, piece in enumerate(pieces) if len(piece) > 1]
    outlines = [piece[0] for piece in pieces]
    for n, filled in zip(holed, even_odd_fills([pieces[n] for n in holed])):
        # A traced piece always holds a pixel; were it empty, its exterior stands in.
        outlines[n] = outlines[n] if filled is None else filled
    return outlines


def roi_shapes(roi: ObjectRoi, n: int, name: str, planes: Planes, outlines: Iterator) -> list:
    """(kind, text parts) of each shape of ROI `n`, IDs in the order they are made.

    `name` is the ROI's escaped name, each shape's Text; `outlines` yields
    what `polygon_outlines` made for each Polygon, in order. Every shape is on
    the ROI's time point (TheT = ``roi.t``, 0 without time).
    """
    made: list = []
    the_t = 0 if roi.t is None else roi.t  # OME's TheT is 0-based, as ObjectRoi.t

    def common(the_z: int) -> str:
        return planes.common(f"Shape:{n}:{len(made)}", the_z, name, the_t)

    for shape in roi.shapes:
        if isinstance(shape, Polygon):
            outline = next(outlines)
            for the_z in planes.of_plane(shape.z):
                if isinstance(outline, tuple):
                    made.append(_mask(*outline, common(the_z)))
                else:
                    made.append(_point_list("Polygon", outline, common(the_z)))
        elif isinstance(shape, Ellipse):
            for the_z in planes.of_plane(shape.z):
                made.append(_ellipse(shape, planes, common(the_z)))
        elif isinstance(shape, Point):
            the_z = planes.of_position(shape.position[0]) if len(shape.position) == 3 else 0
            x, y = _xy(np.asarray([shape.position[-2:]], float), planes)[0]
            made.append(_point(x, y, common(the_z)))
        elif isinstance(shape, Mask):
            for the_z, x0, y0, bits in _mask_planes(shape, planes):
                made.append(_mask(x0, y0, bits, common(the_z)))
        elif isinstance(shape, Polyline):
            for the_z, xy in _polyline_runs(shape, planes):
                if len(xy) == 1:
                    made.append(_point(xy[0, 0], xy[0, 1], common(the_z)))
                else:
                    made.append(_point_list("Polyline", xy, common(the_z)))
        else:  # pragma: no cover - the dataclasses above are all there is
            raise InvalidInputError(f"Cannot write a {type(shape).__name__} shape to OME-XML.")
    return made


def _xy(points_yx: np.ndarray, planes: Planes) -> np.ndarray:
    """(N, 2) core (y, x) -> (N, 2) corner-based full-resolution (x, y)."""
    return to_corner_based(points_yx, planes.scale_yx)[:, ::-1]


def _point_list(kind: str, xy: np.ndarray, common: str) -> tuple:
    """A Polygon or Polyline; its Points formatted with all others (`POINTS_STYLE`)."""
    return kind, [f'      <{kind} {common} Points="', xy, '"/>\n']


def _point(x: float, y: float, common: str) -> tuple:
    return "Point", [f'      <Point {common} X="{float_attribute(x)}" Y="{float_attribute(y)}"/>\n']


def _ellipse(shape: Ellipse, planes: Planes, common: str) -> tuple:
    sy, sx = planes.scale_yx
    ((cx, cy),) = _xy(np.asarray([shape.center], float), planes)
    # Radii in full-resolution pixels (exact for the usual isotropic scale);
    # the transform carries the rotation and any anisotropy of the scale.
    g = math.sqrt(sx * sy)
    cos, sin = math.cos(shape.angle), math.sin(shape.angle)
    linear = np.array([[sx * cos, -sx * sin], [sy * sin, sy * cos]]) / g
    major, minor = shape.semi_axes
    element = (
        f'      <Ellipse {common} X="{float_attribute(cx)}" Y="{float_attribute(cy)}" '
        f'RadiusX="{float_attribute(major * g)}" RadiusY="{float_attribute(minor * g)}"'
    )
    if np.allclose(linear, np.eye(2), rtol=0, atol=1e-12):
        return "Ellipse", [element + "/>\n"]
    offset = np.array([cx, cy]) - linear @ np.array([cx, cy])
    values = (linear[0, 0], linear[1, 0], linear[0, 1], linear[1, 1], offset[0], offset[1])
    names = ("A00", "A10", "A01", "A11", "A02", "A12")
    transform = " ".join(f'{k}="{float_attribute(v)}"' for k, v in zip(names, values))
    return "Ellipse", [f"{element}>\n        <Transform {transform}/>\n      </Ellipse>\n"]


def _mask(x0: int, y0: int, bits: np.ndarray, common: str) -> tuple:
    packed = np.packbits(bits.astype(bool).ravel()).tobytes()
    height, width = bits.shape
    # The schema: Length is "the length of the base-64 encoded block".
    text = base64.b64encode(packed).decode("ascii")
    return "Mask", [
        f'      <Mask {common} X="{float_attribute(x0)}" Y="{float_attribute(y0)}" '
        f'Width="{float_attribute(width)}" Height="{float_attribute(height)}">\n'
        f'        <BinData BigEndian="true" Length="{4 * math.ceil(len(packed) / 3)}">'
        f"{text}</BinData>\n      </Mask>\n"
    ]


def _mask_planes(shape: Mask, planes: Planes):
    """Yield (TheZ, x0, y0, bits) of a Mask shape, per full-resolution plane."""
    mask = np.asarray(shape.mask, bool)
    origin = tuple(int(o) for o in shape.origin)
    if mask.ndim == 2:
        mask, origin = mask[None], (None, *origin)
    sy, sx = planes.scale_yx
    rows = _covered(origin[1], origin[1] + mask.shape[1], sy)
    cols = _covered(origin[2], origin[2] + mask.shape[2], sx)
    level_rows = _level_index(rows, sy, origin[1], mask.shape[1])
    level_cols = _level_index(cols, sx, origin[2], mask.shape[2])
    for k, plane in enumerate(mask):
        full = plane[np.ix_(level_rows, level_cols)]
        if not full.any():
            continue
        r = np.flatnonzero(full.any(axis=1))
        c = np.flatnonzero(full.any(axis=0))
        bits = full[r[0] : r[-1] + 1, c[0] : c[-1] + 1]
        z_planes = [0] if origin[0] is None else planes.of_plane(origin[0] + k)
        for the_z in z_planes:
            yield the_z, int(cols[c[0]]), int(rows[r[0]]), bits


def _polyline_runs(shape: Polyline, planes: Planes):
    """Yield (TheZ, (N, 2) x, y) for each run of the path in one plane."""
    points = np.asarray(shape.points, float)
    if shape.closed and len(points) > 1:
        points = np.concatenate([points, points[:1]])
    xy = _xy(points[:, -2:], planes)
    if points.shape[1] == 2:
        if len(xy):
            yield 0, xy
        return
    the_z = np.array([planes.of_position(z) for z in points[:, 0]], int)
    cuts = np.flatnonzero(np.diff(the_z)) + 1
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(the_z)]):
        yield int(the_z[lo]), xy[lo:hi]


def _covered(lo: int, hi: int, scale: float) -> np.ndarray:
    """Full-resolution pixels whose centres lie in level pixels lo .. hi - 1.

    Level pixel i covers [i, i + 1) * scale in full-resolution corner-based
    coordinates; full-resolution pixel j has its centre at j + 0.5.
    """
    start = math.ceil(lo * scale - 0.5)
    stop = math.ceil(hi * scale - 0.5)
    return np.arange(start, max(start, stop))


def _level_index(full: np.ndarray, scale: float, origin: int, size: int) -> np.ndarray:
    """Index into a level crop (starting at `origin`) of full-resolution pixels."""
    index = np.floor((full + 0.5) / scale).astype(np.int64) - origin
    return np.clip(index, 0, max(size - 1, 0))
