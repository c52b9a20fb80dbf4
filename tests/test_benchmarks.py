"""Every benchmark runs on tiny inputs, so none of them can rot."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_rois_runs_and_reports_ratios(capsys):
    result = load("bench_rois").main(["--size", "256", "--objects", "60", "--repeats", "1", "--naive-subset", "3"])
    assert result["objects"] == 60
    assert result["ours"] > 0 and result["floor"] > 0 and result["naive"] > 0
    for name in ("json", "imagej", "geojson", "ome_xml"):  # the test extra installs ome-types
        assert result[f"export_{name}"] > 0
    assert result["exports"] > 0
    out = capsys.readouterr().out
    assert "x floor" in out
    assert "x extraction (target <= 2x)" in out


def test_bench_imports_covers_every_task_module(capsys):
    ratios = load("bench_imports").main(["--repeats", "1"])
    assert "fractal_roi_tasks.tasks.segment_to_rois" in ratios
    assert all(r > 0 for r in ratios.values())
    assert "baseline" in capsys.readouterr().out


def test_bench_registration_runs_and_reports_ratios(capsys):
    result = load("bench_registration").main(["--quick", "--repeats", "1"])
    for label in ("2d", "3d"):
        figures = result[label]
        assert figures["ours_ms"] > 0 and figures["baseline_ms"] > 0
        assert figures["ours_compute_ms"] > 0 and figures["baseline_compute_ms"] > 0
        assert figures["all_reliable"]
        # Accuracy is not a timing: it must hold on any machine.
        assert figures["ours_max_px"] < 0.1
        assert figures["error_ratio_mean"] >= 10
    out = capsys.readouterr().out
    assert "x baseline" in out and "smaller (mean)" in out and "read+compute" in out


def test_bench_apply_runs_and_reports_a_ratio(capsys):
    result = load("bench_apply").main(["--size", "512", "--repeats", "1"])
    assert result["ours"] > 0 and result["baseline"] > 0 and result["ratio"] > 0
    assert "x copy (target <= 1.3x)" in capsys.readouterr().out


def test_bench_stitch_placement_runs_and_reports_ratios(capsys):
    result = load("bench_stitch").main(["--quick", "--repeats", "1"])
    rows = result["placement"]
    assert set(rows) == {"dense 15%", "sparse fluorescence", "5% overlap", "2x low texture", "many small tiles"}
    for row in rows.values():
        assert row["ours_s"] > 0 and row["baseline_s"] > 0 and row["time_ratio"] > 0
        assert row["baseline_rms_px"] > 0 and row["error_ratio"] > 0
        assert row["stage_rms_px"] > 1  # there is a stage error to correct
    # Accuracy is not a timing: the targets must hold on any machine.
    assert rows["dense 15%"]["ours_rms_px"] <= 0.35
    assert rows["sparse fluorescence"]["ours_rms_px"] <= 0.35
    assert rows["5% overlap"]["ours_rms_px"] <= 1.0
    assert rows["2x low texture"]["ours_rms_px"] <= 1.0
    fusion = result["fusion"]
    assert fusion["fuse_s"] > 0 and fusion["write_s"] > 0 and fusion["ratio"] > 0
    assert 0 < fusion["fuse_peak_mib"] < 2048
    out = capsys.readouterr().out
    assert "Tile placement" in out and "as a multiple of the baseline in this run" in out
    assert "x the write (target <= 2x)" in out


def _hide_modules(monkeypatch, names):
    """Make `importlib.util.find_spec` report these top-level modules as not installed."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name.split(".")[0] in names else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_bench_stitch_others_reports_each_missing_tool_and_still_runs_ours(monkeypatch, capsys):
    # Whether or not ASHLAR and multiview-stitcher are installed here, they are made missing.
    bench = load("bench_stitch_others")
    _hide_modules(monkeypatch, {"ashlar", "multiview_stitcher"})
    result = bench.main(["--quick"])
    out = capsys.readouterr().out
    missing = {
        "ASHLAR (filter_sigma 0)": "not installed (pip install ashlar)",
        "ASHLAR (filter_sigma 1)": "not installed (pip install ashlar)",
        "multiview-stitcher (tol 0)": "not installed (pip install multiview-stitcher)",
        "multiview-stitcher (tol max)": "not installed (pip install multiview-stitcher)",
    }
    assert set(result["check"]) == {"ours"}  # only what runs is checked
    assert result["check"]["ours"]["rms_px"] < 0.01  # whole-pixel offsets, recovered
    rows = result["placement"]
    assert len(rows) == 5
    for row in rows.values():
        tools = row["tools"]
        assert {label: tools[label] for label in missing} == {
            label: {"unavailable": reason} for label, reason in missing.items()
        }
        assert 0 < tools["ours"]["rms_px"] < row["stage_rms_px"] and tools["ours"]["seconds"] > 0
    for reason in set(missing.values()):
        assert out.count(reason) == 2 * len(rows)  # two rows per tool in every scenario
    assert "Tile placement" in out


def test_bench_stitch_others_compares_a_tool_that_runs_to_ours(monkeypatch, capsys):
    # A stand-in tool that returns the stage positions: its error is the stage prior's, and its
    # ratios to ours are printed, whatever is installed.
    bench = load("bench_stitch_others")

    def place_at_stage(tiles, stage_px, max_shift_px, options):
        return bench.Solved(stage_px.copy(), "stage as given", {})

    stand_in = bench.Tool("stage only", None, "", place_at_stage)
    monkeypatch.setattr(bench, "TOOLS", (bench.TOOLS[0], stand_in))
    result = bench.main(["--quick"])
    out = capsys.readouterr().out
    assert set(result["check"]) == {"ours", "stage only"}
    for row in result["placement"].values():
        ours, stage = row["tools"]["ours"], row["tools"]["stage only"]
        assert stage["rms_px"] == pytest.approx(row["stage_rms_px"])
        assert stage["rms_ratio"] == pytest.approx(stage["rms_px"] / ours["rms_px"])
        assert stage["rms_ratio"] > 1 and stage["time_ratio"] > 0
        assert f"{stage['rms_ratio']:>9.2f}x" in out
    assert "not installed (pip install" not in out and "stage as given" in out


def test_bench_stitch_others_says_why_a_tool_cannot_run():
    bench = load("bench_stitch_others")
    absent = bench.Tool("absent", "no_such_module_here.reg", "pip install absent", None)
    assert bench.unavailable(absent) == "not installed (pip install absent)"
    broken = bench.Tool("broken", "json.no_such_submodule", "pip install broken", None)
    assert bench.unavailable(broken).startswith("not importable: ModuleNotFoundError:")
    assert bench.unavailable(bench.TOOLS[0]) is None  # ours always runs


def test_bench_memory_runs_every_task_in_a_child_and_reports_ratios(capsys):
    figures = load("bench_memory").main(["--size", "512", "--objects", "200", "--repeats", "1"])
    for task in ("segment_to_rois", "calculate_registration", "find_registration_consensus",
                 "apply_registration_to_image", "stitch_and_dedup"):
        row = figures[task]
        # Peaks are read from each child's own address space: at least the interpreter.
        assert row["rss_small_mib"] > 20 and row["rss_large_mib"] > 20
        assert row["seconds_large"] > 0 and row["time_per_px_ratio"] > 0
    assert figures["segment_vs_regionprops"]["objects"] == 200
    out = capsys.readouterr().out
    assert "RSS ratio <= 1.3" in out and "x regionprops (target <= 1.5x)" in out
