"""Lay the panels out in one PNG with matplotlib (the optional `figure` extra)."""

from __future__ import annotations

import math
from pathlib import Path

from fractal_roi_tasks.figures.read import FigureData, Panel

INSTALL_HINT = 'pip install "fractal-roi-tasks[figure]"'
"""What to run when matplotlib is missing."""

COLUMNS = 4
PANEL_INCHES = 3.2
DPI = 100


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def figure_size_px(n_panels: int, columns: int = COLUMNS) -> tuple[int, int]:
    """(width, height) in pixels of the overview PNG for `n_panels` panels."""
    columns = min(columns, max(1, n_panels))
    rows = max(1, math.ceil(n_panels / columns))
    return int(columns * PANEL_INCHES * DPI), int(rows * PANEL_INCHES * DPI)


def save_panels(panels: list[Panel], path: str | Path, *, columns: int = COLUMNS, dpi: int = DPI) -> Path:
    """Write `panels` as one PNG grid at `path`; returns the path."""
    pyplot = _pyplot()
    columns = min(columns, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = pyplot.subplots(rows, columns, figsize=(columns * PANEL_INCHES, rows * PANEL_INCHES),
                                dpi=dpi, squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, panel in zip(axes.ravel(), panels):
        if panel.rgb is None:
            ax.axis("on")
            draw_drift_path(ax, panel.plot)
        else:
            ax.imshow(panel.rgb, interpolation="nearest")
        ax.set_title(panel.title, fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot.close(fig)
    return path


AXIS_COLOURS = {"z": "tab:green", "y": "tab:blue", "x": "tab:red"}


def draw_drift_path(ax, path) -> None:
    """Plot a `DriftPath` on `ax`: estimated shift per axis (solid), true (dashed), flagged frames."""
    for k, axis in enumerate(path.axes):
        colour = AXIS_COLOURS[axis]
        ax.plot(path.t, path.shift_px[:, k], "-", color=colour, lw=1.2, marker=".", ms=3,
                label=f"{axis} estimated")
        if path.true_px is not None:
            ax.plot(path.t, path.true_px[:, k], "--", color="black", lw=0.8, alpha=0.7,
                    label="true" if k == 0 else None)
        flagged = path.blank | path.interpolated
        if flagged.any():
            ax.plot(path.t[flagged], path.shift_px[flagged, k], "o", mfc="none", mec="darkorange",
                    ms=6, label="interpolated" if k == 0 else None)
    for t in path.t[path.blank]:
        ax.axvspan(t - 0.5, t + 0.5, color="orange", alpha=0.25, lw=0)
    ax.axvline(path.reference, color="grey", lw=0.6, ls=":")
    ax.axhline(0.0, color="grey", lw=0.4)
    ax.set_xlabel("time point t", fontsize=7)
    ax.set_ylabel("shift onto the reference (px)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, loc="best", frameon=False)


def save_overview(data: FigureData, path: str | Path) -> Path:
    """The overview figure: every panel in `data`."""
    return save_panels(data.panels, path)


def write_figure(images_or_plates, path: str | Path) -> tuple[Path, FigureData]:
    """Gather the panels of `images_or_plates` and write them to the PNG `path`."""
    from fractal_roi_tasks.figures.read import gather

    data = gather(*images_or_plates)
    if not data.panels:
        from fractal_roi_tasks.errors import NotFoundError

        reasons = "; ".join(data.missing.values())
        raise NotFoundError(f"No panel can be made: {reasons}.")
    return save_overview(data, path), data
