"""The `fractal-roi-tasks` command and the runner under it.

Tasks run in subprocesses exactly as on a Fractal server (each image takes a
second or two), so the tests that run real tasks share work: one demo, one
plate run, one single-image run through the installed console script, one
failing run. The runner's compound and non-parallel paths run tiny stand-in
tasks written in the test.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import ngio
import numpy as np
import pytest

import fractal_roi_tasks
from fractal_roi_tasks import cli, demo, demo_timelapse, runner
from fractal_roi_tasks.cli import main, parse_assignments
from fractal_roi_tasks.errors import InvalidInputError, NotFoundError

NUCLEI_PER_FOV = 168
FOVS_PER_IMAGE = 4  # the default 2 x 2 grid of make_plate and of the demo


def _features(zarr_url, label):
    container = ngio.open_ome_zarr_container(zarr_url, mode="r")
    return container.get_feature_table(f"{label}_features").dataframe


def _roi_json(zarr_url, label):
    well = "".join(Path(zarr_url).parts[-3:-1])
    path = Path(zarr_url) / "rois" / label / f"{well}_{Path(zarr_url).name}_{label}_rois.json"
    assert path.is_file(), f"missing {path}"
    return json.loads(path.read_text())


# --------------------------------------------------------------------------
# demo


def test_demo_runs_every_task_and_says_what_it_found(tmp_path, capsys):
    target = tmp_path / "my demo"

    assert main(["demo", str(target), "-j", "2"]) == 0

    out, err = capsys.readouterr()
    plate = target / demo.DEMO_PLATE_NAME
    images = [str(plate / "B" / "03" / "0"), str(plate / "B" / "04" / "0")]
    per_well = NUCLEI_PER_FOV * FOVS_PER_IMAGE
    # progress of every step, then the findings per well and label image
    per_image_runs = len(demo.DEMO_ARGS["Segment to ROIs"]) + len(
        demo.DEMO_ARGS["Apply Registration to Image"]
    )
    assert out.count("[4/4] ok") == per_image_runs  # 2 wells x 2 cycles
    assert out.count("[2/2] ok") == 2  # registration: the non-reference images, then the wells
    findings = out.split("What the tasks found")[1].split("Where the outputs are")[0]
    for well in ("B03", "B04"):
        assert any(
            line.split()[:4] == [well, "0", "nuclei", str(per_well)]
            for line in findings.splitlines()
        ), findings
        assert any(
            line.split()[:3] == [well, "0", demo.SEGMENTED_LABEL] and "(DAPI)" in line
            for line in findings.splitlines()
        ), findings
    assert "objects in 'nuclei'" in out
    registration = [line for line in out.splitlines() if "recovered within" in line]
    assert len(registration) == 2
    for line in registration:  # the known sub-pixel shifts are found to 0.1 px
        assert float(line.split("recovered within ")[1].split(" px")[0]) <= 0.1
    # the tile plate: placed to a fraction of a pixel, every nucleus once
    stitching = out.split("Stitching (the demo knows")[1].split("What the tasks found")[0]
    placed = stitching.split("neighbours within ")[1].split(" px RMS")[0]
    assert float(placed) < 0.1, stitching
    counted = stitching.split(" nuclei after merging")[0].split()[-1]
    assert f"({counted} true nuclei in the mosaic)" in stitching, stitching
    assert "left at the stage position" not in stitching
    stitched = target / demo.DEMO_TILES_NAME / "B" / "03" / "0_stitched"
    assert stitched.is_dir() and str(stitched) in stitching
    # the time-lapse: its known drift path found, the blank frame flagged, the movie corrected
    drift = out.split("Drift correction (the demo knows")[1].split("What the tasks found")[0]
    assert float(drift.split("found within ")[1].split(" px")[0]) < 0.05, drift
    blank = ", ".join(map(str, demo_timelapse.DEMO_TIMELAPSE_OPTIONS["blank_frames"]))
    assert f"blank frames {blank}; flagged and interpolated: {blank}" in drift
    corrected = target / f"{demo_timelapse.DEMO_TIMELAPSE_NAME}_drift_corrected"
    assert corrected.is_dir() and str(corrected) in drift
    # then Segment to ROIs on the corrected movie: each time point's nuclei, held in place
    (line,) = [line for line in drift.splitlines() if "ROIs of the corrected movie" in line]
    label = ngio.open_ome_zarr_container(str(corrected)).get_label("nuclei").get_array()
    per_label = [len(np.unique(frame)) - 1 for frame in label]
    rois = _features(str(corrected), "nuclei").groupby("t").size()
    assert rois.to_dict() == dict(enumerate(per_label))  # every object of every time point
    low, high = min(per_label), max(per_label)
    counted = str(low) if low == high else f"{low} to {high}"
    assert f"(label 'nuclei'): {counted} objects at each of {len(label)} time points" in line
    assert low > 20 and len(label) == len(demo_timelapse.DEMO_TIMELAPSE_OPTIONS["path"])
    # uncorrected, the nuclei drift by up to 14.8 px; corrected, by whole pixels, they stay
    assert float(line.split("each moving at most ")[1].split(" px")[0]) < 0.5, line
    folder = corrected / "rois" / "nuclei"
    files = sorted(folder.iterdir())
    assert f"; {len(files)} ROI files in {folder}" in line and len(files) == len(demo.DEMO_EXPORTS)
    saved = json.loads(next(f for f in files if f.name.endswith("_rois.json")).read_text())["rois"]
    assert sorted({roi["t"] for roi in saved}) == list(range(len(label))) and len(saved) == sum(per_label)
    assert f"napari --plugin napari-ome-zarr '{images[0]}'" in out  # quoted: a space
    assert "File > Import > HDF5/N5/Zarr/OME-NGFF" in out
    assert "SKIPPED" not in err and "FAILED" not in out + err
    assert f"Overview figure (8 panels): {target / demo.DEMO_FIGURE_NAME}" in out

    for image in images:
        given = _features(image, "nuclei")
        assert len(given) == per_well
        assert _roi_json(image, "nuclei")["context"]["label_name"] == "nuclei"
        segmented = _features(image, demo.SEGMENTED_LABEL)
        # the real nuclei, found again by thresholding DAPI
        assert 0.8 * per_well < len(segmented) < 1.2 * per_well
        assert segmented["mean_intensity"].gt(0).all()
        assert len(_roi_json(image, demo.SEGMENTED_LABEL)["rois"]) == len(segmented)

    # the summary data agrees with the tables
    rows = {(row.well, row.label): row for row in demo.summarize(images)}
    assert rows[("B04", "nuclei")].n_objects == per_well
    assert rows[("B04", "nuclei")].mean_intensity is None
    assert rows[("B04", demo.SEGMENTED_LABEL)].intensity_channel == "DAPI"

    # a second demo into the same place refuses to overwrite, in one line
    assert main(["demo", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--overwrite" in err and str(plate) in err


def test_every_manifest_task_has_valid_demo_arguments():
    names = [task.name for task in runner.list_tasks()]
    assert sorted(demo.DEMO_ARGS) == sorted(names), (
        "every task of the manifest needs demo arguments in fractal_roi_tasks/demo.py"
    )
    plan = demo.demo_plan()
    assert plan.skipped == []
    for step in plan.steps:
        runner.split_arguments(step.task, step.args)  # raises on a bad argument


def test_demo_skips_a_task_without_demo_arguments_loudly(tmp_path, monkeypatch, capsys):
    extra = runner.TaskSpec(name="Not In The Demo", type="parallel", executable_parallel="x.py")
    plan = demo.demo_plan([*runner.list_tasks(), extra])
    assert plan.skipped == ["Not In The Demo"]
    assert all(step.task.name != "Not In The Demo" for step in plan.steps)

    monkeypatch.setattr(demo, "DEMO_ARGS", {})
    assert main(["demo", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "SKIPPED: task 'Segment to ROIs' has no demo arguments" in err
    n_tasks = len(demo.demo_plan().skipped)
    assert f"WARNING: {n_tasks} task(s) were skipped (no demo arguments):" in err
    assert err.rstrip().endswith(f"{runner.list_tasks()[-1].name}.")
    assert "nothing: no feature table was written" in out
    assert "Overview figure: not drawn, nothing to show" in out


# --------------------------------------------------------------------------
# run


def test_run_over_a_plate_by_manifest_name_with_set(plate_v04, capsys):
    code = main([
        "run", "segment to ROIS", plate_v04.plate_url,
        "--set", "label_name=nuclei",
        "--set", 'exports=["json"]',
        "--set", "shape=point",
        "--set", "level=0",  # a string argument: stays "0", not the number 0
    ])

    out = capsys.readouterr().out
    assert code == 0, out
    assert 'level="0"' in out
    assert "[2/2] ok" in out
    assert "Done: Segment to ROIs, 2 of 2 images ok" in out
    for image in plate_v04.images:
        assert f"ok      {image.row}/{image.column}/{image.path}" in out
        assert len(_features(image.zarr_url, "nuclei")) == NUCLEI_PER_FOV * FOVS_PER_IMAGE
        assert _roi_json(image.zarr_url, "nuclei")["kind"] == "point"


def test_run_one_image_by_module_name_through_the_console_script(plate_v04, tmp_path):
    script = Path(sys.executable).parent / "fractal-roi-tasks"
    image, other = plate_v04.images[0], plate_v04.images[1]
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"label_name": "dapi_nuclei"}))

    done = subprocess.run(
        [
            str(script), "run", "segment_to_rois", image.zarr_url,
            "--args", f"@{args_file}",
            "--set", "segmentation.channel.label=DAPI",
            "--set", "segmentation.min_area_px=50",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "[1/1] ok      B/03/0" in done.stdout
    assert "segmentation.min_area_px" not in done.stdout  # nested, not a flat key
    assert 'segmentation={"channel": {"label": "DAPI"}, "min_area_px": 50}' in done.stdout
    features = _features(image.zarr_url, "dapi_nuclei")
    assert len(features) > 0 and features["area_px"].min() >= 50
    # only the image given was touched
    assert "dapi_nuclei" not in ngio.open_ome_zarr_container(other.zarr_url).list_labels()


def test_a_failing_run_exits_1_and_names_the_failure(plate_v04, capsys):
    image = plate_v04.images[1]
    code = main(["run", "segment_to_rois", image.zarr_url, "--set", "label_name=cells"])

    out = capsys.readouterr().out
    assert code == 1
    assert "[1/1] FAILED  B/04/0" in out
    summary = out.split("FAILED: Segment to ROIs, 1 of 1 job(s) failed")[1]
    assert "B/04/0: exit 1: " in summary
    assert "NotFoundError: Label image 'cells' not found" in summary
    assert "['nuclei']" in summary  # what exists instead
    assert "Last lines of the log of B/04/0" in summary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "no_such_task", "x"], "'Segment to ROIs' (segment_to_rois)"),
        (["list", "Segment"], "Unknown task 'Segment'. Available tasks: 'Calculate Registration"),
        (["run", "segment_to_rois", "{plate}", "--set", "label"], "--set expects key=value"),
        (["run", "segment_to_rois", "{plate}", "--set", "lable_name=x"],
         "Unknown argument(s) 'lable_name' for task 'Segment to ROIs'; its arguments are: "
         "exports, label_name,"),
        (["run", "segment_to_rois", "{plate}"], "needs argument(s) 'label_name'"),
        (["run", "segment_to_rois", "{plate}", "--set", "label_name=a",
          "--set", "zarr_url=/elsewhere"], "Do not give 'zarr_url'"),
        (["run", "segment_to_rois", "{plate}", "--args", "{label_name: a}"],
         "--args is not valid JSON"),
        (["run", "segment_to_rois", "{plate}", "--args", "@{plate}/nothing.json"],
         "does not exist"),
        (["run", "segment_to_rois", "{plate}/B", "--set", "label_name=a"],
         "is neither an OME-Zarr image nor an HCS plate or well"),
        (["run", "segment_to_rois", "{plate}/nowhere", "--set", "label_name=a"],
         "does not exist"),
    ],
)
def test_bad_input_is_one_line_on_stderr(argv, message, plate_v04, capsys):
    argv = [arg.replace("{plate}", plate_v04.plate_url) for arg in argv]

    assert main(argv) == 1

    captured = capsys.readouterr()
    assert captured.out == ""  # nothing ran
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("fractal-roi-tasks: error: ")
    assert message in captured.err


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "segment_to_rois", "x", "-j", "0"])
    assert stop.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


# --------------------------------------------------------------------------
# list, help


def test_list_prints_the_tasks_and_their_arguments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "Segment to ROIs  (parallel task; module segment_to_rois)" in out
    assert "  label_name: string (required)" in out
    assert "      segmentation.channel.label: string | null (default null)" in out
    assert 'shape: one of: polygon, mask, ellipse, point, skeleton (default "polygon")' in out
    assert "Pyramid level to work on" in out
    assert "zarr_url" not in out  # Fractal-managed, not for the user

    assert main(["list", "segment_to_rois"]) == 0
    assert "label_name: string (required)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["", "list", "run", "demo"])
def test_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"  fractal-roi-tasks {command}" in out


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "usage: fractal-roi-tasks" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run(
        [sys.executable, "-m", "fractal_roi_tasks.cli", "--version"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"fractal-roi-tasks {fractal_roi_tasks.__version__}"


def test_build_parser_parses_run_options():
    args = cli.build_parser().parse_args(
        ["run", "segment_to_rois", "p.zarr", "--set", "a=1", "--set", "b.c=x", "-j", "3"]
    )
    assert (args.task, args.url, args.assignments, args.workers) == (
        "segment_to_rois", "p.zarr", ["a=1", "b.c=x"], 3
    )
    assert args.verbose is False


def test_parse_assignments():
    task = runner.find_task("segment_to_rois")
    parsed = parse_assignments(
        [
            "label_name=nuclei", "min_area=12", "exports=[\"json\"]", "level=1",
            "segmentation.channel.label=DAPI", "segmentation.split_touching=false",
            "segmentation.threshold=null", "note=a=b",
        ],
        {"segmentation": {"method": "li"}},
        task=task,
    )
    assert parsed == {
        "label_name": "nuclei",
        "min_area": 12,
        "exports": ["json"],
        "level": "1",  # the schema says string
        "segmentation": {
            "method": "li",
            "channel": {"label": "DAPI"},
            "split_touching": False,
            "threshold": None,
        },
        "note": "a=b",
    }
    # without a task, JSON wins
    assert parse_assignments(["level=1"]) == {"level": 1}
    with pytest.raises(InvalidInputError, match="'label_name' is already \"x\", not an object"):
        parse_assignments(["label_name=x", "label_name.y=1"])
    with pytest.raises(InvalidInputError, match="--set expects key=value"):
        parse_assignments(["a.=1"])


# --------------------------------------------------------------------------
# runner


def test_find_task_and_image_urls(plate_v04):
    assert runner.find_task("SEGMENT TO ROIS").module("parallel") == (
        "fractal_roi_tasks.tasks.segment_to_rois"
    )
    assert runner.find_task("segment_to_rois.py").name == "Segment to ROIs"
    with pytest.raises(NotFoundError, match=r"Available tasks: .*'Segment to ROIs'"):
        runner.find_task("segment")

    urls = [image.zarr_url for image in plate_v04.images]
    assert runner.image_urls(plate_v04.plate_url) == urls
    assert runner.image_urls(plate_v04.plate_url + "/") == urls
    assert runner.image_urls(f"{plate_v04.plate_url}/B/04") == urls[1:]
    assert runner.image_urls(urls[0]) == urls[:1]
    assert runner.display_name(urls[0]) == "B/03/0"
    assert runner.default_zarr_dir(urls) == str(Path(plate_v04.plate_url).parent)


FAKE_TASKS = {
    "__init__.py": "",
    "init_fake.py": '''
        import json, sys
        from pathlib import Path

        def init_fake(*, zarr_urls, zarr_dir, prefix, shared=0):
            if prefix == "boom":
                raise ValueError("init went boom")
            Path(zarr_dir, "init.json").write_text(
                json.dumps({"zarr_urls": zarr_urls, "prefix": prefix, "shared": shared})
            )
            return {"parallelization_list": [
                {"zarr_url": url, "init_args": {"tag": f"{prefix}{i}"}}
                for i, url in enumerate(zarr_urls)
            ]}

        if __name__ == "__main__":
            from fractal_task_tools.task_wrapper import run_fractal_task
            run_fractal_task(task_function=init_fake)
    ''',
    "fake.py": '''
        import sys
        import time
        from pathlib import Path

        def fake(*, zarr_url, init_args=None, factor=1, shared=0):
            if zarr_url.endswith("bad"):
                sys.exit(3)
            if zarr_url.endswith("slow"):
                time.sleep(30)
                Path(zarr_url + ".finished").write_text("")
            return {"image_list_updates": [{"zarr_url": zarr_url, "attributes": {
                "tag": (init_args or {}).get("tag"), "factor": factor, "shared": shared}}]}

        if __name__ == "__main__":
            from fractal_task_tools.task_wrapper import run_fractal_task
            run_fractal_task(task_function=fake)
    ''',
}


def _schema(*names, required=()):
    return {
        "type": "object", "additionalProperties": False, "required": list(required),
        "properties": {name: {"type": "integer" if name in ("shared", "factor") else "string"}
                       for name in names},
    }


@pytest.fixture
def fake_tasks(tmp_path, monkeypatch):
    package = tmp_path / "pkg" / "fake_tasks"
    package.mkdir(parents=True)
    for name, source in FAKE_TASKS.items():
        (package / name).write_text(textwrap.dedent(source))
    monkeypatch.setenv("PYTHONPATH", str(package.parent))
    compound = runner.TaskSpec.from_manifest_entry(
        {
            "name": "Fake Compound",
            "executable_non_parallel": "init_fake.py",
            "executable_parallel": "fake.py",
            "args_schema_non_parallel": _schema(
                "zarr_urls", "zarr_dir", "prefix", "shared", required=["prefix"]
            ),
            "args_schema_parallel": _schema("zarr_url", "init_args", "factor", "shared"),
        },
        package="fake_tasks",
    )
    non_parallel = runner.TaskSpec.from_manifest_entry(
        {
            "name": "Fake Non Parallel",
            "type": "non_parallel",
            "executable_non_parallel": "init_fake.py",
            "args_schema_non_parallel": _schema("zarr_urls", "zarr_dir", "prefix"),
        },
        package="fake_tasks",
    )
    return compound, non_parallel


def test_compound_task_runs_init_once_then_each_image(fake_tasks, tmp_path):
    compound, _ = fake_tasks
    assert compound.type == "compound"
    urls = [str(tmp_path / "p.zarr" / "B" / "03" / str(i)) for i in range(3)]
    seen = []

    summary = runner.run_task(
        compound, urls, {"prefix": "t", "factor": 5, "shared": 7},
        zarr_dir=tmp_path, workers=2, progress=seen.append,
    )

    assert summary.ok, [r.error for r in summary.failures]
    assert [r.part for r in summary.results] == ["non_parallel"] + ["parallel"] * 3
    init = json.loads((tmp_path / "init.json").read_text())
    assert init == {"zarr_urls": urls, "prefix": "t", "shared": 7}  # no `factor`
    assert summary.image_list_updates == [
        {"zarr_url": url, "attributes": {"tag": f"t{i}", "factor": 5, "shared": 7}}
        for i, url in enumerate(urls)
    ]
    assert [(p.done, p.total) for p in seen] == [(1, 1), (1, 3), (2, 3), (3, 3)]


def test_compound_task_stops_when_init_fails(fake_tasks, tmp_path):
    compound, _ = fake_tasks
    summary = runner.run_task(compound, [str(tmp_path / "a")], {"prefix": "boom"})
    assert not summary.ok
    (failure,) = summary.results
    assert failure.part == "non_parallel" and failure.returncode == 1
    assert failure.error == "ValueError: init went boom"
    assert "init went boom" in failure.log_tail


def test_parallel_failures_keep_their_return_code(fake_tasks, tmp_path):
    compound, _ = fake_tasks
    urls = [str(tmp_path / "good"), str(tmp_path / "bad")]
    summary = runner.run_task(compound, urls, {"prefix": "x"}, zarr_dir=tmp_path)
    (failure,) = summary.failures
    assert (failure.zarr_url, failure.returncode) == (urls[1], 3)
    assert [r.ok for r in summary.image_results] == [True, False]


def test_non_parallel_task_gets_all_images_and_default_zarr_dir(fake_tasks, tmp_path):
    _, non_parallel = fake_tasks
    plate = tmp_path / "plate.zarr"
    image = plate / "B" / "03" / "0"
    image.mkdir(parents=True)
    (image.parent / ".zattrs").write_text(json.dumps({"well": {"images": [{"path": "0"}]}}))

    summary = runner.run_task(non_parallel, [str(image)], {"prefix": "np"})

    assert summary.ok, [r.error for r in summary.failures]
    assert summary.zarr_dir == str(tmp_path)  # the plate's parent
    assert json.loads((tmp_path / "init.json").read_text())["zarr_urls"] == [str(image)]
    with pytest.raises(InvalidInputError, match="Do not give 'init_args'"):
        runner.run_task(non_parallel, [str(image)], {"prefix": "np", "init_args": {}})


def test_an_interrupted_run_stops_its_task_processes(fake_tasks, tmp_path):
    compound, _ = fake_tasks
    urls = [str(tmp_path / "fast"), str(tmp_path / "slow")]

    class Interrupt(Exception):
        pass

    def interrupt(progress):
        if progress.result.part == "parallel":
            raise Interrupt

    with pytest.raises(Interrupt):
        runner.run_task(compound, urls, {"prefix": "x"}, zarr_dir=tmp_path, progress=interrupt)
    # the slow image's process was stopped, not waited for
    assert not (tmp_path / "slow.finished").exists()
