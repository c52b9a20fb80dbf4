"""The build-beside / mark-complete / publish cycle both rebuilding tasks share (io/swap.py)."""

from __future__ import annotations

import json

import pytest

from fractal_roi_tasks.errors import AlreadyExistsError
from fractal_roi_tasks.io import swap


def _source(tmp_path, content="input v1"):
    image = tmp_path / "plate.zarr" / "B" / "03" / "0"
    image.mkdir(parents=True)
    (image / "data.txt").write_text(content)
    return image


class Builder:
    """A build that writes the input's text and records how often it ran."""

    def __init__(self, source, fingerprint="f1"):
        self.source, self.fingerprint, self.calls = source, fingerprint, 0

    def __call__(self, path):
        self.calls += 1
        path.mkdir()
        (path / "data.txt").write_text("built from " + (self.source / "data.txt").read_text())
        return {"output": self.fingerprint}


def test_plan_output_names_a_new_image_beside_the_input_or_the_input_itself(tmp_path):
    source = _source(tmp_path)
    beside = swap.plan_output(str(source) + "/", new_name="{image}_registered", overwrite_input=False)
    assert beside.source == source and beside.target == source.with_name("0_registered")
    assert not beside.in_place and beside.staging.target == beside.target
    in_place = swap.plan_output(str(source), new_name="{image}_registered", overwrite_input=True)
    assert in_place.target == source and in_place.in_place


def test_build_once_builds_then_recognises_its_output(tmp_path):
    source = _source(tmp_path)
    output = swap.plan_output(str(source), new_name="{image}_new", overwrite_input=False)
    build = Builder(source)
    wanted = {"source": "s1", "options": {"a": 1}}
    assert swap.build_once(output, wanted, build, source_key="source", task="T") is True
    assert (output.target / "data.txt").read_text() == "built from input v1"
    assert swap.read_marker(output.target) == {**wanted, "output": "f1"}
    assert swap.build_once(output, wanted, build, source_key="source", task="T") is False
    assert build.calls == 1
    # other options or another input: built again
    assert swap.build_once(output, {**wanted, "options": {"a": 2}}, build, source_key="source", task="T")
    assert swap.build_once(output, {**wanted, "source": "s2"}, build, source_key="source", task="T")
    assert build.calls == 3
    assert not any(p.name.startswith(".0_new.") for p in source.parent.iterdir())


def test_in_place_output_is_its_own_input_on_a_rerun(tmp_path):
    source = _source(tmp_path)
    output = swap.plan_output(str(source), new_name="{image}_new", overwrite_input=True)
    build = Builder(source, fingerprint="written")
    assert swap.build_once(output, {"source": "s1"}, build, source_key="source", task="T")
    assert (source / "data.txt").read_text() == "built from input v1"
    # A re-run reads the built image as its input: its fingerprint is the build's output.
    assert not swap.build_once(output, {"source": "written"}, build, source_key="source", task="T")
    # ... while the original input's fingerprint no longer describes what is there.
    assert swap.build_once(output, {"source": "s1"}, build, source_key="source", task="T")
    assert build.calls == 2


def test_a_complete_build_left_by_a_kill_is_published_without_building_again(tmp_path):
    source = _source(tmp_path)
    output = swap.plan_output(str(source), new_name="{image}_new", overwrite_input=False)
    complete = output.staging.complete
    complete.mkdir()
    (complete / "data.txt").write_text("left by a killed run")
    (complete / swap.MARKER).write_text(json.dumps({"source": "s1", "output": "f0"}))
    build = Builder(source)
    assert swap.build_once(output, {"source": "s1"}, build, source_key="source", task="T")
    assert build.calls == 0 and (output.target / "data.txt").read_text() == "left by a killed run"
    # left from another input: discarded and built afresh
    other = swap.plan_output(str(source), new_name="{image}_other", overwrite_input=False)
    other.staging.complete.mkdir()
    (other.staging.complete / swap.MARKER).write_text(json.dumps({"source": "old", "output": "f0"}))
    assert swap.build_once(other, {"source": "s1"}, build, source_key="source", task="T")
    assert build.calls == 1 and (other.target / "data.txt").read_text() == "built from input v1"


def test_an_image_this_package_did_not_write_is_never_replaced(tmp_path):
    source = _source(tmp_path)
    foreign = source.with_name("0_new")
    foreign.mkdir()
    (foreign / "data.txt").write_text("the user's")
    output = swap.plan_output(str(source), new_name="{image}_new", overwrite_input=False)
    build = Builder(source)
    with pytest.raises(AlreadyExistsError, match=r"0_new exists and was not written by My Task"):
        swap.build_once(output, {"source": "s1"}, build, source_key="source", task="My Task")
    assert build.calls == 0 and (foreign / "data.txt").read_text() == "the user's"


def test_a_failing_build_leaves_the_input_and_no_output(tmp_path):
    source = _source(tmp_path)
    output = swap.plan_output(str(source), new_name="{image}_new", overwrite_input=True)

    def fail(path):
        path.mkdir()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        swap.build_once(output, {"source": "s1"}, fail, source_key="source", task="T")
    assert (source / "data.txt").read_text() == "input v1"
    assert not output.staging.complete.exists() and not output.staging.building.exists()


def test_staging_names_its_hidden_siblings_as_the_module_docstring_says(tmp_path):
    staging = swap.Staging.of(f"{tmp_path}/plate.zarr/B/03/0/")
    assert staging.target == tmp_path / "plate.zarr" / "B" / "03" / "0"
    well = staging.target.parent
    assert (staging.building, staging.complete, staging.old, staging.trash) == (
        well / ".0.building",
        well / ".0.complete",
        well / ".0.old",
        well / ".0.trash",
    )
    assert staging == swap.Staging.of(staging.target)  # only the target makes a Staging
    with pytest.raises(AttributeError, match="old"):
        staging.old = tmp_path  # frozen: the paths follow the target
