"""The tests' name for `fractal_roi_tasks.dev.peak_rss` (shared with the benchmarks)."""

from fractal_roi_tasks.dev.peak_rss import ChildRun, baseline_rss_mib, run_task

__all__ = ["ChildRun", "baseline_rss_mib", "run_task"]
