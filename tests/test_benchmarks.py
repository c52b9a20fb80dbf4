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
