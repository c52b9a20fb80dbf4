"""Per-label colors and properties in a label image's ``image-label`` metadata.

ngio writes ``image-label`` with its ``source``; the optional ``colors`` and
``properties`` lists of the OME-NGFF labels spec are added here.
"""

from __future__ import annotations

import colorsys

import zarr

# Past this many objects the lists would bloat the metadata every viewer
# parses on open; the feature table holds the same facts at any size.
MAX_LABELS_IN_METADATA = 1000


def label_colors(labels: list[int]) -> list[dict]:
    """A stable, distinct RGBA colour per label value (golden-angle hues)."""
    colors = []
    for value in labels:
        hue = (value * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
        colors.append(
            {"label-value": int(value), "rgba": [round(r * 255), round(g * 255), round(b * 255), 255]}
        )
    return colors


def write_label_properties(
    zarr_url: str, label_name: str, properties: list[dict]
) -> bool:
    """Set ``colors`` and ``properties`` of label image `label_name`.

    Args:
        zarr_url: the image.
        label_name: the label image under ``labels/``.
        properties: one dict per label value, each with ``label-value``.

    Returns:
        True if written; False (and both lists removed, so no stale entries
        stay behind) when there are more than `MAX_LABELS_IN_METADATA` labels.
    """
    group = zarr.open_group(f"{zarr_url.rstrip('/')}/labels/{label_name}", mode="r+")
    attrs = group.attrs.asdict()
    holder = attrs["ome"] if "ome" in attrs else attrs
    image_label = dict(holder.get("image-label", {}))
    small = len(properties) <= MAX_LABELS_IN_METADATA
    if small:
        image_label["colors"] = label_colors([p["label-value"] for p in properties])
        image_label["properties"] = properties
    else:
        image_label.pop("colors", None)
        image_label.pop("properties", None)
    holder["image-label"] = image_label
    if "ome" in attrs:
        group.attrs["ome"] = holder
    else:
        group.attrs["image-label"] = image_label
    return small
