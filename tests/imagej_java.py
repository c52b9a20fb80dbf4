"""Ask real ImageJ (Debian's ij.jar) how it reads and fills our RoiSets.

`imagej_pixels(path)` compiles tests/java/RoiCheck.java against ij.jar once
per session, runs it headless in one JVM over the whole RoiSet, and returns
{roi name: (roi type, z position, set of (x, y) pixels)}: `Roi.getMask()` for
areas, `Roi.getContainedPoints()` for lines and points. `imagej_rois(path)`
gives the same run's full record per ROI (`DecodedRoi`: also ImageJ's name,
positions, float vertices and properties). Without ImageJ or a JDK the
caller's test skips, or fails when CI is set.
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

IJ_JAR = Path("/usr/share/java/ij.jar")
SOURCE = Path(__file__).parent / "java" / "RoiCheck.java"


def require_imagej() -> None:
    missing = [
        what
        for what, ok in [
            (str(IJ_JAR), IJ_JAR.is_file()),
            ("java", shutil.which("java")),
            ("javac", shutil.which("javac")),
        ]
        if not ok
    ]
    if missing:
        reason = f"real ImageJ checks need {', '.join(missing)} (apt-get install imagej)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@cache
def _classes() -> str:
    out = tempfile.mkdtemp(prefix="roicheck-")
    subprocess.run(
        ["javac", "-nowarn", "-cp", str(IJ_JAR), "-d", out, str(SOURCE)],
        check=True,
        capture_output=True,
    )
    return out


@dataclass(frozen=True)
class DecodedRoi:
    """One ROI as ImageJ decodes it (ImageJ's 1-based positions, 0 = every)."""

    type: int
    z: int
    pixels: frozenset  # (x, y): Roi.getMask() for areas, getContainedPoints() else
    name: str  # Roi.getName(), stored in the .roi itself (not the zip entry's)
    position: int  # Roi.getPosition(): the stack position of a non-hyperstack ROI
    c: int
    t: int
    vertices: tuple  # (x, y) floats of Roi.getFloatPolygon()
    properties: dict  # key -> Roi.getProperty(key), for every key of getProperties()


def _run(path) -> str:
    require_imagej()
    classpath = os.pathsep.join([_classes(), str(IJ_JAR)])
    run = subprocess.run(
        ["java", "-Djava.awt.headless=true", "-cp", classpath, "RoiCheck", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return run.stdout


def _pairs(text: str, parse) -> list:
    return [tuple(parse(v) for v in p.split(",")) for p in text.split()]


def imagej_rois(path) -> dict:
    """{zip entry name: DecodedRoi} of the RoiSet at `path`, from one JVM run."""
    result = {}
    for line in filter(None, _run(path).split("\n")):  # not splitlines: \x1e, \x1f
        entry, kind, z, pixels, name, position, c, t, vertices, props = line.split("\t")
        properties = dict(p.split("\x1f", 1) for p in props.split("\x1e") if p)
        result[entry] = DecodedRoi(
            type=int(kind),
            z=int(z),
            pixels=frozenset(_pairs(pixels, int)),
            name=name,
            position=int(position),
            c=int(c),
            t=int(t),
            vertices=tuple(_pairs(vertices, float)),
            properties=properties,
        )
    return result


def imagej_pixels(path) -> dict:
    """{zip entry name: (roi type, z position, set of (x, y) pixels)}."""
    return {
        name: (roi.type, roi.z, set(roi.pixels)) for name, roi in imagej_rois(path).items()
    }
