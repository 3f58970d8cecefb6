"""Stable metric keys for ``metrics/stats.json`` (what ``dvc metrics diff`` compares)."""

from __future__ import annotations

import pandas as pd

__all__ = ["stats_metrics", "table_captions"]


def table_captions() -> dict[str, str]:
    return {
        "table1_circuit_complexity": "Table 1. Circuit complexity (participation ratio) by timestep",
        "table2_head_specialisation": "Table 2. Attention heads: role, entropy and specialisation",
        "table3_layer_ablation": "Table 3. Layer-group zero ablation: impact and ranking",
        "table4_cross_dataset": "Table 4. Cross-dataset comparison (natural - synthetic)",
        "accuracy_baselines": "Accuracy. The model beside the no-learning predictors",
    }


def _seed_level(row) -> dict:
    return {"estimate": row.estimate, "ci_low": row.ci_low, "ci_high": row.ci_high,
            "p_value": row.p_value, "p_holm": row.p_holm, "effect_size": row.effect_size,
            "d_for_power_80": row.d_for_power_80, "n_seeds": min(row.n_a, row.n_b)}  # fmt: skip


def stats_metrics(tables: dict[str, pd.DataFrame]) -> dict:
    """Nested dict with stable keys: table1.<component_type>.t<t>.<stat>, table3.<dataset>.<group>.<stat>, ...

    Image-level values keep their keys; the seed-level result of each Table 1 and Table 4
    row sits beside them under ``seed_level`` (NaN tests with one seed).
    """
    metrics: dict = {"table1": {}, "table3": {}, "table4": {}, "divergence": {}}
    for row in tables["table1_circuit_complexity"].itertuples(index=False):
        key = f"t{row.timestep}"
        by_type = metrics["table1"].setdefault(row.component_type, {})
        if row.unit == "seed":
            by_type.setdefault(key, {})["seed_level"] = _seed_level(row)
            continue
        by_type.setdefault(key, {}).update({
            "synthetic": row.mean_a, "natural": row.mean_b, "ratio": row.ratio,
            "p_value": row.p_value, "p_holm": row.p_holm, "effect_size": row.effect_size,
            "ci_low": row.ci_low, "ci_high": row.ci_high,
        })  # fmt: skip
    for row in tables["table3_layer_ablation"].itertuples(index=False):
        metrics["table3"].setdefault(row.dataset, {})[row.layer_group] = {
            "impact": row.impact,
            "rank": row.rank,
        }
    for row in tables["table4_cross_dataset"].itertuples(index=False):
        if row.unit == "seed":
            metrics["table4"].setdefault(row.metric, {})["seed_level"] = _seed_level(row)
            continue
        metrics["table4"].setdefault(row.metric, {}).update({
            "difference": row.estimate, "effect_size": row.effect_size, "p_value": row.p_value,
            "p_holm": row.p_holm, "ci_low": row.ci_low, "ci_high": row.ci_high,
        })  # fmt: skip
    comparisons = tables["comparisons"]
    for metric in ("entropy", "specialisation", "accuracy", "feature_complexity_scaled"):
        rows = comparisons[comparisons["metric"] == metric]
        metrics["divergence"][metric] = {
            f"t{int(r.timestep)}": r.estimate for r in rows.itertuples(index=False)
        }
    return metrics
