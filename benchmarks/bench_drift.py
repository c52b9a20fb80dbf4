"""Drift of a time-lapse with a known path: ours against what users do today.

    python benchmarks/bench_drift.py                 # 100 frames of 1024 x 1024; 30 frames of 40 x 256 x 256
    python benchmarks/bench_drift.py --quick         # a few seconds
    python benchmarks/bench_drift.py --size-3d 1024  # the 3D case at full size (slow here)

Frames: fields of scikit-image's bundled ``retina`` (green channel) whose
content moves along a known path inside the frame (a Fourier shift of the
mirror-extended image, `shifted_field`; the margin keeps the content in
frame): a random walk with sub-pixel steps (sigma ``--step`` px per frame
and axis) on top of a slow linear drift (0.02 px per frame in y, -0.03 in x;
in 3D also 0.01 plane per frame in z with steps of half ``--step``). The
3D frames follow the defocus law of the sample stacks, so z drift is focus
drift. Pixels are camera counts: 100 + 3000 x the image, Poisson noise plus
gaussian read noise of 5 counts, stored as uint16.

Methods, all on the same frames in the same run:

- ours: `fractal_roi_tasks.drift.estimate_drift` (pairs against the first
  frame and at time steps 1, 2, 4, 8, solved together);
- ours chained: our pair estimator (`estimate_shift`) chained frame to frame
  (what the solve adds over the estimator alone);
- skimage PCC previous / first: ``phase_cross_correlation(reference,
  moving, upsample_factor=100)`` of each frame against the previous frame
  (chained, CellProfiler's and celldetective's approach) or against the
  first frame; the time baseline is *PCC previous*;
- pystackreg previous / first: StackReg in TRANSLATION mode, pair by pair
  (2D only; listed as not installed when pystackreg is missing).

Error: per frame the Euclidean distance between estimated and true (y, x)
displacement in pixels, max and RMS over all frames (z separately in 3D,
in planes). Time: wall time of the whole sequence (after a warm-up on two
frames) divided by the number of frames, one BLAS thread, and its ratio to PCC previous.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from skimage.registration import phase_cross_correlation  # noqa: E402

from fractal_roi_tasks.drift import estimate_drift  # noqa: E402
from fractal_roi_tasks.registration.shift import estimate_shift  # noqa: E402
from fractal_roi_tasks.sample_data import load_source  # noqa: E402
from fractal_roi_tasks.sample_data.timelapse import drift_path, drifting_frames  # noqa: E402

PYSTACKREG_MISSING = "not installed (pip install pystackreg)"


def make_frames(path: np.ndarray, size: int, planes: int, seed: int) -> np.ndarray:
    """uint16 frames (T, Y, X) or (T, Z, Y, X) of the retina moving along ``path``."""
    source = load_source("retina")
    margin = 16 + int(np.ceil(np.abs(path).max()))
    origin = ((source.shape[0] - size) // 2, (source.shape[1] - size) // 2)
    if min(origin) < margin:
        origin = (margin, margin)  # beyond the source: the mirror image continues it
    return drifting_frames(source, path, size=size, z_planes=planes, origin=origin, seed=seed)


def ours(frames: np.ndarray) -> np.ndarray:
    return estimate_drift(frames).displacement_px


def ours_chained(frames: np.ndarray) -> np.ndarray:
    steps = [estimate_shift(frames[t - 1], frames[t], upsample_factor=1000).shift for t in range(1, len(frames))]
    return _chain(-np.array(steps), frames)


def _chain(steps: np.ndarray, frames: np.ndarray) -> np.ndarray:
    return np.vstack([np.zeros((1, frames.ndim - 1)), np.cumsum(steps, axis=0)])


def pcc(frames: np.ndarray, against: str) -> np.ndarray:
    def shift(reference, moving):
        return phase_cross_correlation(reference, moving, upsample_factor=100)[0]

    if against == "previous":
        return _chain(-np.array([shift(frames[t - 1], frames[t]) for t in range(1, len(frames))]), frames)
    return np.vstack([np.zeros(frames.ndim - 1)] + [-shift(frames[0], frames[t]) for t in range(1, len(frames))])


def stackreg(frames: np.ndarray, against: str) -> np.ndarray:
    from pystackreg import StackReg

    reg = StackReg(StackReg.TRANSLATION)

    def displacement(reference, moving):
        # tmat[:2, 2] is (x, y): how far the moving content sits from the reference's.
        tmat = reg.register(reference.astype(np.float64), moving.astype(np.float64))
        return np.array([tmat[1, 2], tmat[0, 2]])

    if against == "previous":
        return _chain(np.array([displacement(frames[t - 1], frames[t]) for t in range(1, len(frames))]), frames)
    return np.vstack([np.zeros(2)] + [displacement(frames[0], frames[t]) for t in range(1, len(frames))])


def methods(dims: int) -> list[tuple[str, Callable | None, str]]:
    """(label, function or None, why not) in table order; PCC previous is the baseline."""
    have_stackreg = importlib.util.find_spec("pystackreg") is not None
    rows = [
        ("PCC previous", lambda f: pcc(f, "previous"), ""),
        ("PCC first", lambda f: pcc(f, "first"), ""),
    ]
    for against in ("previous", "first"):
        if dims == 3:
            rows.append((f"pystackreg {against}", None, "2D only"))
        elif not have_stackreg:
            rows.append((f"pystackreg {against}", None, PYSTACKREG_MISSING))
        else:
            rows.append((f"pystackreg {against}", lambda f, a=against: stackreg(f, a), ""))
    rows += [("ours chained", ours_chained, ""), ("ours", ours, "")]
    return rows


def run_case(title: str, frames: np.ndarray, path: np.ndarray) -> dict[str, dict]:
    dims = path.shape[1]
    results: dict[str, dict] = {}
    print(f"\n{title}: {frames.shape[0]} frames of {' x '.join(map(str, frames.shape[1:]))}")
    z_head = "   max z  RMS z" if dims == 3 else ""
    print(f"{'method':<22}{'max yx px':>10}{'RMS yx px':>10}{z_head}{'s/frame':>9}{'x PCC prev':>11}")
    baseline = None
    for label, func, why in methods(dims):
        if func is None:
            results[label] = {"unavailable": why}
            print(f"{label:<22}{why}")
            continue
        func(frames[:2])  # warm-up: imports, FFT plans and caches out of the timing
        start = time.perf_counter()
        estimate = np.asarray(func(frames), dtype=np.float64)
        seconds = (time.perf_counter() - start) / frames.shape[0]
        baseline = baseline or seconds
        error = estimate - path
        yx = np.linalg.norm(error[:, -2:], axis=1)
        row = {
            "max_px": float(yx.max()),
            "rms_px": float(np.sqrt((yx**2).mean())),
            "seconds_per_frame": seconds,
            "time_ratio": seconds / baseline,
        }
        z_text = ""
        if dims == 3:
            row["max_z"] = float(np.abs(error[:, 0]).max())
            row["rms_z"] = float(np.sqrt((error[:, 0] ** 2).mean()))
            z_text = f"{row['max_z']:>8.3f}{row['rms_z']:>7.3f}"
        results[label] = row
        print(
            f"{label:<22}{row['max_px']:>10.3f}{row['rms_px']:>10.3f}{z_text}"
            f"{seconds:>9.3f}{row['time_ratio']:>10.2f}x"
        )
    peers = [r["max_px"] for k, r in results.items() if "max_px" in r and not k.startswith("ours")]
    ratio = results["ours"]["max_px"] / min(peers)
    print(
        f"ours: max error {results['ours']['max_px']:.3f} px (target <= 0.05), "
        f"{ratio:.2f}x the best peer's (target <= 0.33), "
        f"time {results['ours']['time_ratio']:.2f}x PCC previous (target <= 1)"
    )
    return results


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="2D time points (0: no 2D case)")
    parser.add_argument("--size", type=int, default=1024, help="2D frame side in pixels")
    parser.add_argument("--frames-3d", type=int, default=30, help="3D time points (0: no 3D case)")
    parser.add_argument("--planes", type=int, default=40, help="planes of each 3D frame")
    parser.add_argument("--size-3d", type=int, default=256, help="3D frame side in pixels")
    parser.add_argument("--step", type=float, default=0.2, help="random-walk step sigma, px per frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny inputs: 10 frames of 128 px, 3D 5 x 8 x 96 px")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.frames_3d, args.planes, args.size_3d = 10, 128, 5, 8, 96
    return args


def main(argv: list[str] | None = None) -> dict[str, dict]:
    args = parse(argv)
    results = {}
    if args.frames > 0:
        path = drift_path(args.frames, dims=2, step_px=args.step, seed=args.seed)
        results["2d"] = run_case("2D", make_frames(path, args.size, 1, args.seed + 1), path)
    if args.frames_3d > 0:
        path = drift_path(args.frames_3d, dims=3, step_px=args.step, seed=args.seed + 2)
        frames = make_frames(path, args.size_3d, args.planes, args.seed + 3)
        results["3d"] = run_case("3D", frames, path)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
