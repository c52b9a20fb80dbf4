"""Tables written in one pass (`io.table_write`) are the files ngio's `add_table` writes.

The masking table is built from columns (`io.ngio_tables.masking_table`), not
from one `ngio.Roi` per object: its frame and metadata must be those of the
`ngio.MaskingRoiTable` of such ROIs, built here the plain ngio way.
"""

from pathlib import Path

import anndata
import ngio
import numpy as np
import pandas as pd
import pytest

from fractal_roi_tasks.io import ngio_tables
from fractal_roi_tasks.io.table_write import add_table
from fractal_roi_tasks.names import ROI_NAME_INDEX
from fractal_roi_tasks.rois import extract_rois
from fractal_roi_tasks.rois.time_points import combine_time_points, time_column


def _boxes_2d() -> np.ndarray:
    labels = np.zeros((40, 50), np.uint32)
    labels[2:9, 3:20] = 4
    labels[12:30, 25:31] = 9
    labels[31:39, 1:49] = 2
    labels[20:24, 5:9] = 4  # a second piece of object 4
    return labels


def _boxes_3d() -> np.ndarray:
    labels = np.zeros((4, 30, 30), np.uint32)
    labels[0:2, 2:9, 3:20] = 1
    labels[1:4, 12:28, 20:27] = 5
    return labels


def _roi_sets() -> dict:
    timed = combine_time_points(
        [(t, extract_rois(np.roll(_boxes_2d(), 3 * t, axis=1), shape="point", spacing=(0.5, 0.25)))
         for t in (0, 2)],
        time_step=1.5, time_unit="second",
    )
    return {
        "2d": (extract_rois(_boxes_2d(), shape="point", spacing=(0.5, 0.25)), {}),
        "3d": (extract_rois(_boxes_3d(), shape="point", spacing=(2.0, 0.5, 0.5)), {}),
        "empty": (extract_rois(np.zeros((8, 8), np.uint32), shape="point", spacing=(1.0, 1.0)), {}),
        "timed": (timed, {"time_step": 1.5, "time_unit": "second"}),
    }


def _ngio_masking_table(roi_set, label_name, *, time_step=None, time_unit=None):
    """The reference: one `ngio.Roi` per object, in an `ngio.MaskingRoiTable`."""
    feats = roi_set.features
    axes = ("x", "y", "z") if "bbox_z_um" in feats else ("x", "y")
    timed = "t" in feats
    rois = []
    for i, (_, row) in enumerate(feats.iterrows()):
        slices = {a: (row[f"bbox_{a}_um"], row[f"bbox_len_{a}_um"]) for a in axes}
        extra = {}
        if timed:
            t = int(row["t"])
            slices["t"] = (t * time_step, time_step)
            extra = {"t": t, time_column(time_unit): t * time_step}
        name = roi_set.rois[i].name if timed else str(int(row["label"]))
        rois.append(ngio.Roi.from_values(
            name=name, slices=slices, space="world", label=int(row["label"]), **extra
        ))
    if not timed:
        return ngio.MaskingRoiTable(rois, reference_label=label_name)
    meta = ngio.MaskingRoiTable(reference_label=label_name).meta.model_copy(
        update={"index_key": ROI_NAME_INDEX, "index_type": "str", "instance_key": ROI_NAME_INDEX}
    )
    return ngio.MaskingRoiTable(rois, meta=meta)


@pytest.mark.parametrize("case", ["2d", "3d", "empty", "timed"])
def test_masking_table_is_ngios_masking_roi_table(case):
    roi_set, times = _roi_sets()[case]
    ours = ngio_tables.masking_table(roi_set, "cells", **times)
    reference = _ngio_masking_table(roi_set, "cells", **times)
    pd.testing.assert_frame_equal(ours.table_data, reference.table_data)
    assert ours.meta.model_dump() == reference.meta.model_dump()
    assert ours.backend_name == reference.backend_name


def _image(url: Path, ngff_version: str) -> ngio.OmeZarrContainer:
    ome_zarr = ngio.create_empty_ome_zarr(
        str(url), shape=(40, 50), pixelsize=0.5, axes_names=("y", "x"), levels=1,
        dtype="uint8", ngff_version=ngff_version,
    )
    ome_zarr.derive_label("cells", dtype="uint32").set_array(_boxes_2d())
    return ome_zarr


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("ngff_version", ["0.4", "0.5"])
def test_add_table_writes_the_files_add_table_writes(tmp_path, ngff_version):
    sets = _roi_sets()
    urls = {how: tmp_path / f"{how}.zarr" for how in ("ngio", "ours")}
    containers = {how: _image(url, ngff_version) for how, url in urls.items()}
    # Twice: the first writes new tables (and the tables group), the second overwrites them.
    for case in ("2d", "timed", "3d"):
        roi_set, times = sets[case]
        for how, ome_zarr in containers.items():
            tables = {
                "cells_ROI_table": ngio_tables.masking_table(roi_set, "cells", **times),
                "cells_features": ngio_tables.feature_table(roi_set, "cells"),
                "branches": ngio.GenericTable(roi_set.features.copy()),
            }
            for name, table in tables.items():
                if how == "ngio":
                    ome_zarr.add_table(name, table, overwrite=True)
                else:
                    add_table(ome_zarr, str(urls[how]), name, table)
    written = {how: _files(url / "tables") for how, url in urls.items()}
    assert written["ours"] == written["ngio"]

    again = ngio.open_ome_zarr_container(str(urls["ours"]))
    assert again.list_tables() == ["cells_ROI_table", "cells_features", "branches"]
    masking = again.get_masking_roi_table("cells_ROI_table")
    assert masking.reference_label == "cells"
    assert sorted(roi.label for roi in masking.rois()) == [1, 5]
    features = anndata.read_zarr(urls["ours"] / "tables" / "cells_features")
    assert features.obs.index.tolist() == ["1", "5"]


def test_add_table_replaces_a_leftover_of_a_killed_write(tmp_path):
    url = tmp_path / "image.zarr"
    ome_zarr = _image(url, "0.4")
    roi_set = _roi_sets()["2d"][0]
    add_table(ome_zarr, str(url), "cells_features", ngio_tables.feature_table(roi_set, "cells"))
    leftover = url / "tables" / ".cells_features.building"
    leftover.mkdir()
    (leftover / "half-written").write_bytes(b"")
    (url / "tables" / ".cells_features.trash").mkdir()
    add_table(ome_zarr, str(url), "cells_features", ngio_tables.feature_table(roi_set, "cells"))
    assert sorted(p.name for p in (url / "tables").iterdir()) == [".zattrs", ".zgroup", "cells_features"]
    frame = ngio.open_ome_zarr_container(str(url)).get_feature_table("cells_features").dataframe
    assert frame.index.tolist() == [2, 4, 9]
