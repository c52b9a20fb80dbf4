"""Every benchmark runs on tiny inputs, so none of them can rot."""

import importlib.util
from pathlib import Path

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


def test_bench_stitch_others_runs_without_the_other_tools(capsys):
    # Here ASHLAR and multiview-stitcher are not installed: they are reported, ours still runs.
    result = load("bench_stitch_others").main(["--quick"])
    out = capsys.readouterr().out
    assert "not installed" in out and "Tile placement" in out
    assert {"versions", "check", "placement"} <= set(result)


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
