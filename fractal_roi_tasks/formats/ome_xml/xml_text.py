"""Text and numbers inside the OME-XML document: XML escapes, and floats as ome-types writes them."""

from __future__ import annotations

import math
import re
from xml.sax.saxutils import escape

import numpy as np

from fractal_roi_tasks.errors import InvalidInputError

# What XML 1.0 cannot hold (control characters), and the escapes lxml writes.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_CONTENT_ESCAPES = {"\r": "&#13;"}


def point_number(value: float) -> str:
    """A point-list number: shortest exact decimals, no exponent, no trailing ".0"."""
    return np.format_float_positional(value, trim="-")


def float_attribute(value) -> str:
    """A float attribute as ome-types (xsdata) writes it."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(value).upper().replace("E+", "E")


def attribute_text(value) -> str:
    """Text for inside an attribute's double quotes."""
    return escape(_xml_text(value), _ATTRIBUTE_ESCAPES)


def content_text(value) -> str:
    """Text for between tags."""
    return escape(_xml_text(value), _CONTENT_ESCAPES)


def _xml_text(value) -> str:
    text = str(value)
    if _NOT_XML.search(text):
        raise InvalidInputError(
            f"OME-XML cannot hold control characters, found in {text!r}; "
            "remove them from the names, columns or context values."
        )
    return text
