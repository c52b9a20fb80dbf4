"""The manifest: generated from dev/task_list.py, shipped, accepted by fractal-server."""

import json
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
from fractal_task_tools._create_manifest import create_manifest

import fractal_roi_tasks

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = Path(fractal_roi_tasks.__file__).parent / "__FRACTAL_MANIFEST__.json"


def test_manifest_on_disk_is_the_generated_one():
    generated = create_manifest(raw_package_name="fractal_roi_tasks", task_list_path="dev.task_list")
    assert json.loads(MANIFEST.read_text()) == json.loads(json.dumps(generated))


def test_root_manifest_is_a_link_to_the_package_one():
    root = ROOT / "__FRACTAL_MANIFEST__.json"
    assert root.is_symlink()
    assert root.resolve() == MANIFEST.resolve()


def test_fractal_server_accepts_the_manifest():
    """Validate with the server's own model, as it does when collecting a package."""
    env = {**os.environ, "POSTGRES_DB": "unused", "JWT_SECRET_KEY": "unused"}
    code = (
        "import json, sys;"
        "from fractal_server.app.schemas.v2.manifest import ManifestV2;"
        "ManifestV2(**json.load(open(sys.argv[1])));"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(MANIFEST)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_task_has_docs_meta_and_a_module():
    manifest = json.loads(files("fractal_roi_tasks").joinpath("__FRACTAL_MANIFEST__.json").read_text())
    assert manifest["task_list"], "no tasks"
    for task in manifest["task_list"]:
        assert task["docs_info"].startswith("# "), task["name"]
        assert task["category"] and task["modality"] and task["tags"]
        for kind in ("parallel", "non_parallel"):
            if f"executable_{kind}" in task:
                module = task[f"executable_{kind}"]
                assert (Path(fractal_roi_tasks.__file__).parent / module).is_file()
                meta = task[f"meta_{kind}"]
                assert meta["cpus_per_task"] >= 1 and meta["mem"] > 0
                schema = task[f"args_schema_{kind}"]
                missing = [k for k, v in schema["properties"].items() if not v.get("description")]
                assert not missing, f"{module}: arguments without description {missing}"


def _tasks():
    return json.loads(MANIFEST.read_text())["task_list"]


@pytest.mark.parametrize("task", _tasks(), ids=lambda t: t["name"])
def test_docs_page_lists_every_argument(task):
    page_name = Path(task["executable_parallel"]).stem
    page = (ROOT / "docs" / f"{page_name}.md").read_text()
    assert task["docs_info"] == page
    for kind in ("parallel", "non_parallel"):
        for argument in task.get(f"args_schema_{kind}", {}).get("properties", {}):
            assert f"`{argument}`" in page, f"docs/{page_name}.md does not mention `{argument}`"
