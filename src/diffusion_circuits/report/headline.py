"""The run's headline: verdict counts in one sentence, and ``metrics/summary.json``.

The per-stage metrics files hold hundreds of keys, too many for ``dvc exp show``. The
summary file keeps a few dozen, with short keys so that a handful of them fit a
120-column terminal: the verdict counts, each dataset's worst accuracy margin over the
no-learning baselines, attention's causal share, the cross-dataset numbers and the
paper's headline ratio. Every number is read from the claims table or from the metrics
files the report stage already depends on; none is typed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from diffusion_circuits import layout
from diffusion_circuits.io import read_json
from diffusion_circuits.report.verdict import (
    CONSISTENT,
    CONTRADICTED,
    INCONCLUSIVE,
    OPPOSITE,
    REPLICATED,
)

__all__ = ["VERDICT_GROUPS", "grouped_verdicts", "summary_metrics", "verdict_sentence"]

# The three answers a claim can get from our data; every other verdict (not comparable,
# a design input, not testable) means the data could not answer it.
VERDICT_GROUPS = {
    "agree": (REPLICATED, CONSISTENT),
    "against": (CONTRADICTED, OPPOSITE),
    "inconclusive": (INCONCLUSIVE,),
}
CROSS_DATASET_KEYS = ("cross_dataset_accuracy", "feature_transferability",
                      "feature_transferability_baseline", "circuit_robustness",
                      "circuit_robustness_chance")  # fmt: skip
# attention_share.one_step keys "attention.<edit>.t<T>": every attention layer at once
ATTENTION_EDITS = ("uniform", "branch_zero")


def grouped_verdicts(verdicts: Iterable[str]) -> dict[str, Any]:
    """``{"claims": n, "agree": n, "against": n, "inconclusive": n, "untested": n,
    "untested_by_verdict": {verdict: n}}``: each claim in exactly one group."""
    counts = pd.Series(list(verdicts), dtype=object).value_counts().to_dict()
    grouped = {"claims": int(sum(counts.values()))}
    for group, members in VERDICT_GROUPS.items():
        grouped[group] = int(sum(counts.pop(v, 0) for v in members))
    grouped["untested"] = int(sum(counts.values()))
    grouped["untested_by_verdict"] = {str(v): int(n) for v, n in sorted(counts.items())}
    return grouped


def _claims(n: int) -> str:
    return f"{n} claim" if n == 1 else f"{n} claims"


def verdict_sentence(verdicts: Iterable[str]) -> str:
    """One sentence with every claim counted once, e.g. "Of the paper's 171 claims, 5
    replicated or are consistent with our data, 55 are contradicted or go the opposite
    way, 54 are inconclusive and 57 could not be tested (43 not comparable, ...)"."""
    g = grouped_verdicts(verdicts)
    untested = ", ".join(f"{n} {v}" for v, n in g["untested_by_verdict"].items())

    def verb(n: int, one: str, many: str) -> str:
        return f"{n} {one if n == 1 else many}"

    parts = [
        verb(g["agree"], "replicated or is consistent", "replicated or are consistent")
        + " with our data",
        verb(g["against"], "is contradicted or goes", "are contradicted or go")
        + " the opposite way",
        verb(g["inconclusive"], "is inconclusive", "are inconclusive"),
    ]
    if g["untested"]:
        parts.append(f"{g['untested']} could not be tested ({untested})")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Of the paper's {_claims(g['claims'])}, {listed}."


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _model_metrics(stage: str, dataset: str, seeds: Iterable[int], root: Path) -> list[dict]:
    paths = [layout.stage_metrics(stage, layout.model_name(dataset, s), root) for s in seeds]
    return [read_json(p) for p in paths if p.is_file()]


def _margins(evaluations: list[dict]) -> dict[str, Any]:
    """The worst seed's margin over the better baseline per timestep (> 0: every seed
    beats both), and how many seeds beat both at every timestep by their image CI."""
    timesteps = sorted({t for e in evaluations for t in e.get("margin_over_best_baseline", {})},
                       key=lambda t: int(t.lstrip("t")))  # fmt: skip
    worst = {t: min(e["margin_over_best_baseline"][t] for e in evaluations
                    if t in e.get("margin_over_best_baseline", {})) for t in timesteps}  # fmt: skip
    beating = sum(bool(e.get("beats_baselines_everywhere_by_ci")) for e in evaluations)
    return {"margin_min": worst, "seeds_beating_baselines": beating}


def _attention_share(analyses: list[dict]) -> dict[str, float]:
    """Largest held-out MSE rise (relative) over seeds and timesteps for each edit of
    every attention layer at once: the "at most +x%" of the README's headline."""
    rises: dict[str, list[float]] = {edit: [] for edit in ATTENTION_EDITS}
    for analysis in analyses:
        for key, entry in analysis.get("attention_share", {}).get("one_step", {}).items():
            layer, edit, _timestep = key.rsplit(".", 2)  # "attention": every layer at once
            if (
                layer == "attention"
                and edit in rises
                and _finite(entry.get("mse_rise")) is not None
            ):
                rises[edit].append(entry["mse_rise"])
    return {f"{edit}_max_rise": max(values) for edit, values in rises.items() if values}


def _headline_ratio(claims: pd.DataFrame) -> dict[str, float | str | None]:
    """The paper's headline: natural / synthetic circuit complexity (its first ratio claim)."""
    rows = claims[
        (claims["quantity"] == "circuit_complexity_ratio") & (claims["statistic"] == "ratio")
    ]
    if rows.empty:
        return {}
    row = rows.iloc[0]
    return {"ours": _finite(row["ours"]), "ci_low": _finite(row["ci_low"]),
            "ci_high": _finite(row["ci_high"]), "paper": _finite(row["paper_value"]),
            "verdict": str(row["verdict"])}  # fmt: skip


def summary_metrics(claims: pd.DataFrame, seeds: Iterable[int],
                    root: str | Path = layout.METRICS,
                    datasets: Iterable[str] = layout.DATASETS) -> dict[str, Mapping[str, Any]]:  # fmt: skip
    """The ``metrics/summary.json`` payload (nested; DVC flattens it to dotted keys).

    ``claims``: the report's claims table; ``root``: the metrics folder the other stages
    wrote. Keys of a stage that has not written its metrics are left out, not zero.
    """
    seeds, root = list(seeds), Path(root)
    verdicts = grouped_verdicts(claims["verdict"])
    del verdicts["untested_by_verdict"]  # one key per verdict string: too wide for a table
    distinct = claims.loc[claims["same_as"].isna(), "verdict"] if "same_as" in claims else None
    summary: dict[str, Any] = {"verdicts": verdicts}
    if distinct is not None:
        summary["distinct_assertions"] = {
            k: v for k, v in grouped_verdicts(distinct).items() if k != "untested_by_verdict"
        }
    for dataset in datasets:
        evaluations = _model_metrics("evaluate", dataset, seeds, root)
        analyses = _model_metrics("analyze", dataset, seeds, root)
        entry = {"seeds": len(evaluations)}
        if evaluations:
            entry.update(_margins(evaluations))
        entry["attention"] = _attention_share(analyses)
        summary[dataset] = entry
    cross_path = layout.stage_metrics("cross_dataset", root=root)
    if cross_path.is_file():
        cross = read_json(cross_path)
        summary["cross_dataset"] = {k: cross[k] for k in CROSS_DATASET_KEYS if k in cross}
    summary["circuit_complexity_ratio"] = _headline_ratio(claims)
    return summary
