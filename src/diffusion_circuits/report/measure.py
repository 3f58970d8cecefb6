"""Our value, with its CI and unit, for each quantity the paper makes claims about.

Every number here is computed from the pipeline's outputs; nothing is typed in. Each
:class:`~diffusion_circuits.report.verdict.Measurement` says its unit and how its CI was
obtained (``ci_method``). Model-level claims are measured at the context's unit and
marked untestable when the report's scope holds one model per dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.context import (
    ReportInputs,
    inference_rows,
    point,
    ratio_of_means,
    unit_of,
)
from diffusion_circuits.report.transfer import cross_accuracy, robustness, transferability
from diffusion_circuits.report.verdict import Measurement, ci_side, is_model_level
from diffusion_circuits.stats.study import ALL_SEEDS, component_impacts, table4_frames

__all__ = ["Measurement", "ReportInputs", "claim_tests", "measure"]

TABLE4 = ("circuit_complexity", "attention_entropy", "feature_complexity", "intervention_impact")
# Labels that name a function; "global", "none" (no score beats its null) and
# "undetermined" do not (analysis/roles.py).
ASSIGNED_ROLES = ("edge", "texture", "semantic")
NO_SEMANTIC = (
    "'semantic' is never assigned on either dataset: the natural faces have no part masks "
    "(a template mask is the same map for every image, which the image-permutation null "
    "cannot test), so both datasets share the labels global/edge/texture/none/undetermined"
)


def claim_tests(claim: Claim) -> tuple[str, ...]:
    """Ids of the stats-stage tests a claim refers to (empty when it refers to none).

    ``"<metric> t=<t>"`` for a per-timestep comparison, ``"table4 <metric>"`` for a Table 4
    row (pooled over timesteps). A timestep-free complexity ratio or increase is the
    Table 4 circuit-complexity test; "across all metrics" refers to every Table 4 row.
    """
    q, t = claim.quantity, claim.timestep
    if q == "all_metrics_p":
        return tuple(f"table4 {m}" for m in TABLE4)
    if q == "table4" and claim.statistic != "mean":
        return (f"table4 {claim.target}",)
    if q in ("circuit_complexity_ratio", "circuit_complexity_increase"):
        return (f"circuit_complexity t={t}",) if t is not None else ("table4 circuit_complexity",)
    if q in ("entropy_divergence", "specialisation_divergence") and t is not None:
        return (f"{q.split('_')[0]} t={t}",)
    return ()


def _test_row(ctx: ReportInputs, test: str) -> pd.Series:
    family, _, rest = test.partition(" ")
    if family == "table4":
        rows = inference_rows(ctx, "table4", rest)
    else:
        rows = inference_rows(ctx, family, family, int(rest.removeprefix("t=")))
    if rows.empty:
        raise KeyError(f"test {test!r} at unit {unit_of(ctx)}, scope {ctx.scope}")
    return rows.iloc[0]


def _significance(ctx: ReportInputs, claim: Claim) -> Measurement:
    tests = claim_tests(claim)
    rows = [_test_row(ctx, t) for t in tests]
    p = tuple(float(r["p_holm"]) for r in rows)
    return Measurement(
        max(p), unit=unit_of(ctx), ci_method="", tests=tests, p_adj=p,
        signs=tuple(float(np.sign(r["estimate"])) for r in rows),
        paper_signs=tuple(ctx.paper_directions.get(t, 0.0) for t in tests),
    )  # fmt: skip


def _row_measurement(row: pd.Series, value: float) -> Measurement:
    return Measurement(value, row["ci_low"], row["ci_high"], unit=row["unit"],
                       ci_method=row["ci_method"])  # fmt: skip


def _table4(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.statistic == "p_value":
        return _significance(ctx, claim)
    if claim.statistic == "mean":
        frame = table4_frames(ctx.study)[claim.target]
        return point(ctx, frame[frame["dataset"] == claim.dataset])
    row = _test_row(ctx, claim_tests(claim)[0])
    if claim.statistic == "difference":
        return _row_measurement(row, row["estimate"])
    return Measurement(
        row["effect_size"], unit=row["unit"], direction_ci=(row["ci_low"], row["ci_high"]),
        paper_signs=(ctx.paper_directions.get(claim_tests(claim)[0], 0.0),),
    )  # fmt: skip


def _cc_ratio(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.statistic == "p_value":
        return _significance(ctx, claim)
    frame = ctx.study.circuit_complexity
    if claim.timestep is not None:
        frame = frame[frame["timestep"] == claim.timestep]
    m = ratio_of_means(ctx, frame)
    if claim.quantity == "circuit_complexity_increase":
        return dataclasses.replace(m, value=100 * (m.value - 1), ci_low=100 * (m.ci_low - 1),
                                   ci_high=100 * (m.ci_high - 1))  # fmt: skip
    return m


def _divergence(ctx: ReportInputs, claim: Claim) -> Measurement:
    metric = claim.quantity.split("_")[0]
    if claim.statistic in ("range_low", "range_high"):
        values = inference_rows(ctx, metric, metric)["estimate"].abs()
        pick = values.min() if claim.statistic == "range_low" else values.max()
        return Measurement(float(pick), unit=unit_of(ctx))
    row = _test_row(ctx, claim_tests(claim)[0])
    low, high = sorted((abs(row["ci_low"]), abs(row["ci_high"])))
    if row["ci_low"] <= 0 <= row["ci_high"]:
        low = 0.0
    return Measurement(abs(row["estimate"]), low, high, unit=row["unit"],
                       ci_method=f"|{row['ci_method']}| folded at 0")  # fmt: skip


def _heads(ctx: ReportInputs, role: str | None) -> pd.DataFrame:
    roles = ctx.study.head_roles
    roles = roles[roles["dataset"] == "synthetic"] if "dataset" in roles.columns else roles
    return roles if role is None else roles[roles["role"] == role]


def _no_role(ctx: ReportInputs, role: str) -> Measurement:
    """Not comparable: no head has ``role``; the reason says why and what the heads got."""
    if role == "semantic":
        return Measurement(np.nan, comparable=False, reason=NO_SEMANTIC)
    counts = _heads(ctx, None)["role"].value_counts()
    got = ", ".join(f"{r} {n}" for r, n in counts.items())
    return Measurement(np.nan, comparable=False,
                       reason=f"no head of the synthetic model has the role {role!r} "
                       f"(a role needs a positive score beating its null; heads: {got})")  # fmt: skip


def _head_rows(ctx: ReportInputs, claim: Claim, frame: pd.DataFrame, heads: pd.DataFrame):
    keys = ["hook", "head"] + (["seed"] if "seed" in heads.columns and "seed" in frame.columns else [])  # fmt: skip
    rows = frame[frame["dataset"] == "synthetic"].merge(heads[keys].drop_duplicates(), on=keys)
    if claim.timestep is not None and claim.timestep in set(rows["timestep"]):
        rows = rows[rows["timestep"] == claim.timestep]
    return rows


def _role_metric(ctx: ReportInputs, claim: Claim, metric: str) -> Measurement:
    heads = _heads(ctx, claim.target)
    if heads.empty:
        return _no_role(ctx, claim.target)
    attention = ctx.study.attention
    return point(ctx, _head_rows(ctx, claim, attention[attention["metric"] == metric], heads))


def _head_importance(ctx: ReportInputs, claim: Claim) -> Measurement:
    """Mean relative impact of mean-ablating one head of the role, at the claim's timestep."""
    heads = _heads(ctx, claim.target)
    if heads.empty:
        return _no_role(ctx, claim.target)
    rows = component_impacts(ctx.study.interventions)
    split = rows["target"].str.extract(r"^(?P<hook>.+)\.head\.(?P<head>\d+)$")
    rows = rows.assign(hook=split["hook"], head=pd.to_numeric(split["head"])).dropna(
        subset=["hook"]
    )
    return point(ctx, _head_rows(ctx, claim, rows, heads.astype({"head": int})))


def _layer_rows(ctx: ReportInputs, claim: Claim, metric: str) -> pd.DataFrame:
    rows = ctx.study.interventions
    if "family" in rows.columns:
        rows = rows[rows["family"] == "layer_ablation"]
    rows = rows[(rows["method"] == "zero") & (rows["metric"] == metric)
                & (rows["dataset"] == (claim.dataset or "synthetic"))]  # fmt: skip
    if claim.timestep is not None:
        rows = rows[rows["timestep"] == claim.timestep]
    return rows


def _layer_ablation(ctx: ReportInputs, claim: Claim) -> Measurement:
    metric = {"layer_ablation_mse_baseline": "mse_base", "layer_ablation_mse_ablated": "mse_int",
              "layer_ablation_impact": "impact", "layer_ablation_rank": "impact"}[claim.quantity]  # fmt: skip
    rows = _layer_rows(ctx, claim, metric)
    if claim.quantity == "layer_ablation_mse_baseline":
        return point(ctx, rows)
    if claim.target not in set(rows["target"]):
        return Measurement(np.nan, comparable=False, reason=f"the model has no {claim.target} layer group")  # fmt: skip
    if claim.quantity == "layer_ablation_rank":
        ranks = rows.groupby("target")["value"].mean().rank(ascending=False, method="min")
        return Measurement(float(ranks[claim.target]), unit=unit_of(ctx))
    scale = 100.0 if claim.statistic == "percent" else 1.0
    return point(ctx, rows[rows["target"] == claim.target], scale=scale)


def _impact_range(ctx: ReportInputs, claim: Claim) -> Measurement:
    means = _layer_rows(ctx, claim, "impact").groupby("target")["value"].mean() * 100
    return Measurement(means.min() if claim.statistic == "range_low" else means.max())


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
    per_head = rows.groupby(["seed", "hook", "head"])["value"].mean()
    return Measurement(per_head.min() if claim.statistic == "range_low" else per_head.max())


def _n_roles(ctx: ReportInputs, claim: Claim) -> Measurement:
    heads = _heads(ctx, None)
    specialised = heads["role"].isin(ASSIGNED_ROLES)
    per_model = specialised.groupby(heads["seed"]).sum() if "seed" in heads.columns else specialised.sum()  # fmt: skip
    return Measurement(float(np.mean(per_model)))


def _table4_rows(ctx: ReportInputs) -> pd.DataFrame:
    return inference_rows(ctx, "table4")


def _effect_size_range(ctx: ReportInputs) -> Measurement:
    """The smallest Table 4 effect, signed by agreement with the paper's direction.

    "Medium to large effects" speaks of the paper's effects: a |d| counts as is only where
    our mean difference's CI lies on the paper's side of 0; on the other side it counts
    as -|d|, across 0 as 0, so one reversed or unestablished effect fails the bound.
    """
    signed, reversed_ = [], []
    for _, row in _table4_rows(ctx).iterrows():
        paper = ctx.paper_directions.get(f"table4 {row['metric']}", 0.0)
        ours = ci_side(row["ci_low"], row["ci_high"], 0.0)
        size = abs(float(row["effect_size"]))
        if paper == 0 or ours == paper:
            signed.append(size)
        else:
            signed.append(-size if ours else 0.0)
            reversed_.append(f"{row['metric']} ({'reversed' if ours else 'CI across 0'})")
    reason = ("smallest |d| over Table 4, every effect in the paper's direction" if not reversed_
              else "smallest Table 4 effect, negative or 0 where not in the paper's direction: "
              + ", ".join(reversed_))  # fmt: skip
    return Measurement(min(signed), unit=unit_of(ctx), reason=reason)


def _sample_size(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.dataset:
        n, distinct = ctx.n_images[claim.dataset], ctx.n_distinct.get(claim.dataset)
    else:
        dataset = min(ctx.n_probe, key=ctx.n_probe.get)
        n, distinct = ctx.n_probe[dataset], ctx.n_probe_distinct.get(dataset)
    if distinct is None:
        return Measurement(n, reason=f"{n} images; distinct sources not recorded")
    extra = f" x {n / distinct:g} augmentations" if distinct < n else ""
    return Measurement(n, reason=f"{n} images = {distinct} distinct source images{extra}")


def _per_image(name: str, metric: str | None = None, scale: float = 1.0):
    def run(ctx: ReportInputs, claim: Claim) -> Measurement:
        frame = getattr(ctx.study, name)
        if metric is not None:
            frame = frame[frame["metric"] == metric]
        frame = frame[frame["dataset"] == claim.dataset] if claim.dataset else frame
        if claim.timestep is not None:
            frame = frame[frame["timestep"] == claim.timestep]
        return point(ctx, frame, scale=scale)

    return run


_MEASURES: dict[str, Callable[[ReportInputs, Claim], Measurement]] = {
    "sample_size": _sample_size,
    "power": lambda ctx, c: Measurement(_table4_rows(ctx)["power"].min(), unit=unit_of(ctx)),
    "model_heads": lambda ctx, c: Measurement(float(np.median(ctx.attention_heads))),
    "model_attention_layers": lambda ctx, c: Measurement(len(ctx.attention_heads)),
    "model_width": lambda ctx, c: Measurement(float(np.median(ctx.attention_width))),
    "timesteps_total": lambda ctx, c: Measurement(ctx.num_train_timesteps),
    "model_parameters": lambda ctx, c: Measurement(ctx.n_parameters / 1e6),
    "ci_level": lambda ctx, c: Measurement(100 * ctx.confidence),
    "n_synthetic_attributes": lambda ctx, c: Measurement(
        np.nan, reason="an input of the generator (the attributes it draws)"),
    "accuracy": _per_image("accuracy", "accuracy", 100.0),
    "feature_complexity": _per_image("activations", "feature_complexity"),
    "circuit_complexity": _per_image("circuit_complexity"),
    "circuit_complexity_ratio": _cc_ratio,
    "circuit_complexity_increase": _cc_ratio,
    "entropy_divergence": _divergence,
    "specialisation_divergence": _divergence,
    "n_head_roles": _n_roles,
    "role_entropy": lambda ctx, c: _role_metric(ctx, c, "entropy"),
    "head_specialisation": lambda ctx, c: _role_metric(ctx, c, "specialisation"),
    "head_importance": _head_importance,
    "head_entropy_range": _entropy_range,
    "information_flow_efficiency": _ife_band,
    "layer_ablation_mse_baseline": _layer_ablation,
    "layer_ablation_mse_ablated": _layer_ablation,
    "layer_ablation_impact": _layer_ablation,
    "layer_ablation_rank": _layer_ablation,
    "intervention_impact_range": _impact_range,
    "table4": _table4,
    "cross_dataset_accuracy": lambda ctx, c: cross_accuracy(ctx),
    "feature_transferability": lambda ctx, c: transferability(ctx),
    "circuit_robustness": lambda ctx, c: robustness(ctx),
    "all_metrics_p": lambda ctx, c: _significance(ctx, c),
    "effect_size_range": lambda ctx, c: _effect_size_range(ctx),
}  # fmt: skip


def measure(claim: Claim, ctx: ReportInputs) -> Measurement:
    """Our measurement for ``claim``; ``comparable=False`` with a reason where none exists.

    A model-level claim measured with one seed in the report's scope is returned with
    ``testable=False`` (its image-level value is kept for display only).
    """
    handler = _MEASURES.get(claim.quantity)
    if claim.timestep is not None and claim.timestep not in ctx.timesteps:
        return Measurement(np.nan, comparable=False,
                           reason=f"t = {claim.timestep} was not probed (probe.timesteps)")  # fmt: skip
    if handler is None:
        return Measurement(np.nan, comparable=False, reason=f"no measurement for quantity {claim.quantity!r}")  # fmt: skip
    try:
        result = handler(ctx, claim)
    except (KeyError, IndexError) as exc:
        result = Measurement(np.nan, comparable=False,
                             reason=f"measurement missing from the pipeline outputs ({exc})")  # fmt: skip
    if is_model_level(claim) and ctx.scope == ALL_SEEDS and len(ctx.seeds) < 2:
        result = dataclasses.replace(result, testable=False)
    return result
