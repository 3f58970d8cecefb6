"""dvc.yaml re-runs exactly what a change touches: every library file a stage imports is one
of its deps, and parameter changes plan the stages they should (``dvc repro --dry``)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

IMPORTED = """
import importlib.util, pathlib, sys
spec = importlib.util.spec_from_file_location("stage", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
root = pathlib.Path(sys.argv[2])
for name, module in sys.modules.items():
    path = getattr(module, "__file__", None)
    if name.startswith("diffusion_circuits") and path and not path.endswith("__init__.py"):
        print(pathlib.Path(path).resolve().relative_to(root))
"""


def imported_library_files(script: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED, str(script), str(ROOT)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.split()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_imported_library_file_is_a_dep(stage):
    deps = [str(d) for d in STAGES[stage]["deps"]]
    script = ROOT / "stages" / f"{stage}.py"
    assert f"stages/{stage}.py" in deps
    missing = [
        path for path in imported_library_files(script)
        if not any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)
    ]  # fmt: skip
    assert not missing, f"{stage} imports {missing} but dvc.yaml does not list them as deps"
