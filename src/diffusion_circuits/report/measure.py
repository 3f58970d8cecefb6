"""Our value, with a 95% CI, for each quantity the paper makes claims about.

Every number here is computed from the pipeline's outputs; nothing is typed in.
CIs are percentile bootstraps over images (scipy.stats.bootstrap) unless said otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.stats.study import StudyInputs

__all__ = ["Measurement", "ReportInputs", "measure"]


@dataclass(frozen=True)
class Measurement:
    value: float
    ci_low: float = np.nan
    ci_high: float = np.nan
    comparable: bool = True
    reason: str = ""


def _not_comparable(reason: str) -> Measurement:
    return Measurement(np.nan, comparable=False, reason=reason)


@dataclass(frozen=True)
class ReportInputs:
    study: StudyInputs
    tables: dict[str, pd.DataFrame]  # stats stage outputs (table1..4, comparisons)
    cross_summary: pd.DataFrame
    cka: pd.DataFrame
    robustness: pd.DataFrame
    n_images: dict[str, int]  # dataset -> images in the dataset
    n_probe: dict[str, int]  # dataset -> distinct images probed
    attention_heads: list[int]  # heads per attention layer
    attention_width: list[int]  # channels per attention layer
    num_train_timesteps: int
    n_parameters: int
    seed: int = 0
    n_resamples: int = 2000
    confidence: float = 0.95


def _boot(values, statistic=np.mean, seed: int = 0, n: int = 2000) -> Measurement:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return _not_comparable("no measurement")
    estimate = float(statistic(values))
    if len(values) < 3 or np.ptp(values) == 0:
        return Measurement(estimate)
    result = stats.bootstrap((values,), statistic, n_resamples=n, method="percentile",
                             random_state=np.random.default_rng(seed), vectorized=False)  # fmt: skip
    return Measurement(estimate, result.confidence_interval.low, result.confidence_interval.high)


def _scaled(m: Measurement, factor: float) -> Measurement:
    return Measurement(m.value * factor, m.ci_low * factor, m.ci_high * factor, m.comparable,
                       m.reason)  # fmt: skip


def _per_image(frame: pd.DataFrame, dataset: str | None, timestep: int | None) -> pd.Series:
    if dataset is not None:
        frame = frame[frame["dataset"] == dataset]
    if timestep is not None:
        frame = frame[frame["timestep"] == timestep]
    return frame.groupby(["dataset", "image_id"])["value"].mean()


def _ratio(ctx: ReportInputs, frame: pd.DataFrame, timestep: int | None) -> Measurement:
    a = _per_image(frame, "synthetic", timestep).to_numpy()
    b = _per_image(frame, "natural", timestep).to_numpy()
    result = stats.bootstrap((a, b), lambda x, y, axis: y.mean(axis) / x.mean(axis),
                             n_resamples=ctx.n_resamples, method="percentile", vectorized=True,
                             random_state=np.random.default_rng(ctx.seed))  # fmt: skip
    ci = result.confidence_interval
    return Measurement(b.mean() / a.mean(), ci.low, ci.high)


def _comparison(ctx: ReportInputs, metric: str, timestep: int | None) -> pd.Series:
    table = ctx.tables["comparisons"]
    rows = table[(table["metric"] == metric) & (table["timestep"] == timestep)]
    return rows.iloc[0]


def _abs_difference(row: pd.Series) -> Measurement:
    low, high = sorted((abs(row["ci_low"]), abs(row["ci_high"])))
    if row["ci_low"] <= 0 <= row["ci_high"]:
        low = 0.0
    return Measurement(abs(row["estimate"]), low, high)


def _divergence(ctx: ReportInputs, claim: Claim, metric: str) -> Measurement:
    if claim.statistic in ("range_low", "range_high"):
        table = ctx.tables["comparisons"]
        values = table.loc[table["metric"] == metric, "estimate"].abs()
        return Measurement(values.min() if claim.statistic == "range_low" else values.max())
    return _abs_difference(_comparison(ctx, metric, claim.timestep))


def _heads(ctx: ReportInputs, role: str | None) -> pd.DataFrame:
    roles = ctx.study.head_roles
    roles = roles[roles["dataset"] == "synthetic"]
    return roles if role is None else roles[roles["role"] == role]


def _role_metric(ctx: ReportInputs, claim: Claim, metric: str) -> Measurement:
    heads = _heads(ctx, claim.target)
    if heads.empty:
        return _not_comparable(f"no head of the synthetic model has the role {claim.target!r}")
    attention = ctx.study.attention
    rows = attention[(attention["metric"] == metric) & (attention["dataset"] == "synthetic")]
    rows = rows.merge(heads[["hook", "head"]], on=["hook", "head"])
    if claim.timestep is not None and claim.timestep in set(rows["timestep"]):
        rows = rows[rows["timestep"] == claim.timestep]
    return _boot(rows.groupby("image_id")["value"].mean(), seed=ctx.seed, n=ctx.n_resamples)


def _head_importance(ctx: ReportInputs, claim: Claim) -> Measurement:
    heads = _heads(ctx, claim.target)
    if heads.empty:
        return _not_comparable(f"no head of the synthetic model has the role {claim.target!r}")
    names = set(heads["hook"] + ".head." + heads["head"].astype(str))
    rows = ctx.study.interventions
    rows = rows[(rows["metric"] == "impact") & rows["target"].isin(names)
                & (rows["dataset"] == "synthetic")]  # fmt: skip
    return _boot(rows.groupby("image_id")["value"].mean(), seed=ctx.seed, n=ctx.n_resamples)


def _table3(ctx: ReportInputs, claim: Claim) -> pd.DataFrame:
    table = ctx.tables["table3_layer_ablation"]
    return table[table["dataset"] == (claim.dataset or "synthetic")]


def _layer_ablation(ctx: ReportInputs, claim: Claim, column: str) -> Measurement:
    table = _table3(ctx, claim)
    if claim.quantity == "layer_ablation_mse_baseline":
        return Measurement(table["mse_base"].mean())
    row = table[table["layer_group"] == claim.target]
    if row.empty:
        return _not_comparable(f"the model has no {claim.target} layer group")
    row = row.iloc[0]
    if column == "impact":
        m = Measurement(row["impact"], row["ci_low"], row["ci_high"])
        return _scaled(m, 100.0) if claim.statistic == "percent" else m
    return Measurement(float(row[column]))


def _impact_range(ctx: ReportInputs, claim: Claim) -> Measurement:
    impacts = _table3(ctx, claim)["impact"] * 100
    return Measurement(impacts.min() if claim.statistic == "range_low" else impacts.max())


def _table4(ctx: ReportInputs, claim: Claim) -> Measurement:
    table = ctx.tables["table4_cross_dataset"]
    row = table[table["metric"] == claim.target].iloc[0]
    if claim.statistic == "mean":
        return Measurement(row["mean_a"] if claim.dataset == "synthetic" else row["mean_b"])
    if claim.statistic == "difference":
        return Measurement(row["estimate"], row["ci_low"], row["ci_high"])
    if claim.statistic == "effect_size":
        return Measurement(row["effect_size"])
    return Measurement(row["p_value"])


def _ife_band(ctx: ReportInputs, claim: Claim) -> Measurement:
    flow = ctx.study.information_flow
    target = flow["hook"].str.split("->").str[-1]
    band = np.where(target.str.startswith(("conv_in", "down.0")), "early_layers",
                    np.where(target.str.startswith(("up.0", "down", "mid")), "middle_layers",
                             "late_layers"))  # fmt: skip
    means = flow[band == claim.target].groupby("timestep")["value"].mean()
    return Measurement(means.min() if claim.statistic == "range_low" else means.max())


def _entropy_range(ctx: ReportInputs, claim: Claim) -> Measurement:
    attention = ctx.study.attention
    rows = attention[(attention["metric"] == "entropy") & (attention["dataset"] == "synthetic")]
    per_head = rows.groupby(["hook", "head"])["value"].mean()
    return Measurement(per_head.min() if claim.statistic == "range_low" else per_head.max())


def _cc_p(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.timestep is None:
        table = ctx.tables["table4_cross_dataset"]
        return Measurement(table.loc[table["metric"] == "circuit_complexity", "p_value"].iloc[0])
    return Measurement(_comparison(ctx, "circuit_complexity", claim.timestep)["p_value"])


def _cc_ratio(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.statistic == "p_value":
        return _cc_p(ctx, claim)
    return _ratio(ctx, ctx.study.circuit_complexity, claim.timestep)


def _cc_increase(ctx: ReportInputs, claim: Claim) -> Measurement:
    """Percent by which natural exceeds synthetic circuit complexity, pooled over timesteps."""
    ratio = _ratio(ctx, ctx.study.circuit_complexity, None)
    return Measurement(*(100 * (v - 1) for v in (ratio.value, ratio.ci_low, ratio.ci_high)))


_MEASURES: dict[str, Callable[[ReportInputs, Claim], Measurement]] = {
    "sample_size": lambda ctx, c: Measurement(
        ctx.n_images[c.dataset] if c.dataset else min(ctx.n_probe.values())
    ),
    "power": lambda ctx, c: Measurement(ctx.tables["table4_cross_dataset"]["power"].min()),
    "model_heads": lambda ctx, c: Measurement(float(np.median(ctx.attention_heads))),
    "model_attention_layers": lambda ctx, c: Measurement(len(ctx.attention_heads)),
    "model_width": lambda ctx, c: Measurement(float(np.median(ctx.attention_width))),
    "timesteps_total": lambda ctx, c: Measurement(ctx.num_train_timesteps),
    "model_parameters": lambda ctx, c: Measurement(ctx.n_parameters / 1e6),
    "accuracy": lambda ctx, c: _scaled(_boot(_per_image(
        ctx.study.accuracy[ctx.study.accuracy["metric"] == "accuracy"], c.dataset, c.timestep),
        seed=ctx.seed, n=ctx.n_resamples), 100.0),
    "feature_complexity": lambda ctx, c: _boot(_per_image(
        ctx.study.activations[ctx.study.activations["metric"] == "feature_complexity"],
        c.dataset, c.timestep), seed=ctx.seed, n=ctx.n_resamples),
    "circuit_complexity": lambda ctx, c: _boot(_per_image(
        ctx.study.circuit_complexity, c.dataset, c.timestep), seed=ctx.seed, n=ctx.n_resamples),
    "circuit_complexity_ratio": _cc_ratio,
    "circuit_complexity_increase": _cc_increase,
    "entropy_divergence": lambda ctx, c: _divergence(ctx, c, "entropy"),
    "specialisation_divergence": lambda ctx, c: _divergence(ctx, c, "specialisation"),
    "n_head_roles": lambda ctx, c: Measurement(float((_heads(ctx, None)["role"] != "global").sum())),
    "role_entropy": lambda ctx, c: _role_metric(ctx, c, "entropy"),
    "head_specialisation": lambda ctx, c: _role_metric(ctx, c, "specialisation"),
    "head_importance": _head_importance,
    "head_entropy_range": _entropy_range,
    "information_flow_efficiency": _ife_band,
    "layer_ablation_mse_baseline": lambda ctx, c: _layer_ablation(ctx, c, "mse_base"),
    "layer_ablation_mse_ablated": lambda ctx, c: _layer_ablation(ctx, c, "mse_ablated"),
    "layer_ablation_impact": lambda ctx, c: _layer_ablation(ctx, c, "impact"),
    "layer_ablation_rank": lambda ctx, c: _layer_ablation(ctx, c, "rank"),
    "intervention_impact_range": _impact_range,
    "table4": _table4,
    "cross_dataset_accuracy": lambda ctx, c: _scaled(_boot(ctx.cross_summary["value"],
        seed=ctx.seed, n=ctx.n_resamples), 100.0),
    "feature_transferability": lambda ctx, c: _scaled(_boot(ctx.cka["value"], seed=ctx.seed,
        n=ctx.n_resamples), 100.0),
    "circuit_robustness": lambda ctx, c: _scaled(_boot(ctx.robustness.loc[
        ctx.robustness["comparison"] == "across_datasets", "value"], seed=ctx.seed,
        n=ctx.n_resamples), 100.0),
    "all_metrics_p": lambda ctx, c: Measurement(ctx.tables["table4_cross_dataset"]["p_value"].max()),
    "effect_size_range": lambda ctx, c: Measurement(
        ctx.tables["table4_cross_dataset"]["effect_size"].abs().min()
    ),
    "ci_level": lambda ctx, c: Measurement(100 * ctx.confidence),
    "n_synthetic_attributes": lambda ctx, c: _not_comparable(
        "an input of the generator (six attributes are drawn), not a measurement"
    ),
    "phase_timesteps": lambda ctx, c: _not_comparable(
        "the paper names phase boundaries but gives no rule that detects them"
    ),
    "phase_feature_complexity": lambda ctx, c: _not_comparable(
        "phase values restate 4.1 per timestep; no phase-detection rule to reproduce"
    ),
    "processing_phases": lambda ctx, c: _not_comparable(
        "the paper names four phases but gives no rule that detects them"),
}  # fmt: skip


def measure(claim: Claim, ctx: ReportInputs) -> Measurement:
    """Our measurement for ``claim``; ``comparable=False`` with a reason where none exists."""
    handler = _MEASURES.get(claim.quantity)
    if handler is None:
        return _not_comparable(f"no measurement for quantity {claim.quantity!r}")
    try:
        return handler(ctx, claim)
    except (KeyError, IndexError) as exc:
        return _not_comparable(f"measurement missing from the pipeline outputs ({exc})")
