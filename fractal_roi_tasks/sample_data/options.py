"""Checking the options of `make_plate` and `make_image` before anything is written.

Each check names what was wrong and what is accepted; `acquisition_specs`
turns ``shifts``, ``empty_fovs`` and ``artefacts`` into one `FovSpec` per
FOV of every (well, acquisition).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from fractal_roi_tasks.errors import AlreadyExistsError, InvalidInputError
from fractal_roi_tasks.sample_data.constants import FOV_SIZE_PX
from fractal_roi_tasks.sample_data.content import FovLayout, FovSpec
from fractal_roi_tasks.sample_data.shifts import split_displacement

_WELL_PATTERN = re.compile(r"^([A-Z]+)(\d+)$")


def _looks_like_zarr(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs"))


def check_target(path: Path, *, overwrite: bool) -> None:
    """Refuse to write over anything unless asked, and never over a non-Zarr."""
    if not path.exists():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    if not overwrite:
        raise AlreadyExistsError(
            f"{path} already exists; pass overwrite=True to replace it, "
            "or choose another path."
        )
    if not path.is_dir() or not _looks_like_zarr(path):
        raise AlreadyExistsError(
            f"{path} exists and is not a Zarr group; refusing to overwrite it "
            "even with overwrite=True. Choose another path."
        )


def check_options(
    *, fov_grid: Sequence[int], z_planes: int, ngff_version: str, levels: int
) -> FovLayout:
    grid = tuple(fov_grid)
    if len(grid) != 2 or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1
        for n in grid
    ):
        raise InvalidInputError(
            f"fov_grid must be two positive integers (rows, columns), got {fov_grid!r}."
        )
    if isinstance(z_planes, bool) or not isinstance(z_planes, int) or z_planes < 1:
        raise InvalidInputError(f"z_planes must be an integer >= 1, got {z_planes!r}.")
    if ngff_version not in ("0.4", "0.5"):
        raise InvalidInputError(
            f"ngff_version must be '0.4' or '0.5', got {ngff_version!r}."
        )
    max_levels = int(np.log2(FOV_SIZE_PX)) + 1
    if isinstance(levels, bool) or not isinstance(levels, int):
        raise InvalidInputError(f"levels must be an integer, got {levels!r}.")
    if not 1 <= levels <= max_levels:
        raise InvalidInputError(
            f"levels must be between 1 and {max_levels} (a FOV is "
            f"{FOV_SIZE_PX} pixels wide), got {levels}."
        )
    return FovLayout(fov_grid=(int(grid[0]), int(grid[1])), z_planes=z_planes)


def parse_wells(wells: Sequence[str]) -> list[tuple[str, str, str]]:
    """(well, row, column) of each well name such as ``"B03"``."""
    if isinstance(wells, str):
        wells = [wells]
    parsed = []
    for well in wells:
        match = _WELL_PATTERN.match(well) if isinstance(well, str) else None
        if match is None:
            raise InvalidInputError(
                f"Well names are a row letter and a column number such as 'B03', "
                f"got {well!r}."
            )
        parsed.append((well, match.group(1), match.group(2)))
    if not parsed:
        raise InvalidInputError("wells must name at least one well, e.g. ('B03',).")
    names = [well for well, _, _ in parsed]
    duplicates = sorted({w for w in names if names.count(w) > 1})
    if duplicates:
        raise InvalidInputError(f"wells lists {', '.join(duplicates)} more than once.")
    return parsed


def _plate_key(key: object, wells: Sequence[str], what: str) -> tuple[str | None, int, int]:
    """(well or None, acquisition, fov_index) of a ``shifts``/``artefacts`` key."""
    parts = tuple(key) if isinstance(key, tuple | list) else (key,)
    if len(parts) == 3 and isinstance(parts[0], str):
        well, acquisition, fov = parts
        if well not in wells:
            raise InvalidInputError(
                f"{what} names well {well!r}, which is not among the plate's wells "
                f"({', '.join(wells)})."
            )
    elif len(parts) == 2:
        well, (acquisition, fov) = None, parts
    else:
        raise InvalidInputError(
            f"{what} keys are (acquisition, fov_index) or (well, acquisition, "
            f"fov_index), got {key!r}."
        )
    for value, name in ((acquisition, "acquisition"), (fov, "fov_index")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidInputError(f"{what} key {key!r}: {name} must be an integer.")
    return well, int(acquisition), int(fov)


def acquisition_specs(
    layout: FovLayout,
    *,
    wells: Sequence[str],
    acquisitions: int,
    shifts: Mapping[tuple, Sequence[float]] | None,
    empty_fovs: Collection[int],
    artefacts: Collection[tuple],
) -> dict[tuple[str, int], list[FovSpec]]:
    """Per (well, acquisition), one `FovSpec` per FOV, checked."""
    n_fovs = layout.n_fovs

    def check(what: str, key: object, acquisition: int, fov: int, first: int) -> None:
        if not first <= acquisition < acquisitions:
            raise InvalidInputError(
                f"{what} key {key!r}: acquisition must be {first}..{acquisitions - 1} "
                f"(acquisition 0 is the reference), got {acquisition}."
            )
        if not 0 <= fov < n_fovs:
            raise InvalidInputError(
                f"{what} key {key!r}: fov_index must be 0..{n_fovs - 1} "
                f"(FOV_1..FOV_{n_fovs}), got {fov}."
            )

    displacement: dict[tuple[str, int, int], tuple[float, float, float]] = {}
    for general_first in (True, False):  # (acquisition, fov) keys first, then per well
        for key, value in (shifts or {}).items():
            well, acquisition, fov = _plate_key(key, wells, "shifts")
            if (well is None) != general_first:
                continue
            check("shifts", key, acquisition, fov, first=1)
            try:
                dz, dy, dx = split_displacement(value)
            except (TypeError, ValueError) as err:
                raise InvalidInputError(
                    f"shifts[{key!r}] must be (dy, dx) or (dz, dy, dx) pixels, got {value!r}."
                ) from err
            half = FOV_SIZE_PX // 2
            if not all(math.isfinite(v) for v in (dz, dy, dx)) or max(abs(dy), abs(dx)) >= half:
                raise InvalidInputError(
                    f"shifts[{key!r}] = {value!r}: |dy| and |dx| must be below {half} px."
                )
            if not abs(dz) < layout.z_planes or (layout.z_planes == 1 and dz != 0):
                raise InvalidInputError(
                    f"shifts[{key!r}] = {value!r}: |dz| must be below z_planes "
                    f"({layout.z_planes}); a 2D plate cannot move in z."
                )
            for target in [well] if well is not None else wells:
                displacement[(target, acquisition, fov)] = (dz + 0.0, dy + 0.0, dx + 0.0)
    empty = set()
    for fov in empty_fovs:
        if isinstance(fov, bool) or not isinstance(fov, int | np.integer) or not 0 <= fov < n_fovs:
            raise InvalidInputError(
                f"empty_fovs must hold FOV indices 0..{n_fovs - 1}, got {fov!r}."
            )
        empty.add(int(fov))
    spoiled = set()
    for key in artefacts:
        well, acquisition, fov = _plate_key(key, wells, "artefacts")
        check("artefacts", key, acquisition, fov, first=0)
        for target in [well] if well is not None else wells:
            spoiled.add((target, acquisition, fov))
    return {
        (well, acquisition): [
            FovSpec(
                displacement=displacement.get((well, acquisition, fov), (0.0, 0.0, 0.0)),
                empty=fov in empty,
                artefact=(well, acquisition, fov) in spoiled,
            )
            for fov in range(n_fovs)
        ]
        for well in wells
        for acquisition in range(acquisitions)
    }
