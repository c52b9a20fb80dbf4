"""benchmarks/bench_drift.py runs on tiny inputs, with and without pystackreg."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_drift.py"
TINY = ["--frames", "6", "--size", "96", "--frames-3d", "3", "--planes", "6", "--size-3d", "64"]


def load():
    spec = importlib.util.spec_from_file_location("bench_drift", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_drift_reports_every_method_with_ratios(capsys):
    bench = load()
    result = bench.main(TINY)
    out = capsys.readouterr().out
    assert set(result) == {"2d", "3d"}
    for case in result.values():
        ours, baseline = case["ours"], case["PCC previous"]
        assert baseline["time_ratio"] == 1.0
        assert ours["max_px"] >= ours["rms_px"] > 0 and ours["seconds_per_frame"] > 0
        assert ours["time_ratio"] > 0
    assert result["3d"]["ours"]["max_z"] >= result["3d"]["ours"]["rms_z"] > 0
    assert result["3d"]["pystackreg first"] == {"unavailable": "2D only"}
    assert "x the best peer's" in out and "2D: 6 frames of 96 x 96" in out


def test_bench_drift_runs_without_pystackreg_and_says_so(monkeypatch, capsys):
    bench = load()
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pystackreg" else find_spec(name, *a)
    )
    result = bench.main([*TINY, "--frames-3d", "0"])
    out = capsys.readouterr().out
    assert set(result) == {"2d"}
    assert result["2d"]["pystackreg previous"] == {"unavailable": bench.PYSTACKREG_MISSING}
    assert out.count(bench.PYSTACKREG_MISSING) == 2
    assert "PCC first" in result["2d"] and "ours chained" in result["2d"]


def test_the_true_path_and_frames_are_what_the_docstring_says():
    bench = load()
    path = bench.drift_path(50, dims=2, step_px=0.0, seed=1)  # no random steps: the slow drift alone
    assert np.allclose(path[-1], [49 * 0.02, 49 * -0.03])
    frames = bench.make_frames(path[:3], 64, 1, seed=2)
    assert frames.shape == (3, 64, 64) and frames.dtype == np.uint16
    assert bench.make_frames(path[:2], 48, 5, seed=2).shape == (2, 5, 48, 48)


def test_each_case_can_be_left_out(capsys):
    bench = load()
    assert bench.main([*TINY, "--frames", "0", "--frames-3d", "0"]) == {}
    result = bench.main([*TINY, "--frames", "0"])
    assert set(result) == {"3d"} and "2D:" not in capsys.readouterr().out
