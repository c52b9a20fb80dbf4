"""Well grouping, reference pairing and the table rewrite guard."""

from pathlib import Path

import ngio
import pytest

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io.table_guard import guarded_rewrite, restore_interrupted
from fractal_roi_tasks.io.wells import reference_of, reference_pairs, well_url_of, wells_of
from fractal_roi_tasks.sample_data import make_plate
from fractal_roi_tasks.tasks.init_calculate_registration import init_calculate_registration
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus


@pytest.fixture(scope="module")
def cycles(tmp_path_factory):
    return make_plate(tmp_path_factory.mktemp("cycles"), acquisitions=3)


def test_init_pairs_every_cycle_with_its_wells_reference(cycles):
    urls = [img.zarr_url for img in cycles.images]
    out = init_calculate_registration(zarr_urls=urls, zarr_dir="unused")
    items = out["parallelization_list"]
    assert len(items) == 4  # 2 wells x 2 non-reference acquisitions
    for item in items:
        reference = item["init_args"]["reference_zarr_url"]
        assert Path(reference).name == "0"
        assert Path(reference).parent == Path(item["zarr_url"]).parent
    out = init_calculate_registration(zarr_urls=urls, zarr_dir="unused", reference_acquisition=2)
    assert {Path(i["init_args"]["reference_zarr_url"]).name for i in out["parallelization_list"]} == {"2"}


def test_consensus_init_gives_one_item_per_well(cycles):
    urls = [img.zarr_url for img in cycles.images]
    items = init_registration_consensus(zarr_urls=urls, zarr_dir="unused")["parallelization_list"]
    assert len(items) == 2
    for item in items:
        assert Path(item["zarr_url"]).name == "0"
        members = item["init_args"]["zarr_url_list"]
        assert sorted(Path(u).name for u in members) == ["0", "1", "2"]


def test_reference_pairs_keep_the_order_given_and_a_reference_is_its_own(cycles):
    urls = [img.zarr_url for img in cycles.images][::-1]
    pairs = reference_pairs(urls, 1)
    assert [p.zarr_url for p in pairs] == urls
    for pair in pairs:
        assert pair.is_reference == (Path(pair.zarr_url).name == "1")
        assert Path(pair.reference_zarr_url) == Path(pair.zarr_url).parent / "1"


def test_missing_reference_acquisition_names_what_the_well_has(cycles):
    urls = [img.zarr_url for img in cycles.images]
    with pytest.raises(NotFoundError, match=r"no image of reference acquisition 7.*acquisitions \{0: \['0'\], 1"):
        init_calculate_registration(zarr_urls=urls, zarr_dir="unused", reference_acquisition=7)


def test_several_images_per_acquisition_pair_by_name(cycles, tmp_path):
    urls = [img.zarr_url for img in cycles.images]
    well = wells_of(urls)[well_url_of(urls[0])]
    fake = type(well)(well.well_url, {0: [f"{well.well_url}/0", f"{well.well_url}/0_illum"], 1: [f"{well.well_url}/1_illum"]})
    assert reference_of(f"{well.well_url}/1_illum", fake, 0) == f"{well.well_url}/0_illum"
    with pytest.raises(InvalidInputError, match="Cannot tell which of the reference images"):
        reference_of(f"{well.well_url}/1_other", fake, 0)


def test_image_outside_a_plate_is_refused(tmp_path):
    from fractal_roi_tasks.sample_data import make_image

    url = make_image(tmp_path / "single.zarr")
    with pytest.raises(InvalidInputError, match="not an image inside an HCS plate well"):
        init_calculate_registration(zarr_urls=[url], zarr_dir="unused")


def test_guard_restores_the_table_after_a_failure_and_after_a_kill(cycles, tmp_path):
    url = cycles.images[0].zarr_url
    before = ngio.open_ome_zarr_container(url).get_roi_table("FOV_ROI_table").dataframe

    with pytest.raises(RuntimeError, match="boom"):
        with guarded_rewrite(url, "FOV_ROI_table"):
            ngio.open_ome_zarr_container(url).delete_table("FOV_ROI_table")
            raise RuntimeError("boom")
    after = ngio.open_ome_zarr_container(url).get_roi_table("FOV_ROI_table").dataframe
    assert after.equals(before)

    # A kill leaves the backup behind; the next run (or restore) puts it back.
    tables = Path(url) / "tables"
    import shutil

    shutil.copytree(tables / "FOV_ROI_table", tables / ".FOV_ROI_table.backup")
    shutil.rmtree(tables / "FOV_ROI_table")
    assert restore_interrupted(url, "FOV_ROI_table")
    again = ngio.open_ome_zarr_container(url).get_roi_table("FOV_ROI_table").dataframe
    assert again.equals(before)
    assert not (tables / ".FOV_ROI_table.backup").exists()
