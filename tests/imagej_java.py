"""Ask real ImageJ (Debian's ij.jar) how it reads and fills our RoiSets.

`imagej_pixels(path)` compiles tests/java/RoiCheck.java against ij.jar once
per session, runs it headless in one JVM over the whole RoiSet, and returns
{roi name: (roi type, z position, set of (x, y) pixels)}: `Roi.getMask()` for
areas, `Roi.getContainedPoints()` for lines and points. Without ImageJ or a
JDK the caller's test skips, or fails when CI is set.
"""

import os
import shutil
import subprocess
import tempfile
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


def imagej_pixels(path) -> dict:
    require_imagej()
    classpath = os.pathsep.join([_classes(), str(IJ_JAR)])
    run = subprocess.run(
        ["java", "-Djava.awt.headless=true", "-cp", classpath, "RoiCheck", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = {}
    for line in run.stdout.splitlines():
        name, kind, z, pixels = line.split("\t")
        points = {tuple(int(v) for v in p.split(",")) for p in pixels.split()}
        result[name] = (int(kind), int(z), points)
    return result
