"""Our value, with its CI and unit, for each quantity the paper makes claims about.

Every number here is computed from the pipeline's outputs; nothing is typed in. Each
:class:`~diffusion_circuits.report.verdict.Measurement` says its unit, how its CI was
obtained (``ci_method``) and the design behind it (``se``, ``df``, ``n_units``).
Model-level claims are measured at the context's unit and marked untestable when the
report's scope holds one model per dataset. Seed-level intervals are t / Welch /
Fieller on per-seed means (``report/intervals.py``); signed quantities are judged signed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pingouin as pg

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.context import ReportInputs, inference_rows, unit_of
from diffusion_circuits.report.heads import head_importance, n_roles, role_metric
from diffusion_circuits.report.intervals import RANK_CI, point, rank_interval, ratio_of_means
from diffusion_circuits.report.transfer import (
    cross_accuracy,
    raw_transferability,
    robustness,
    transferability,
)
from diffusion_circuits.report.verdict import Measurement, ci_side, is_model_level
from diffusion_circuits.stats.study import ALL_SEEDS, table4_frames
from diffusion_circuits.vocabulary import DEPTH_BAND_OF_GROUP

__all__ = ["Measurement", "ReportInputs", "claim_tests", "measure"]

TABLE4 = ("circuit_complexity", "attention_entropy", "feature_complexity", "intervention_impact")
D_CI = "CI of Cohen's d (pingouin compute_esci)"


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


def _design(row: pd.Series) -> dict:
    """``se``, ``df``, ``n_units`` of a stats-stage test row (Welch at the seed unit)."""
    t = float(row["t"]) if pd.notna(row.get("t")) else np.nan
    se = abs(float(row["estimate"]) / t) if np.isfinite(t) and t != 0 else np.nan
    n = tuple(int(row[c]) for c in ("n_a", "n_b") if pd.notna(row.get(c)))
    return {"se": se, "df": float(row.get("dof", np.nan)), "n_units": n}


def _significance(ctx: ReportInputs, claim: Claim) -> Measurement:
    tests = claim_tests(claim)
    rows = [_test_row(ctx, t) for t in tests]
    p = tuple(float(r["p_holm"]) for r in rows)
    weakest = rows[int(np.nanargmax(p))] if np.isfinite(p).any() else rows[0]
    return Measurement(
        max(p), unit=unit_of(ctx), ci_method="", tests=tests, p_adj=p,
        signs=tuple(float(np.sign(r["estimate"])) for r in rows),
        paper_signs=tuple(ctx.paper_directions.get(t, 0.0) for t in tests), **_design(weakest),
    )  # fmt: skip


def _row_measurement(row: pd.Series, value: float) -> Measurement:
    return Measurement(value, row["ci_low"], row["ci_high"], unit=row["unit"],
                       ci_method=row["ci_method"], **_design(row))  # fmt: skip


def _d_ci(ctx: ReportInputs, row: pd.Series) -> tuple[float, float]:
    """CI of Cohen's d (normal approximation of its SE, pingouin ``compute_esci``)."""
    d, n_a, n_b = float(row["effect_size"]), row["n_a"], row["n_b"]
    if not np.isfinite(d) or n_a < 2 or n_b < 2:
        return np.nan, np.nan
    low, high = pg.compute_esci(stat=d, nx=int(n_a), ny=int(n_b), eftype="cohen",
                                confidence=ctx.confidence, decimals=6)  # fmt: skip
    return float(low), float(high)


def _effect_size(ctx: ReportInputs, row: pd.Series, test: str) -> Measurement:
    low, high = _d_ci(ctx, row)
    return Measurement(
        float(row["effect_size"]), low, high, unit=row["unit"], ci_method=D_CI,
        direction_ci=(row["ci_low"], row["ci_high"]),
        paper_signs=(ctx.paper_directions.get(test, 0.0),),
        n_units=(int(row["n_a"]), int(row["n_b"])),
    )  # fmt: skip


def _table4(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.statistic == "p_value":
        return _significance(ctx, claim)
    if claim.statistic == "mean":
        frame = table4_frames(ctx.study)[claim.target]
        return point(ctx, frame[frame["dataset"] == claim.dataset])
    row = _test_row(ctx, claim_tests(claim)[0])
    if claim.statistic == "difference":
        return _row_measurement(row, row["estimate"])
    return _effect_size(ctx, row, claim_tests(claim)[0])


def _cc_ratio(ctx: ReportInputs, claim: Claim) -> Measurement:
    if claim.statistic == "p_value":
        return _significance(ctx, claim)
    frame = ctx.study.circuit_complexity
    if claim.timestep is not None:
        frame = frame[frame["timestep"] == claim.timestep]
    m = ratio_of_means(ctx, frame)
    if claim.quantity == "circuit_complexity_increase":
        return dataclasses.replace(m, value=100 * (m.value - 1), ci_low=100 * (m.ci_low - 1),
                                   ci_high=100 * (m.ci_high - 1), se=100 * m.se)  # fmt: skip
    return m


def _paper_sign(ctx: ReportInputs, metric: str) -> float:
    """The paper's direction of a divergence: its Table 4 entropy difference (natural -
    synthetic); specialisation moves the other way (S = 1 - H / H_max on one grid)."""
    entropy = ctx.paper_directions.get("table4 attention_entropy", 0.0) or 1.0
    return entropy if metric == "entropy" else -entropy


def _divergence(ctx: ReportInputs, claim: Claim) -> Measurement:
    """The signed divergence (natural - synthetic) with its seed-level Welch CI, never |x|.

    A range end (the abstract's "from 0.015 to 0.166") is the timestep whose value, taken
    in the paper's direction, is smallest / largest, with that timestep's CI.
    """
    metric = claim.quantity.split("_")[0]
    sign = _paper_sign(ctx, metric)
    if claim.statistic in ("range_low", "range_high"):
        rows = inference_rows(ctx, metric, metric)
        oriented = sign * rows["estimate"]
        row = rows.loc[oriented.idxmin() if claim.statistic == "range_low" else oriented.idxmax()]
        m = _row_measurement(row, row["estimate"])
        return dataclasses.replace(m, paper_value=sign * claim.value,
                                   ci_method=f"{m.ci_method}; CI of t = {int(row['timestep'])}")  # fmt: skip
    row = _test_row(ctx, claim_tests(claim)[0])
    return dataclasses.replace(_row_measurement(row, row["estimate"]),
                               paper_value=sign * claim.value)  # fmt: skip


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
        return _rank(ctx, rows.pivot_table(index="image_id", columns="target", values="value"),
                     claim.target)  # fmt: skip
    scale = 100.0 if claim.statistic == "percent" else 1.0
    return point(ctx, rows[rows["target"] == claim.target], scale=scale)


def _rank(ctx: ReportInputs, per_image: pd.DataFrame, target: str) -> Measurement:
    """Rank of ``target`` among the columns (1 = largest) with a bootstrap rank interval."""
    rank, low, high = rank_interval(per_image, target, n_resamples=ctx.n_resamples,
                                    seed=ctx.seed, confidence=ctx.confidence)  # fmt: skip
    return Measurement(rank, low, high, unit="image", ci_method=RANK_CI,
                       n_units=(len(per_image),))  # fmt: skip


def _bands(flow: pd.DataFrame) -> np.ndarray:
    """The paper's depth band (``early_layers`` ...) of each information-flow pair, from
    the layer group of its downstream hook (the analysis stage's ``layer_group``)."""
    return (flow["layer_group"].map(DEPTH_BAND_OF_GROUP) + "_layers").to_numpy()


def _ife_band(ctx: ReportInputs, claim: Claim) -> Measurement:
    flow = ctx.study.information_flow
    means = flow[_bands(flow) == claim.target].groupby("timestep")["value"].mean()
    return Measurement(means.min() if claim.statistic == "range_low" else means.max())


def _ife_order(ctx: ReportInputs, claim: Claim) -> Measurement:
    """Rank of a band by its chance-adjusted IFE (mean over pairs, timesteps, seeds)."""
    flow = ctx.study.information_flow
    flow = flow.assign(band=_bands(flow))
    per_image = flow.pivot_table(index="image_id", columns="band", values="value")
    if claim.target not in per_image.columns:
        return Measurement(np.nan, comparable=False, reason=f"no {claim.target} pairs")
    return _rank(ctx, per_image, claim.target)


def _extreme(ctx: ReportInputs, rows: pd.DataFrame, items: list[str], claim: Claim,
             scale: float = 1.0) -> Measurement:  # fmt: skip
    """The smallest / largest item mean of each model, with a CI over the context's unit.

    A range end ("from 23.5% to 153.8%") is a property of one model: per seed, the extreme
    over ``items`` of the item means; at the seed unit, t over those per-seed extremes.
    """
    means = rows.groupby(["seed", *items])["value"].mean()
    by_seed = means.groupby(level="seed")
    extremes = by_seed.min() if claim.statistic == "range_low" else by_seed.max()
    return point(ctx, extremes.rename("value").reset_index(), scale=scale)


def _impact_range(ctx: ReportInputs, claim: Claim) -> Measurement:
    return _extreme(ctx, _layer_rows(ctx, claim, "impact"), ["target"], claim, scale=100.0)


def _entropy_range(ctx: ReportInputs, claim: Claim) -> Measurement:
    attention = ctx.study.attention
    rows = attention[(attention["metric"] == "entropy") & (attention["dataset"] == "synthetic")]
    return _extreme(ctx, rows, ["hook", "head"], claim)


def _effect_size_range(ctx: ReportInputs) -> Measurement:
    """The smallest Table 4 effect in the paper's direction, with a CI from the d CIs.

    "Medium to large effects" speaks of the paper's effects: each d is taken in the
    paper's direction (its sign times the paper's), the smallest is the value, and the
    interval runs from the smallest lower to the smallest upper bound of the d CIs.
    """
    signed, lows, highs, reversed_ = [], [], [], []
    for _, row in inference_rows(ctx, "table4").iterrows():
        paper = ctx.paper_directions.get(f"table4 {row['metric']}", 0.0) or 1.0
        low, high = sorted(paper * np.array(_d_ci(ctx, row)))
        signed.append(paper * float(row["effect_size"]))
        lows.append(low)
        highs.append(high)
        if ci_side(row["ci_low"], row["ci_high"], 0.0) == -paper:
            reversed_.append(str(row["metric"]))
    reason = "smallest Table 4 d taken in the paper's direction" + (
        f"; reversed: {', '.join(reversed_)}" if reversed_ else "")  # fmt: skip
    return Measurement(min(signed), min(lows), min(highs), unit=unit_of(ctx), ci_method=D_CI,
                       reason=reason)  # fmt: skip


def _power(ctx: ReportInputs, paper: Mapping[str, float]) -> Measurement:
    """Prospective power of our design at the paper's smallest Table 4 |d| (never post hoc)."""
    rows = inference_rows(ctx, "table4")
    n_a, n_b = int(rows["n_a"].min()), int(rows["n_b"].min())
    sizes = [v for k, v in paper.items() if k.startswith("d table4")]
    unit = "seeds" if unit_of(ctx) == "seed" else "images"
    if not sizes or min(n_a, n_b) < 2:
        return Measurement(np.nan, reason="no paper effect size or fewer than 2 units")
    d = min(sizes)
    power = float(pg.power_ttest2n(nx=n_a, ny=n_b, d=d, alpha=ctx.alpha))
    needed = pg.power_ttest(d=d, power=0.95, alpha=ctx.alpha)
    reason = (f"prospective, at the paper's smallest Table 4 effect |d| = {d:g}: power "
              f"{power:.2f} with {n_a} vs {n_b} {unit}; {int(np.ceil(needed))} {unit} per "
              "dataset give 0.95 (power at the observed effect is not reported: it carries "
              "no information beyond p)")  # fmt: skip
    return Measurement(power, unit=unit_of(ctx), reason=reason)


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


def _paper_effect(ctx: ReportInputs, ours: Measurement, paper: Mapping[str, float]) -> float:
    """The paper's effect for the weakest test a p-value claim refers to, in its units.

    A ratio (or percent change) is turned into a difference with our reference mean.
    """
    p = np.asarray(ours.p_adj, dtype=float)
    test = ours.tests[int(np.nanargmax(p))] if np.isfinite(p).any() else ours.tests[0]
    if f"effect {test}" in paper:
        return paper[f"effect {test}"]
    if f"ratio {test}" in paper:
        return paper[f"ratio {test}"] * float(_test_row(ctx, test)["mean_a"])
    return np.nan


_MEASURES: dict[str, Callable[[ReportInputs, Claim], Measurement]] = {
    "sample_size": _sample_size,
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
    "n_head_roles": lambda ctx, c: n_roles(ctx),
    "role_entropy": lambda ctx, c: role_metric(ctx, c, "entropy"),
    "head_specialisation": lambda ctx, c: role_metric(ctx, c, "specialisation"),
    "head_importance": head_importance,
    "head_entropy_range": _entropy_range,
    "information_flow_efficiency": _ife_band,
    "information_flow_order": _ife_order,
    "layer_ablation_mse_baseline": _layer_ablation,
    "layer_ablation_mse_ablated": _layer_ablation,
    "layer_ablation_impact": _layer_ablation,
    "layer_ablation_rank": _layer_ablation,
    "intervention_impact_range": _impact_range,
    "table4": _table4,
    "cross_dataset_accuracy": lambda ctx, c: cross_accuracy(ctx),
    "feature_transferability": lambda ctx, c: transferability(ctx),
    "feature_transferability_raw": lambda ctx, c: raw_transferability(ctx),
    "circuit_robustness": lambda ctx, c: robustness(ctx),
    "all_metrics_p": lambda ctx, c: _significance(ctx, c),
    "effect_size_range": lambda ctx, c: _effect_size_range(ctx),
}  # fmt: skip


def measure(claim: Claim, ctx: ReportInputs, paper: Mapping[str, float] | None = None) -> Measurement:  # fmt: skip
    """Our measurement for ``claim``; ``comparable=False`` with a reason where none exists.

    ``paper``: the paper's effects by test (``report/build.py::paper_effects``), for the
    prospective power of a power claim. A model-level claim measured with one seed in the
    report's scope is returned with ``testable=False`` (its image-level value is kept for
    display only).
    """
    handler = _MEASURES.get(claim.quantity)
    if claim.quantity == "power":
        handler = lambda ctx, c: _power(ctx, paper or {})  # noqa: E731
    if claim.timestep is not None and claim.timestep not in ctx.timesteps:
        return Measurement(np.nan, comparable=False,
                           reason=f"t = {claim.timestep} was not probed (probe.timesteps)")  # fmt: skip
    if handler is None:
        return Measurement(np.nan, comparable=False, reason=f"no measurement for quantity {claim.quantity!r}")  # fmt: skip
    try:
        result = handler(ctx, claim)
        if result.tests and paper:
            result = dataclasses.replace(result, paper_effect=_paper_effect(ctx, result, paper))
    except (KeyError, IndexError) as exc:
        result = Measurement(np.nan, comparable=False,
                             reason=f"measurement missing from the pipeline outputs ({exc})")  # fmt: skip
    if is_model_level(claim) and ctx.scope == ALL_SEEDS and len(ctx.seeds) < 2:
        result = dataclasses.replace(result, testable=False)
    return result
