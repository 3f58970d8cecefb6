"""The paper's Tables 1-4, computed from the tidy analysis tables.

With one training seed the statistical unit is the image and the model is fixed: the
tables then speak about this model's behaviour on these images, not about training runs.
With several seeds pass ``unit="seed"`` for model-level claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from diffusion_circuits.stats.compare import compare_datasets
from diffusion_circuits.stats.corrections import adjust_family

__all__ = [
    "GROUP_ORDER",
    "unit_note",
    "table1_circuit_complexity",
    "table2_head_specialisation",
    "table3_layer_ablation",
    "table4_cross_dataset",
    "to_markdown",
]

GROUP_ORDER = (
    "encoder_early", "encoder_middle", "encoder_late", "middle",
    "decoder_early", "decoder_middle", "decoder_late",
)  # fmt: skip


def unit_note(unit: str) -> str:
    if unit == "seed":
        return "unit: training seed (model-level comparison across independently trained models)"
    return "unit: image (one model per dataset, fixed; variation is over images)"


def _with_note(table: pd.DataFrame, unit: str) -> pd.DataFrame:
    table.attrs["unit_note"] = unit_note(unit)
    return table


def table1_circuit_complexity(
    circuit: pd.DataFrame, unit: str = "image_id", **kwargs
) -> pd.DataFrame:
    """Circuit complexity by timestep: means, SDs, ratio natural/synthetic, tests."""
    rows = circuit[circuit["metric"] == "circuit_complexity"]
    table = compare_datasets(rows, by=["timestep"], unit=unit, **kwargs)
    return _with_note(adjust_family(table), unit)


def table2_head_specialisation(attention: pd.DataFrame, roles: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, attention layer and head: role, entropy (bits) and specialisation."""
    keys = ["dataset", "hook", "head"]
    summary = (
        attention[attention["metric"].isin(["entropy", "specialisation"])]
        .groupby([*keys, "metric"])["value"]
        .agg(["mean", "std"])
        .unstack("metric")
    )
    summary.columns = [f"{metric}_{stat}" for stat, metric in summary.columns]
    summary = summary.reset_index()
    role_columns = [*keys, "role", "edge_score", "texture_score", "semantic_score"]
    table = summary.merge(roles[role_columns], on=keys, how="left")
    columns = [*keys, "role", "entropy_mean", "entropy_std", "specialisation_mean",
               "edge_score", "texture_score", "semantic_score"]  # fmt: skip
    return table[columns].sort_values(keys).reset_index(drop=True)


def table3_layer_ablation(
    interventions: pd.DataFrame,
    *,
    dataset: str = "synthetic",
    timestep: int = 300,
    method: str = "zero",
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Layer-group ablation at one timestep: baseline/ablated MSE, impact with CI, ranking."""
    rows = interventions[
        (interventions["family"] == "layer_ablation")
        & (interventions["dataset"] == dataset)
        & (interventions["timestep"] == timestep)
        & (interventions["method"] == method)
    ]
    if rows.empty:
        present = interventions[interventions["family"] == "layer_ablation"][
            ["dataset", "timestep", "method"]].drop_duplicates()  # fmt: skip
        raise ValueError(
            f"no layer ablation for dataset={dataset}, timestep={timestep}, method={method}; "
            f"present: {present.to_dict('records')}"
        )
    wide = rows.pivot_table(index=["target", "image_id"], columns="metric", values="value")
    out = []
    for group in [g for g in GROUP_ORDER if g in wide.index.get_level_values(0)]:
        part = wide.loc[group]
        boot = _mean_ci(part["impact"].to_numpy(), n_resamples, seed)
        out.append(
            {
                "layer_group": group,
                "n": len(part),
                "mse_base": part["mse_base"].mean(),
                "mse_ablated": part["mse_int"].mean(),
                "impact": part["impact"].mean(),
                "impact_sd": part["impact"].std(ddof=1),
                "ci_low": boot[0],
                "ci_high": boot[1],
            }
        )
    table = pd.DataFrame(out)
    table["rank"] = table["impact"].rank(ascending=False, method="min").astype(int)
    return table


def _mean_ci(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 2 or np.ptp(values) == 0:
        return (np.nan, np.nan)
    result = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, method="percentile",
                             random_state=np.random.default_rng(seed))  # fmt: skip
    return result.confidence_interval.low, result.confidence_interval.high


def table4_cross_dataset(
    frames: dict[str, pd.DataFrame], unit: str = "image_id", **kwargs
) -> pd.DataFrame:
    """One row per metric, pooled over timesteps/hooks/heads per unit, Holm over the 4 rows."""
    rows = []
    for label, frame in frames.items():
        pooled = frame.assign(metric=label)
        rows.append(compare_datasets(pooled, by=["metric"], unit=unit, **kwargs))
    return _with_note(adjust_family(pd.concat(rows, ignore_index=True)), unit)


def _format(value) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    magnitude = abs(float(value))
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e5):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _format_p(value) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def to_markdown(table: pd.DataFrame, caption: str, note: str | None = None) -> str:
    """A pipe table with a caption line; p-values as "<0.001", CIs as "[lo, hi]"."""
    shown = table.copy()
    if {"ci_low", "ci_high"} <= set(shown.columns):
        shown.insert(shown.columns.get_loc("ci_low"), "ci_95",
                     [f"[{_format(lo)}, {_format(hi)}]" for lo, hi in
                      zip(shown.pop("ci_low"), shown.pop("ci_high"), strict=True)])  # fmt: skip
    cells = [[
        _format_p(v) if c.startswith("p_") or c.endswith("p_value") else _format(v)
        for c, v in zip(shown.columns, row, strict=True)
    ] for row in shown.itertuples(index=False)]  # fmt: skip
    lines = [f"**{caption}**", "", "| " + " | ".join(shown.columns) + " |",
             "|" + "|".join("---" for _ in shown.columns) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    notes = [n for n in (note, table.attrs.get("unit_note")) if n]
    if notes:
        lines += ["", *[f"_{n}_" for n in notes]]
    return "\n".join(lines) + "\n"
