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
        ax.imshow(panel.rgb, interpolation="nearest")
        ax.set_title(panel.title, fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot.close(fig)
    return path


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
