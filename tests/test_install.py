"""The library installs lean: the probe needs torch, diffusers, numpy, pyarrow and scipy.

`pip install diffusion-circuits` brings the `dependencies` of pyproject.toml; the study's
packages (statistics, figures, the report) come with the `study` extra that `make setup`
installs. The probe's code imports none of them and none of the study's modules (only the
dependency-free vocabulary of names it shares with the study).
"""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE_NEEDS = {"torch", "diffusers", "numpy", "pyarrow", "scipy"}
# the probe may import itself and the dependency-free vocabulary it shares with the study
OWN = ("diffusion_circuits.probe", "diffusion_circuits.vocabulary")


def _name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop)[0]
    return requirement.lower()


def test_the_package_dependencies_are_what_the_probe_needs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_name(r) for r in project["dependencies"]} == PROBE_NEEDS
    study = {_name(r) for r in project["optional-dependencies"]["study"]}
    assert {"pandas", "pingouin", "accelerate", "matplotlib"} <= study


def _imports(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at any depth of the code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_probe_imports_only_its_dependencies_and_the_standard_library():
    allowed = PROBE_NEEDS | set(sys.stdlib_module_names)
    for path in sorted((ROOT / "src/diffusion_circuits/probe").rglob("*.py")):
        for name in _imports(path):
            if name.startswith("diffusion_circuits"):
                assert name.startswith(OWN), f"{path.name} imports the study's {name}"
            else:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_importing_the_probe_loads_none_of_the_study_modules():
    # diffusers itself loads scipy, accelerate or transformers when they are installed:
    # only our own modules are checked at run time, the rest statically above
    code = (
        "import sys, diffusion_circuits.probe\n"
        f"ours = sorted(m for m in sys.modules if m.startswith('diffusion_circuits.')"
        f" and not m.startswith({OWN!r}))\n"
        "assert not ours, ours\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
