"""Every docstring example in the package runs, in every module.

The modules are found by walking the package, so a new module's examples run
without anyone listing it here. A module that cannot be imported fails its
test (it is never skipped).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fractal_roi_tasks

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(fractal_roi_tasks.__path__, prefix="fractal_roi_tasks.")
)


def run_doctests(module_name: str) -> tuple[doctest.TestResults, str]:
    """Run the examples of one module; return the counts and doctest's report."""
    module = importlib.import_module(module_name)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module):
        runner.run(test, out=report.append)
    return runner.summarize(verbose=False), "".join(report)


@pytest.mark.parametrize("module_name", MODULES)
def test_module_doctests_pass(module_name):
    results, report = run_doctests(module_name)
    assert results.failed == 0, f"{module_name}: {results.failed} example(s) failed\n{report}"


def test_the_walk_finds_the_examples_of_every_layer():
    # Guards the test above against passing because it finds nothing: every
    # layer whose functions carry examples is walked and contributes some.
    layers = ("formats", "rois", "segmentation", "registration", "stitching", "translation")
    examples = dict.fromkeys((*layers, "sample_data"), 0)
    for module_name in MODULES:
        layer = module_name.split(".")[1]
        if layer in examples:
            module = importlib.import_module(module_name)
            examples[layer] += sum(len(t.examples) for t in doctest.DocTestFinder().find(module))
    assert "fractal_roi_tasks.sample_data.shifts" in MODULES
    assert "fractal_roi_tasks.tasks.segment_to_rois" in MODULES
    assert all(count > 0 for count in examples.values()), examples
