"""Every statistic of the study from the pipeline's tidy tables (what the stats stage runs)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from diffusion_circuits.stats.accuracy import accuracy_table
from diffusion_circuits.stats.compare import ALPHA
from diffusion_circuits.stats.corrections import adjust_family
from diffusion_circuits.stats.tables import (
    table1_circuit_complexity,
    table2_head_specialisation,
    table3_layer_ablation,
    table4_cross_dataset,
    unit_note,
)
from diffusion_circuits.stats.unit_comparison import NO_SEED_INFERENCE, compare_by_unit
from diffusion_circuits.vocabulary import DATASETS

__all__ = [
    "ALL_SEEDS",
    "FEATURE_COMPLEXITY",
    "PRIMARY_ABLATION",
    "StudyInputs",
    "all_components",
    "component_impacts",
    "head_impacts",
    "HEAD_LABEL",
    "dataset_comparisons",
    "pooled_impacts",
    "study_statistics",
    "table4_frames",
]

ALL_SEEDS = "all"


@dataclass(frozen=True)
class StudyInputs:
    """Concatenated tidy tables of both datasets (columns ``dataset`` and ``seed`` included)."""

    accuracy: pd.DataFrame  # held-out accuracy(t) from the train stage
    activations: pd.DataFrame
    attention: pd.DataFrame
    information_flow: pd.DataFrame
    interventions: pd.DataFrame
    circuit_complexity: pd.DataFrame
    head_roles: pd.DataFrame


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


# Component impacts: mean ablation is the primary baseline (docs/METRICS.md); zero and
# resample ablations run on a subset of the images and are never averaged in.
PRIMARY_ABLATION = "mean"
# Feature complexity compared across the two networks: the unit-free form (the raw value
# is in activation units^2 of each network, docs/METRICS.md).
FEATURE_COMPLEXITY = "feature_complexity_scaled"


def _layer_impacts(inputs: StudyInputs) -> pd.DataFrame:
    rows = inputs.interventions
    _require(rows, ["metric", "family", "method", "target"], "interventions table")
    return rows[(rows["metric"] == "impact") & (rows["family"] == "layer_ablation")
                & (rows["method"] == "zero")]  # fmt: skip


def component_impacts(interventions: pd.DataFrame, metric: str = "impact") -> pd.DataFrame:
    """Per-image ``metric`` rows (``impact`` relative, ``delta_mse`` absolute) of mean-ablating
    one component (:data:`PRIMARY_ABLATION`); zero / resample rows are left out."""
    _require(interventions, ["family", "method", "metric", "target"], "interventions table")
    rows = interventions
    return rows[(rows["family"] == "component_ablation") & (rows["method"] == PRIMARY_ABLATION)
                & (rows["metric"] == metric)]  # fmt: skip


# The probe's head label (probe.names.Head.name, "<attention>.head.<index>"), read here
# without importing the probe (stats stays torch-free); tests/stats check the two agree.
HEAD_LABEL = r"^(?P<hook>.+)\.head\.(?P<head>\d+)$"


def head_impacts(interventions: pd.DataFrame, metric: str = "impact") -> pd.DataFrame:
    """:func:`component_impacts` rows of single heads, with their ``hook`` and ``head``."""
    rows = component_impacts(interventions, metric)
    split = rows["target"].str.extract(HEAD_LABEL)
    heads = rows.assign(hook=split["hook"], head=pd.to_numeric(split["head"]))
    return heads.dropna(subset=["hook"]).astype({"head": int})


def all_components(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows over every component (``component_type == "all"``); all rows without the column."""
    return frame[frame["component_type"] == "all"] if "component_type" in frame.columns else frame


def _circuit_complexity(inputs: StudyInputs) -> pd.DataFrame:
    """The combined participation ratio (``component_type == "all"`` where the column exists)."""
    rows = inputs.circuit_complexity
    return all_components(rows[rows["metric"] == "circuit_complexity"])


def pooled_impacts(inputs: StudyInputs) -> pd.DataFrame:
    """Layer-group zero-ablation impacts for Table 4, ``output_constant`` runs left out.

    A run whose prediction no longer depends on the input (zero-ablating decoder_late)
    has an impact of about 1 / (1 - accuracy) - 1: an accuracy measure, not a circuit
    effect. ``attrs["note"]`` names the (dataset, target) pairs left out.
    """
    rows = _layer_impacts(inputs)
    _require(rows, ["output_constant"], "interventions table")
    constant = rows["output_constant"].astype(bool)
    kept = rows[~constant]
    left = sorted({f"{d} {t}" for d, t in zip(rows.loc[constant, "dataset"],
                                               rows.loc[constant, "target"], strict=True)})  # fmt: skip
    if left:
        kept.attrs["note"] = (f"output-constant runs left out ({', '.join(left)}: their impact "
                              "measures accuracy, not a circuit)")  # fmt: skip
    return kept


def table4_frames(inputs: StudyInputs) -> dict[str, pd.DataFrame]:
    """Table 4's label -> tidy rows of that metric (pooled over timesteps, hooks, heads).

    Circuit complexity is the combined participation ratio, feature complexity its
    unit-free form (:data:`FEATURE_COMPLEXITY`), intervention impact
    :func:`pooled_impacts` (output-constant runs left out, said in ``attrs["note"]``).
    """
    attention, activations = inputs.attention, inputs.activations
    return {
        "circuit_complexity": _circuit_complexity(inputs),
        "attention_entropy": attention[attention["metric"] == "entropy"],
        "feature_complexity": _feature_complexity(activations),
        "intervention_impact": pooled_impacts(inputs),
    }


def _feature_complexity(activations: pd.DataFrame) -> pd.DataFrame:
    rows = activations[activations["metric"] == FEATURE_COMPLEXITY]
    if rows.empty:
        present = sorted(activations["metric"].unique())
        raise ValueError(f"activations table has no {FEATURE_COMPLEXITY!r} rows; metrics: {present}")  # fmt: skip
    return rows


def _families(inputs: StudyInputs) -> list[tuple[pd.DataFrame, list[str]]]:
    """(tidy rows, by columns) of every per-timestep dataset comparison."""
    accuracy, activations = inputs.accuracy, inputs.activations
    return [
        (accuracy[accuracy["metric"] == "accuracy"], ["metric", "timestep"]),
        (_feature_complexity(activations), ["metric", "timestep"]),
        (inputs.information_flow, ["metric", "timestep"]),
        (inputs.attention, ["metric", "timestep"]),
        (_circuit_complexity(inputs), ["metric", "timestep"]),
        (_layer_impacts(inputs).assign(metric="layer_ablation_impact"),
         ["metric", "timestep", "target"]),
    ]  # fmt: skip


def _per_scope(run: Callable[[pd.DataFrame], pd.DataFrame], frame: pd.DataFrame) -> pd.DataFrame:
    """``run`` on all seeds, then on each seed alone (image rows only: one model each)."""
    parts = [run(frame).assign(seed_scope=ALL_SEEDS)]
    for seed in sorted(frame["seed"].unique()):
        alone = run(frame[frame["seed"] == seed])
        parts.append(alone[alone["unit"] == "image"].assign(seed_scope=str(seed)))
    return pd.concat(parts, ignore_index=True)


def dataset_comparisons(inputs: StudyInputs, *, alpha: float = ALPHA, **kwargs) -> pd.DataFrame:
    """Every synthetic-vs-natural comparison, per unit and per seed scope, Holm-adjusted.

    Parameters
    ----------
    inputs : the study's tidy tables; each needs ``dataset``, ``seed`` and ``image_id``.
    alpha : level of ``significant`` and of the power columns (``params.stats.alpha``).
    kwargs : ``n_resamples``, ``seed``, ``confidence`` for the bootstraps.

    Returns
    -------
    Long table: ``family`` (the metric for per-timestep comparisons; ``"table4"`` for the
    Table 4 rows, pooled over timesteps, with ``metric`` the Table 4 label),
    ``seed_scope`` (``"all"``: every seed; ``"<s>"``: seed s alone, image rows only, for
    the per-seed robustness of verdicts), ``metric``, ``timestep``, ``target``, the
    columns of :func:`~diffusion_circuits.stats.unit_comparison.compare_by_unit` (``unit``
    image | seed among them), ``p_bonferroni``, ``p_holm`` and ``significant`` within
    each (family, unit, seed_scope).
    """
    for name in ("accuracy", "activations", "attention", "information_flow",
                 "interventions", "circuit_complexity"):  # fmt: skip
        _require(getattr(inputs, name), ["dataset", "seed", "image_id", "metric", "value"], name)
    parts = []
    for rows, by in _families(inputs):
        run = functools.partial(compare_by_unit, by=by, alpha=alpha, **kwargs)
        parts.append(_per_scope(run, rows).assign(family=lambda t: t["metric"]))
    for label, frame in table4_frames(inputs).items():
        run = functools.partial(compare_by_unit, by=["metric"], alpha=alpha, **kwargs)
        parts.append(_per_scope(run, frame.assign(metric=label)).assign(family="table4"))
    table = pd.concat(parts, ignore_index=True)
    table = adjust_family(table, family=["family", "unit", "seed_scope"], alpha=alpha)
    first = ["family", "seed_scope", "metric", "timestep", "target", "unit"]
    table = table.reindex(columns=[*first, *[c for c in table.columns if c not in first]])
    table.attrs["no_seed_inference"] = NO_SEED_INFERENCE
    return table


def study_statistics(
    inputs: StudyInputs,
    *,
    n_resamples: int,
    seed: int,
    confidence: float,
    alpha: float = ALPHA,
    table3_timestep: int = 300,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Tables 1-4, the image-level comparisons and the full inference table.

    Returns ``(tables, comparisons)``. ``tables`` holds ``table1_circuit_complexity`` ..
    ``table4_cross_dataset`` (Tables 1 and 4 with image and seed rows), ``accuracy_baselines``
    (:func:`~diffusion_circuits.stats.accuracy.accuracy_table`), ``comparisons``
    (the per-timestep comparisons at the image unit over all seeds, one row per metric x
    timestep [x target], Holm within each metric: what the figures plot) and
    ``inference`` (:func:`dataset_comparisons`: every unit and seed scope, what the
    report judges claims on). ``comparisons`` is returned again as the second item.
    ``alpha`` (``params.stats.alpha``) is the level of every ``significant`` column and
    of the power columns.
    """
    common = dict(n_resamples=n_resamples, seed=seed, confidence=confidence, alpha=alpha)
    inference = dataset_comparisons(inputs, **common)
    image_rows = (inference["seed_scope"] == ALL_SEEDS) & (inference["unit"] == "image")
    comparisons = inference[image_rows & (inference["family"] != "table4")]
    comparisons = comparisons.drop(columns=["family", "seed_scope"]).reset_index(drop=True)
    impacts = _layer_impacts(inputs)
    timesteps = sorted(impacts["timestep"].unique())
    t3 = min(timesteps, key=lambda t: abs(t - table3_timestep))
    tables = {
        # per component type first (the primary result), then the combined ratio
        "table1_circuit_complexity": table1_circuit_complexity(inputs.circuit_complexity, **common),
        # The paper's Table 2 is "t=300 representative": the same timestep as Table 3.
        # Heads belong to one trained model: Table 2 is always per image (and per seed).
        "table2_head_specialisation": table2_head_specialisation(
            inputs.attention, inputs.head_roles, unit="image_id", timestep=t3
        ),
        "table3_layer_ablation": pd.concat(
            [
                table3_layer_ablation(
                    inputs.interventions, dataset=d, timestep=t3, n_resamples=n_resamples, seed=seed
                ).assign(dataset=d, timestep=t3)
                for d in DATASETS
            ],
            ignore_index=True,
        ),
        "table4_cross_dataset": table4_cross_dataset(table4_frames(inputs), **common),
        "accuracy_baselines": accuracy_table(inputs.accuracy),
        "comparisons": comparisons,
        "inference": inference,
    }
    tables["table3_layer_ablation"].attrs["unit_note"] = unit_note("image_id")
    return tables, comparisons
