"""Apply Registration to Image on plates with known whole-pixel shifts: pixels, safety, races."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import ngio
import numpy as np
import pytest

from fractal_roi_tasks.errors import InvalidInputError, NotFoundError
from fractal_roi_tasks.io import swap
from fractal_roi_tasks.io.roi_tables import read_roi_table, write_roi_table
from fractal_roi_tasks.names import REFERENCE_COLUMNS
from fractal_roi_tasks.sample_data import make_plate
from fractal_roi_tasks.tasks.apply_registration_to_image import apply_registration_to_image
from fractal_roi_tasks.tasks.find_registration_consensus import find_registration_consensus
from fractal_roi_tasks.tasks.init_registration_consensus import init_registration_consensus

pytestmark = pytest.mark.filterwarnings("ignore:Path .* contains non-alphanumeric")

TABLE = "FOV_ROI_table_registered"
SHIFTS = {(1, 0): (0, 3, -5), (1, 1): (0, -7, 2), (1, 2): (0, 0, 4), (1, 3): (0, 11, 1),
          (2, 0): (0, -2, 6), (2, 1): (0, 4, -3), (2, 2): (0, -9, 0), (2, 3): (0, 0, 0)}
SHIFTS_3D = {(1, 0): (1, 3, -5), (1, 1): (-1, -2, 4)}
_CACHE: dict = {}


def registered_plate(root, **options):
    """A plate with known shifts whose consensus tables are written from the truth.

    The translations Calculate Registration would measure are put in directly
    (whole pixels, so the expected result is exact and the test fast).
    """
    plate = make_plate(root, wells=options.pop("wells", ("B03",)), **options)
    for img in plate.images:
        if img.acquisition == 0:
            continue
        ome_zarr = ngio.open_ome_zarr_container(img.zarr_url)
        table, frame = read_roi_table(ome_zarr, "FOV_ROI_table", img.zarr_url)
        for i, axis in enumerate("zyx"):
            frame[f"translation_{axis}"] = [
                plate.truth[(img.well, img.acquisition, n)].translation_um[i] for n in frame.index
            ]
        write_roi_table(ome_zarr, "FOV_ROI_table", frame, like=table)
    urls = [img.zarr_url for img in plate.images]
    for item in init_registration_consensus(zarr_urls=urls, zarr_dir="x")["parallelization_list"]:
        find_registration_consensus(**item)
    return plate


@pytest.fixture
def cached_plate(tmp_path_factory, tmp_path):
    """A copy of a cached registered plate: ``cached_plate(key, **make_plate options)``."""

    def get(key, **options):
        if key not in _CACHE:
            _CACHE[key] = registered_plate(tmp_path_factory.mktemp(key), **options)
        return copy_plate(_CACHE[key], tmp_path / key)

    return get


def copy_plate(plate, target):
    """A copy of `plate` in the new directory `target`."""
    source = Path(plate.plate_url).parent
    shutil.copytree(source, target)
    images = [replace(i, zarr_url=i.zarr_url.replace(str(source), str(target))) for i in plate.images]
    return replace(plate, plate_url=plate.plate_url.replace(str(source), str(target)), images=images)


def plate_2d(cached_plate, version="0.4"):
    return cached_plate(f"p2d_{version}", acquisitions=3, shifts=SHIFTS, ngff_version=version)


def snapshot(url):
    """Every level of the image and its labels, and every table, as plain data."""
    ome_zarr = ngio.open_ome_zarr_container(url)
    out = {f"image/{p}": ome_zarr.get_image(path=p).get_array() for p in ome_zarr.level_paths}
    for name in ome_zarr.list_labels():
        label = ome_zarr.get_label(name)
        for path in label.meta.paths:
            out[f"labels/{name}/{path}"] = ome_zarr.get_label(name, path=path).get_array()
    for name in ome_zarr.list_tables():
        out[f"tables/{name}"] = ome_zarr.get_table(name).dataframe
    return out


def assert_same(first, second):
    assert first.keys() == second.keys()
    for key in first:
        if key.startswith("tables/"):
            assert first[key].equals(second[key]), key
        else:
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def hidden_siblings(url):
    return sorted(p.name for p in Path(url).parent.iterdir() if p.name.startswith(f".{Path(url).name}"))


def check_registered(plate, registered_urls):
    """Every cycle equals the reference inside the consensus region; zero outside."""
    by_acq = {img.acquisition: registered_urls[img.zarr_url] for img in plate.images}
    reference = ngio.open_ome_zarr_container(by_acq[0])
    frame = reference.get_roi_table(TABLE).dataframe
    image0 = reference.get_image()
    size = image0.pixel_size
    axes = [a for a in "zyx" if a in image0.axes]
    inside = np.zeros([image0.shape[image0.axes.index(a)] for a in axes], bool)
    for _, row in frame.iterrows():
        box = []
        for a in axes:
            start = round(row[f"{a}_micrometer_reference"] / getattr(size, a))
            length = round(row[f"len_{a}_micrometer"] / getattr(size, a))
            box.append(slice(start, start + length))
        inside[tuple(box)] = True
    assert inside.mean() > 0.5
    ref_pixels = image0.get_array()
    ref_labels = reference.get_label("nuclei").get_array()
    assert not ref_pixels[:, ~inside].any()
    for acquisition, url in by_acq.items():
        ome_zarr = ngio.open_ome_zarr_container(url)
        pixels = ome_zarr.get_image().get_array()
        np.testing.assert_array_equal(pixels[:, inside], ref_pixels[:, inside], err_msg=str(acquisition))
        assert not pixels[:, ~inside].any()
        labels = ome_zarr.get_label("nuclei").get_array()
        np.testing.assert_array_equal(labels, ref_labels)
        coarse = ome_zarr.get_image(path=ome_zarr.level_paths[-1]).get_array()
        assert coarse.shape[0] == pixels.shape[0] and coarse.any()
        table = ome_zarr.get_roi_table(TABLE).dataframe
        for a in axes:
            np.testing.assert_allclose(table[f"{a}_micrometer"], frame[f"{a}_micrometer_reference"])


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_cycles_match_the_reference_in_place(cached_plate, version):
    plate = plate_2d(cached_plate, version)
    originals = {img.zarr_url: snapshot(img.zarr_url) for img in plate.images}
    for img in plate.images:
        out = apply_registration_to_image(zarr_url=img.zarr_url, registered_roi_table=TABLE)
        assert out == {"image_list_updates": [{"zarr_url": img.zarr_url}]}
        assert hidden_siblings(img.zarr_url) == []
    check_registered(plate, {img.zarr_url: img.zarr_url for img in plate.images})
    moving = plate.images[1].zarr_url
    after = snapshot(moving)
    assert not np.array_equal(after["image/0"], originals[moving]["image/0"])
    fov = after["tables/FOV_ROI_table"]
    assert "translation_x" not in fov
    np.testing.assert_allclose(fov["x_micrometer"], originals[moving]["tables/FOV_ROI_table"]["x_micrometer"])
    masking_before = originals[moving]["tables/FOV_ROI_table"]
    assert len(masking_before) == 4
    # A re-run after success changes nothing, not even a file's time.
    stamps = {p: p.stat().st_mtime_ns for p in Path(moving).rglob("*")}
    apply_registration_to_image(zarr_url=moving, registered_roi_table=TABLE)
    assert {p: p.stat().st_mtime_ns for p in Path(moving).rglob("*")} == stamps


def test_new_image_beside_the_original(cached_plate):
    plate = plate_2d(cached_plate)
    registered = {}
    for img in plate.images:
        before = snapshot(img.zarr_url)
        out = apply_registration_to_image(
            zarr_url=img.zarr_url, registered_roi_table=TABLE, overwrite_input=False
        )
        new = f"{img.zarr_url}_registered"
        assert out == {"image_list_updates": [{"zarr_url": new, "origin": img.zarr_url}]}
        assert_same(snapshot(img.zarr_url), before)
        registered[img.zarr_url] = new
    check_registered(plate, registered)
    well = ngio.open_ome_zarr_well(str(Path(plate.images[0].zarr_url).parent))
    for img in plate.images:
        assert well.get_image_acquisition_id(f"{img.path}_registered") == img.acquisition
    again = apply_registration_to_image(
        zarr_url=plate.images[1].zarr_url, registered_roi_table=TABLE, overwrite_input=False
    )
    assert again["image_list_updates"][0]["zarr_url"] == registered[plate.images[1].zarr_url]
    assert len(ngio.open_ome_zarr_well(str(Path(plate.images[0].zarr_url).parent)).paths()) == 6


def test_labels_left_unregistered_when_asked(cached_plate, caplog):
    plate = plate_2d(cached_plate)
    moving = next(img for img in plate.images if img.acquisition == 1)
    label_before = ngio.open_ome_zarr_container(moving.zarr_url).get_label("nuclei").get_array()
    apply_registration_to_image(
        zarr_url=moving.zarr_url, registered_roi_table=TABLE, register_labels=False,
        overwrite_input=False,
    )
    new = ngio.open_ome_zarr_container(f"{moving.zarr_url}_registered")
    np.testing.assert_array_equal(new.get_label("nuclei").get_array(), label_before)
    assert "copied unregistered" in caplog.text
    image_before = ngio.open_ome_zarr_container(moving.zarr_url).get_image().get_array()
    assert not np.array_equal(new.get_image().get_array(), image_before)  # pixels did move


def test_3d_with_z_shift_and_masking_table(cached_plate):
    plate = cached_plate("p3d", acquisitions=2, fov_grid=(1, 2), z_planes=5, shifts=SHIFTS_3D)
    from fractal_roi_tasks.tasks.segment_to_rois import segment_to_rois

    for img in plate.images:
        segment_to_rois(zarr_url=img.zarr_url, label_name="nuclei")
        apply_registration_to_image(zarr_url=img.zarr_url, registered_roi_table=TABLE)
    check_registered(plate, {img.zarr_url: img.zarr_url for img in plate.images})
    moved = ngio.open_ome_zarr_container(plate.images[1].zarr_url)
    label = moved.get_label("nuclei")
    rois = moved.get_masking_roi_table("nuclei_ROI_table").rois()
    assert len(rois) > 20
    for roi in rois[:40]:  # each box moved with its object
        assert (label.get_roi(roi) == roi.label).any(), roi


def test_bad_input_writes_nothing(cached_plate):
    plate = plate_2d(cached_plate)
    url = plate.images[1].zarr_url
    listing = sorted(str(p) for p in Path(plate.plate_url).rglob("*"))
    with pytest.raises(NotFoundError, match="run Calculate Registration and Find Registration Consensus"):
        apply_registration_to_image(zarr_url=url, registered_roi_table="nope_registered")
    with pytest.raises(NotFoundError, match="no image of reference acquisition 7"):
        apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE, reference_acquisition=7)
    with pytest.raises(InvalidInputError, match="another reference"):
        apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE, reference_acquisition=1)
    with pytest.raises(ValueError, match="plain name"):
        apply_registration_to_image(zarr_url=url, registered_roi_table="../x")
    assert sorted(str(p) for p in Path(plate.plate_url).rglob("*")) == listing
    ome_zarr = ngio.open_ome_zarr_container(url)
    table, frame = read_roi_table(ome_zarr, TABLE, url)
    write_roi_table(ome_zarr, TABLE, frame.rename(index={"FOV_1": "FOV_9"}), like=table)
    listing = sorted(str(p) for p in Path(plate.plate_url).rglob("*"))
    with pytest.raises(InvalidInputError, match="do not match"):
        apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE)
    assert sorted(str(p) for p in Path(plate.plate_url).rglob("*")) == listing


# --------------------------------------------------------------------------
# Kills and races, through `python -m` as a Fractal server runs the task


def command(tmp_path, url, name, **args):
    args_json = tmp_path / f"{name}.args.json"
    args_json.write_text(json.dumps({"zarr_url": url, "registered_roi_table": TABLE, **args}))
    return [sys.executable, "-m", "fractal_roi_tasks.tasks.apply_registration_to_image",
            "--args-json", str(args_json), "--out-json", str(tmp_path / f"{name}.out.json")]


def assert_whole_image(url, original, final):
    """At `url`: the original or the final image, never anything else."""
    got = snapshot(url)
    if np.array_equal(got["image/0"], original["image/0"]):
        assert_same(got, original)
    else:
        assert_same(got, final)


CRASH_POINTS = [
    ("registering", ""), ("built", ""), ("completed", ""), ("exchanged", ""), ("trashed", ""),
    ("moved_away", "1"), ("exchanged", "1"),
]


def test_killed_at_every_step_then_rerun(cached_plate, tmp_path):
    plate = plate_2d(cached_plate)
    url = plate.images[1].zarr_url
    pristine = tmp_path / "pristine"
    shutil.copytree(url, pristine)
    original = snapshot(url)
    apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE)
    final = snapshot(url)
    for point, no_exchange in CRASH_POINTS:
        shutil.rmtree(url)
        shutil.copytree(pristine, url)
        env = {**os.environ, swap.CRASH_ENV: point, swap.NO_EXCHANGE_ENV: no_exchange}
        result = subprocess.run(command(tmp_path, url, point), env=env, capture_output=True)
        assert result.returncode == 1, (point, result.stderr.decode()[-2000:])
        if point != "moved_away":  # the one step of the two-rename fallback with nothing at url
            assert_whole_image(url, original, final)
        apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE)
        assert_same(snapshot(url), final)
        assert hidden_siblings(url) == [], point


def _wait_for(condition, process, timeout_s=120.0):
    """Poll `condition` every 2 ms; False if `process` ended or the time ran out first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_killed_at_random_moments_then_rerun(cached_plate, tmp_path):
    # Every kill lands inside the build: after the build directory appears,
    # at a random fraction of the build's measured duration. A kill that the
    # machine's load pushed past the build's end is retried sooner; the test
    # asserts, from what the dead process left, that each counted kill did.
    plate = plate_2d(cached_plate)
    url = plate.images[2].zarr_url
    staging = swap.Staging.of(url)
    pristine = tmp_path / "pristine"
    shutil.copytree(url, pristine)
    original = snapshot(url)

    process = subprocess.Popen(command(tmp_path, url, "timed"), stderr=subprocess.DEVNULL)
    assert _wait_for(staging.building.exists, process)
    started = time.monotonic()
    assert _wait_for(lambda: not staging.building.exists(), process)
    build_s = time.monotonic() - started
    assert process.wait() == 0
    final = snapshot(url)
    assert not np.array_equal(final["image/0"], original["image/0"])

    rng = random.Random(1)
    inside = 0
    for attempt in range(6):
        fraction = rng.uniform(0.05, 0.95)
        for retry in range(5):
            shutil.rmtree(url)
            shutil.copytree(pristine, url)
            process = subprocess.Popen(command(tmp_path, url, f"r{attempt}"), stderr=subprocess.DEVNULL)
            assert _wait_for(staging.building.exists, process), "the build never started"
            time.sleep(fraction * build_s)
            process.send_signal(signal.SIGKILL)
            process.wait()
            # The state the kill left: a partial build, no complete one, the original in place.
            landed = staging.building.exists() and not staging.complete.exists()
            if landed:
                break
            fraction /= 4
        assert landed, f"attempt {attempt}: no kill landed inside the {build_s:.2f} s build"
        inside += 1
        assert_same(snapshot(url), original)
        apply_registration_to_image(zarr_url=url, registered_roi_table=TABLE)
        assert_same(snapshot(url), final)
        assert hidden_siblings(url) == []
    assert inside == 6


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_every_image_of_a_plate_at_once(cached_plate, tmp_path, round_):
    """Repeated on fresh copies: a race shows up as an occasional failure."""
    plate = cached_plate(
        "many", wells=("B03", "B04", "C03"), acquisitions=3, fov_grid=(1, 2),
        shifts={k: v for k, v in SHIFTS.items() if k[1] < 2},
    )
    processes = []
    for index, img in enumerate(plate.images):
        in_place = img.well == "C03"
        processes.append(subprocess.Popen(
            command(tmp_path, img.zarr_url, f"p{index}", overwrite_input=in_place),
            stderr=subprocess.PIPE,
        ))
    for process in processes:
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr.decode()[-2000:]
    assert len(processes) >= 8
    for well in ("B03", "B04", "C03"):
        images = [img for img in plate.images if img.well == well]
        suffix = "" if well == "C03" else "_registered"
        check_registered(replace(plate, images=images), {i.zarr_url: i.zarr_url + suffix for i in images})
        if suffix:
            paths = ngio.open_ome_zarr_well(str(Path(images[0].zarr_url).parent)).paths()
            assert sorted(paths) == sorted([i.path for i in images] + [f"{i.path}_registered" for i in images])


# --------------------------------------------------------------------------
# Consensus tables written by fractal-tasks-core 2.x

GEOMETRY = [f"{prefix}{axis}_micrometer" for axis in "zyx" for prefix in ("", "len_")]


def write_fractal_tasks_core_consensus(images, name=TABLE, *, write_to=None):
    """Write table `name` for one well's `images` as fractal-tasks-core 2.x would.

    Its Find Registration Consensus (`compute_registration_consensus`), per ROI
    name: the translations of every acquisition (0 where a table has none, the
    reference's); a consensus ROI starting at the reference ROI's start + their
    maximum, as long as its length - maximum + minimum; each acquisition gets
    the consensus moved by minus its own translation (its own frame), keeping
    its other fields, written with ngio as a plain ROI table in the source
    table's backend: no reference columns. Written into `write_to` (default:
    every image).
    """
    containers = {img.zarr_url: ngio.open_ome_zarr_container(img.zarr_url) for img in images}
    sources = {url: ome_zarr.get_roi_table("FOV_ROI_table") for url, ome_zarr in containers.items()}
    rois = {url: {roi.name: roi for roi in table.rois()} for url, table in sources.items()}
    reference = rois[next(img.zarr_url for img in images if img.acquisition == 0)]

    def translation(roi, axis):
        return (roi.model_extra or {}).get(f"translation_{axis}", 0.0)

    for img in write_to or images:
        shifted = []
        for roi in sources[img.zarr_url].rois():
            moved = roi
            for axis in "zyx":
                found = [translation(by_name[roi.name], axis) for by_name in rois.values()]
                base = reference[roi.name].get(axis)
                start = (base.start or 0.0) + max(found) - translation(roi, axis)
                moved = moved.update_slice(axis, (start, (base.length or 0.0) - max(found) + min(found)))
            shifted.append(moved)
        containers[img.zarr_url].add_table(
            name, ngio.RoiTable(rois=shifted), overwrite=True,
            backend=sources[img.zarr_url].backend_name or "anndata",
        )


def test_fractal_tasks_core_tables_give_the_same_pixels(cached_plate, tmp_path):
    """Their tables have no reference columns: the reference's own table gives them."""
    ours = plate_2d(cached_plate)
    theirs = copy_plate(ours, tmp_path / "theirs")
    write_fractal_tasks_core_consensus(theirs.images)
    for mine, other in zip(ours.images, theirs.images):
        our_table = ngio.open_ome_zarr_container(mine.zarr_url).get_roi_table(TABLE).dataframe
        their_table = ngio.open_ome_zarr_container(other.zarr_url).get_roi_table(TABLE).dataframe
        assert not set(REFERENCE_COLUMNS) & set(their_table)
        assert ("translation_x" in their_table) == (other.acquisition != 0)
        # Whole-pixel shifts: both packages find the same regions.
        np.testing.assert_allclose(their_table[GEOMETRY], our_table.loc[their_table.index, GEOMETRY])

    # Every image of the well at once, in place, as a Fractal server runs them:
    # the reference is replaced while the others read its table.
    processes = [
        subprocess.Popen(command(tmp_path, img.zarr_url, f"ftc{index}"), stderr=subprocess.PIPE)
        for index, img in enumerate(theirs.images)
    ]
    for process in processes:
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr.decode()[-2000:]
    for img in ours.images:
        apply_registration_to_image(zarr_url=img.zarr_url, registered_roi_table=TABLE)

    check_registered(theirs, {img.zarr_url: img.zarr_url for img in theirs.images})
    columns = GEOMETRY + list(REFERENCE_COLUMNS)
    for mine, other in zip(ours.images, theirs.images):
        expected, got = snapshot(mine.zarr_url), snapshot(other.zarr_url)
        assert expected.keys() == got.keys()
        for key in expected:
            if not key.startswith("tables/"):
                np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        for name in ("FOV_ROI_table", "well_ROI_table"):
            assert got[f"tables/{name}"].equals(expected[f"tables/{name}"]), name
        table = got[f"tables/{TABLE}"]
        np.testing.assert_allclose(table[columns], expected[f"tables/{TABLE}"].loc[table.index, columns])

    # A re-run after success changes nothing (the registered table now holds
    # its reference columns: the reference is not read again).
    for img in theirs.images[:2]:
        stamps = {p: p.stat().st_mtime_ns for p in Path(img.zarr_url).rglob("*")}
        apply_registration_to_image(zarr_url=img.zarr_url, registered_roi_table=TABLE)
        assert {p: p.stat().st_mtime_ns for p in Path(img.zarr_url).rglob("*")} == stamps


def test_fractal_tasks_core_table_and_a_bad_reference(cached_plate):
    plate = plate_2d(cached_plate)
    reference = next(img for img in plate.images if img.acquisition == 0)
    moving = next(img for img in plate.images if img.acquisition == 1)
    write_fractal_tasks_core_consensus(plate.images, "consensus", write_to=[moving])

    listing = sorted(str(p) for p in Path(plate.plate_url).rglob("*"))
    with pytest.raises(
        NotFoundError,
        match=r"so where its ROIs lie in the reference is read from the reference image "
        r"'[^']*/0'; but that image has no table 'consensus' \(it has tables \[.*"
        r"'FOV_ROI_table_registered'.*\]\)\. Run Find Registration Consensus on the whole well",
    ):
        apply_registration_to_image(zarr_url=moving.zarr_url, registered_roi_table="consensus")
    assert sorted(str(p) for p in Path(plate.plate_url).rglob("*")) == listing

    write_fractal_tasks_core_consensus(plate.images, "consensus", write_to=[reference])
    ome_zarr = ngio.open_ome_zarr_container(reference.zarr_url)
    table, frame = read_roi_table(ome_zarr, "consensus", reference.zarr_url)
    write_roi_table(ome_zarr, "consensus", frame.rename(index={"FOV_1": "FOV_9"}), like=table)
    listing = sorted(str(p) for p in Path(plate.plate_url).rglob("*"))
    with pytest.raises(InvalidInputError, match=r"do not match those of the reference acquisition's"):
        apply_registration_to_image(zarr_url=moving.zarr_url, registered_roi_table="consensus")
    frame.loc["FOV_2", "len_x_micrometer"] -= 0.325
    write_roi_table(ome_zarr, "consensus", frame, like=table)
    listing = sorted(str(p) for p in Path(plate.plate_url).rglob("*"))
    with pytest.raises(InvalidInputError, match=r"The ROIs \['FOV_2'\] of 'consensus' have other lengths"):
        apply_registration_to_image(zarr_url=moving.zarr_url, registered_roi_table="consensus")
    assert sorted(str(p) for p in Path(plate.plate_url).rglob("*")) == listing


def whole_array_output(url, target):
    """What Apply Registration wrote before it worked block by block, built here.

    The former path, kept as the reference: each channel of level 0 (and each
    label image) read whole with numpy, every ROI region copied to its
    reference position in a zero array of the same shape, written whole, and
    the pyramid built by ``consolidate(mode="auto")``.
    """
    from fractal_roi_tasks.io.registered_rois import pixel_boxes, roi_pairs

    ome_zarr = ngio.open_ome_zarr_container(url)
    pairs = roi_pairs(ome_zarr.get_roi_table(TABLE).dataframe, TABLE)
    new = ome_zarr.derive_image(store=str(target), copy_labels=False, copy_tables=False)

    def copy(source, written):
        axes = list(source.axes)
        size = {a: float(getattr(source.pixel_size, a)) for a in "zyx" if a in axes}
        shape = {a: source.shape[axes.index(a)] for a in "zyx" if a in axes}
        boxes = [pixel_boxes(pair, size, shape) for pair in pairs]
        array = source.get_array()
        out = np.zeros_like(array)
        for read, write in boxes:
            out[tuple(write.get(a, slice(None)) for a in axes)] = array[
                tuple(read.get(a, slice(None)) for a in axes)
            ]
        written.set_array(out)
        written.consolidate(mode="auto")

    copy(ome_zarr.get_image(), new.get_image())
    for name in ome_zarr.list_labels():
        label = ome_zarr.get_label(name)
        copy(label, new.derive_label(name, ref_image=label, dtype=str(label.dtype)))
    return {k: v for k, v in snapshot(str(target)).items() if not k.startswith("tables/")}


def swap_far_apart(url):
    """Send each ROI of the registered table to another ROI's place (regions far apart)."""
    ome_zarr = ngio.open_ome_zarr_container(url)
    table, frame = read_roi_table(ome_zarr, TABLE, url)
    for column in REFERENCE_COLUMNS:
        frame[column] = list(reversed(frame[column].to_list()))
    write_roi_table(ome_zarr, TABLE, frame, like=table)


@pytest.mark.parametrize("blocks", ["default", "small"])
@pytest.mark.parametrize("layout", ["2d", "3d", "2d_far"])
def test_pixels_equal_the_whole_array_path(cached_plate, tmp_path, monkeypatch, blocks, layout):
    """Every level of image and label equals the former whole-array output, bit for bit.

    "small": blocks of about 1.5 chunks (blocks that cut ROIs, a chunk's edge
    inside a block) and the pyramid always through the chunked path.
    "2d_far": every region goes far from where it was read, read pair by pair.
    """
    from fractal_roi_tasks.io import block_copy, pyramid

    if layout == "3d":
        plate = cached_plate("p3d", acquisitions=2, fov_grid=(1, 2), z_planes=5, shifts=SHIFTS_3D)
    else:
        plate = plate_2d(cached_plate)
    moving = plate.images[1].zarr_url
    if layout == "2d_far":
        swap_far_apart(moving)
        monkeypatch.setattr(block_copy, "SHARED_READ_FACTOR", 0)  # pair by pair
    if blocks == "small":
        chunk = ngio.open_ome_zarr_container(moving).get_image().zarr_array
        monkeypatch.setattr(block_copy, "BLOCK_BYTES", 3 * chunk.nbytes // chunk.nchunks // 2)
        monkeypatch.setattr(pyramid, "IN_MEMORY_MAX_BYTES", 0)
    expected = whole_array_output(moving, tmp_path / "expected.zarr")
    assert any(key.startswith("labels/") for key in expected)
    apply_registration_to_image(zarr_url=moving, registered_roi_table=TABLE, overwrite_input=False)
    got = snapshot(f"{moving}_registered")
    assert_same({k: v for k, v in got.items() if not k.startswith("tables/")}, expected)
    assert expected["image/0"].any() and not expected["image/0"].all()
