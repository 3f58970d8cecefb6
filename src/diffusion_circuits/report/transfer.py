"""Cross-dataset measurements against their controls: transferability and circuit robustness.

Both are quantities of a pair of trained models (one per dataset and seed). Their intervals
are over the statistical unit only (docs/METRICS.md): the cross_dataset stage's image
bootstrap for one seed's CKA (a claim about one pair of models), and, with several seeds,
a t interval over the per-seed values (a percentile bootstrap over 3 seeds is about
[min, max] and under-covers) which, for CKA, adds the image error every seed shares
(:func:`~diffusion_circuits.stats.seed_level.t_interval_with_shared_error`, from the
per-seed bootstrap intervals). No interval is ever taken over hooks, timesteps or cells.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from diffusion_circuits.report.context import NO_SPREAD, ReportInputs, unit_of
from diffusion_circuits.report.verdict import Measurement
from diffusion_circuits.stats.seed_level import t_interval, t_interval_with_shared_error
from diffusion_circuits.stats.study import all_components

__all__ = [
    "CKA_CI",
    "SEED_AND_IMAGE_CI",
    "SEED_CI",
    "cross_accuracy",
    "per_seed_mean",
    "raw_transferability",
    "robustness",
    "transferability",
]

SEED_CI = "t interval over seeds (one value per trained pair)"
SEED_AND_IMAGE_CI = ("t interval over seeds with the shared image error added (per-seed "
                     "image bootstrap; one value per trained pair)")  # fmt: skip
CKA_CI = "basic bootstrap over images (CKA recomputed per resample, cross_dataset stage)"


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def per_seed_mean(ctx: ReportInputs, values: pd.Series, *, scale: float = 100.0,
                  ci: tuple[float, float] | None = None, ci_method: str = "",
                  image_se: pd.Series | None = None) -> Measurement:  # fmt: skip
    """Mean over seeds of per-seed values (index: seed), with a CI over the unit.

    Seed unit (two or more seeds in scope): Student t over the per-seed values, with the
    shared image error added when ``image_se`` (per seed, same index) is given. Otherwise
    ``ci`` (an interval over images for the one seed, or None: no CI).
    """
    values = values.dropna()
    if values.empty:
        return Measurement(np.nan, comparable=False, reason="no measurement")
    estimate = float(values.mean()) * scale
    if unit_of(ctx) == "seed":
        if np.ptp(values.to_numpy()) == 0:  # the same in every seed: zero-width interval
            return Measurement(estimate, estimate, estimate, unit="seed", ci_method=NO_SPREAD,
                               n_units=(len(values),))  # fmt: skip
        if image_se is None:
            row, method = t_interval(values.to_numpy(), ctx.confidence), SEED_CI
        else:
            shared = image_se.reindex(values.index).to_numpy()
            row = t_interval_with_shared_error(values.to_numpy(), shared, ctx.confidence)
            method = SEED_AND_IMAGE_CI
        return Measurement(estimate, row["ci_low"] * scale, row["ci_high"] * scale, unit="seed",
                           ci_method=method, se=row["se"] * scale, df=row["df"],
                           n_units=(row["n"],))  # fmt: skip
    if ci is None or len(values) != 1:
        return Measurement(estimate, unit="image")
    return Measurement(estimate, ci[0] * scale, ci[1] * scale, unit="image", ci_method=ci_method)


def _by_seed(frame: pd.DataFrame, column: str = "value") -> pd.Series:
    return (
        frame.groupby("seed")[column].mean() if "seed" in frame.columns else frame[column].iloc[:1]
    )


def _bootstrap_se(ctx: ReportInputs, rows: pd.DataFrame) -> pd.Series:
    """Per-seed image standard error read off the stage's bootstrap interval (its width
    over twice the normal quantile of the interval's level)."""
    z = float(stats.norm.ppf((1 + ctx.confidence) / 2))
    return _by_seed(rows.assign(se=(rows["ci_high"] - rows["ci_low"]) / (2 * z)), "se")


def transferability(ctx: ReportInputs) -> Measurement:
    """Feature transferability = ``cka_above_baseline`` (``cka_summary``, scope "all"), in %.

    The raw CKA and the untrained-network baseline are given in ``reason``; with one seed
    the interval is the stage's image bootstrap of the above-baseline value.
    """
    summary = ctx.cka_summary
    _require(summary, ["scope", "metric", "value", "ci_low", "ci_high"], "cka_summary table")
    rows = summary[summary["scope"] == "all"]
    above = rows[rows["metric"] == "cka_above_baseline"]
    if above.empty:
        return Measurement(np.nan, comparable=False,
                           reason="cka_summary has no cka_above_baseline row (scope all)")  # fmt: skip
    first = above.iloc[0]
    ours = per_seed_mean(ctx, _by_seed(above), ci=(first["ci_low"], first["ci_high"]),
                         ci_method=CKA_CI, image_se=_bootstrap_se(ctx, above))  # fmt: skip
    raw, base = (_by_seed(rows[rows["metric"] == m]).mean() for m in ("cka", "cka_baseline"))
    reason = (f"CKA above the untrained-network baseline: raw cka {100 * raw:.1f}% minus "
              f"baseline {100 * base:.1f}% (averaged over hooks and timesteps, "
              f"{above['seed'].nunique() if 'seed' in above.columns else 1} seed(s))")  # fmt: skip
    return dataclasses.replace(ours, reason=ours.reason or reason)


def raw_transferability(ctx: ReportInputs) -> Measurement:
    """Raw linear CKA of the two trained models (``cka_summary``, scope "all"), in %.

    Shown beside :func:`transferability`: the paper's 71.8% may be either, and raw CKA
    is high even between a trained and an untrained network (the baseline in ``reason``).
    """
    summary = ctx.cka_summary
    _require(summary, ["scope", "metric", "value", "ci_low", "ci_high"], "cka_summary table")
    rows = summary[summary["scope"] == "all"]
    raw = rows[rows["metric"] == "cka"]
    if raw.empty:
        return Measurement(np.nan, comparable=False, reason="cka_summary has no cka row (scope all)")  # fmt: skip
    first = raw.iloc[0]
    ours = per_seed_mean(ctx, _by_seed(raw), ci=(first["ci_low"], first["ci_high"]),
                         ci_method=CKA_CI, image_se=_bootstrap_se(ctx, raw))  # fmt: skip
    base = _by_seed(rows[rows["metric"] == "cka_baseline"]).mean()
    reason = (f"raw linear CKA of the trained pair; the untrained-network baseline is "
              f"{100 * base:.1f}%, so {ours.value - 100 * base:.1f} points are above it "
              "(feature_transfer)")  # fmt: skip
    return dataclasses.replace(ours, reason=ours.reason or reason)


def cross_accuracy(ctx: ReportInputs) -> Measurement:
    """Cross-dataset accuracy ratio in %: mean over (model, timestep) cells per seed.

    The stage's image-bootstrap intervals are per cell; an interval of their mean would
    need the images, so only the seed unit gives a CI (never one over cells).
    """
    table = ctx.cross_summary
    _require(table, ["value"], "cross-dataset summary table")
    ours = per_seed_mean(ctx, _by_seed(table))
    if ours.unit == "seed" or not ours.comparable:
        return ours
    return Measurement(ours.value, unit=ours.unit,
                       reason="no interval: the per-(model, timestep) image intervals are "
                       "not pooled, and none is taken over cells")  # fmt: skip


def robustness(ctx: ReportInputs) -> Measurement:
    """Circuit robustness: top-k overlap across datasets (all components), in %, with chance.

    One value per seed (mean over timesteps); a set overlap has no image-level interval,
    so only the seed unit gives a CI. ``reason`` gives the chance overlap beside it.
    """
    table = ctx.robustness
    _require(table, ["comparison", "value", "chance"], "robustness table")
    rows = all_components(table[table["comparison"] == "across_datasets"])
    ours = per_seed_mean(ctx, _by_seed(rows))
    if not ours.comparable:
        return ours
    chance = 100 * _by_seed(rows, "chance").mean()
    typed = ""
    if "chance_by_type" in rows.columns:  # tables before 2026-12-03 lack it
        by_type = 100 * _by_seed(rows, "chance_by_type").mean()
        typed = (f"; type-aware chance (random sets with the same numbers of ResNets and "
                 f"heads) {by_type:.1f}%, overlap minus it {ours.value - by_type:.1f} points")  # fmt: skip
    reason = (f"top-k overlap of all components across datasets; chance (two random k-subsets) "
              f"{chance:.1f}%, overlap minus chance {ours.value - chance:.1f} points{typed}"
              + ("" if ours.unit == "seed" else "; no interval: a set overlap per timestep "
                 "has no image-level interval"))  # fmt: skip
    return dataclasses.replace(ours, reason=reason)
