"""dvc.yaml re-runs exactly what a change touches: every library file a stage imports is one
of its deps, and parameter changes plan the stages they should (``dvc repro --dry``)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]

# Stages import their library after parsing arguments (inside main), so the imports are
# read from the source: every module an import statement anywhere in the script names.
IMPORTED = """
import ast, importlib, pathlib, sys
source = pathlib.Path(sys.argv[1]).read_text()
for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.ImportFrom) and node.module:
        module = importlib.import_module(node.module)
        for alias in node.names:
            if not hasattr(module, alias.name):
                importlib.import_module(f"{node.module}.{alias.name}")
    elif isinstance(node, ast.Import):
        for alias in node.names:
            importlib.import_module(alias.name)
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


# Stages that move a network onto runtime.device: those that import model/device.py.
def _runs_a_network(stage: str) -> bool:
    return "src/diffusion_circuits/model/device.py" in imported_library_files(
        ROOT / "stages" / f"{stage}.py"
    )


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_runtime_device_is_a_param_of_exactly_the_stages_that_run_a_network(stage):
    params = [str(p) for p in STAGES[stage].get("params", [])]
    assert ("runtime.device" in params) == _runs_a_network(stage), params
    assert "runtime" not in params and "runtime.num_threads" not in params


HELP = """
import runpy, sys
sys.argv = [sys.argv[1], "--help"]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = sorted({"torch", "diffusers", "pandas", "numpy", "pydantic"} & set(sys.modules))
print(" ".join(heavy))
"""


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_help_is_printed_before_any_heavy_import(stage):
    result = subprocess.run(
        [sys.executable, "-c", HELP, str(ROOT / "stages" / f"{stage}.py")],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    *usage, heavy = result.stdout.splitlines()
    assert any(line.startswith("usage:") for line in usage)
    assert heavy == "", f"{stage} --help imports {heavy}"
