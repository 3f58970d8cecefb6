"""dvc.yaml declares what src/diffusion_circuits/layout.py says each stage writes and reads,
and the stages and loaders spell no path or dataset name of their own."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

from diffusion_circuits import layout

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
SEEDS = tuple(yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["seeds"])
ITEM = {"dataset": "synthetic", "seed": 0}  # the matrix item the checks expand


def _expand(entry) -> str:
    path = next(iter(entry)) if isinstance(entry, dict) else entry
    return re.sub(r"\$\{item\.(\w+)\}", lambda m: str(ITEM[m.group(1)]), str(path))


def _declared(stage: str, *sections: str) -> set[str]:
    return {_expand(entry) for section in sections for entry in STAGES[stage].get(section, [])}


def _item(stage: str) -> dict:
    matrix = STAGES[stage].get("matrix", {})
    return {key: ITEM[key] for key in matrix}


def test_layout_knows_every_stage_of_the_pipeline():
    for stage in STAGES:
        layout.stage_outputs(stage)  # KeyError: a stage layout.py does not describe
        layout.stage_inputs(stage)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_output_layout_names_is_declared_and_nothing_else(stage):
    expected = {str(p) for p in layout.stage_outputs(stage, **_item(stage))}
    assert _declared(stage, "outs", "metrics", "plots") == expected


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_input_layout_names_is_covered_by_a_dep(stage):
    deps = [d.rstrip("/") for d in _declared(stage, "deps")]
    inputs = layout.stage_inputs(stage, **_item(stage), seeds=SEEDS)
    uncovered = [
        str(path) for path in inputs
        if not any(str(path) == dep or str(path).startswith(dep + "/") for dep in deps)
    ]  # fmt: skip
    assert not uncovered, f"{stage} reads {uncovered} but dvc.yaml does not list them as deps"


def test_the_report_depends_on_the_model_it_counts_heads_of():
    assert layout.model_dir("synthetic", SEEDS[0]) in layout.stage_inputs("report", seeds=SEEDS)
    assert "data/models" in _declared("report", "deps")


def test_timings_are_side_files_not_dvc_outputs():
    declared = {p for stage in STAGES for p in _declared(stage, "outs", "metrics", "plots")}
    assert not [p for p in declared if p.startswith(f"{layout.TIMINGS}/")]


def test_the_probe_and_the_study_share_one_definition_of_the_layer_groups():
    from diffusion_circuits.probe.names import LAYER_GROUPS

    assert LAYER_GROUPS is layout.LAYER_GROUPS
    # layout.py is stdlib-only (fast --help), so the shared definition must be too.
    leaf = ROOT / "src/diffusion_circuits/vocabulary.py"
    imported = set()
    for node in ast.walk(ast.parse(leaf.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0] if node.level == 0 else "(relative)")
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# Modules that build pipeline paths: each must take them from layout.py.
PATH_USERS = [
    *sorted((ROOT / "stages").glob("*.py")),
    *(ROOT / "src/diffusion_circuits" / p for p in (
        "analysis/model_io.py", "analysis/evaluation.py", "analysis/model_samples.py",
        "analysis/activation_cache.py", "analysis/model_analysis.py",
        "analysis/cross_dataset_study.py", "model/train_run.py", "stats/loading.py",
        "stats/study_outputs.py", "stats/attention_share.py", "figures/data.py",
        "report/inputs.py", "report/assemble.py",
    )),
]  # fmt: skip
PATH_LITERAL = re.compile(r"""["'/](data|metrics|timings|plots|reports)/|-seed\{""")
DATASET_LITERAL = re.compile(r"""\(\s*["']synthetic["'],\s*["']natural["']\s*\)""")


@pytest.mark.parametrize("path", PATH_USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pipeline_path_or_dataset_list_is_written_outside_layout(path):
    code = [
        line for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#") and '"""' not in line
    ]  # fmt: skip
    found = [line.strip() for line in code if PATH_LITERAL.search(line)]
    found += [line.strip() for line in code if DATASET_LITERAL.search(line)]
    assert not found, found
