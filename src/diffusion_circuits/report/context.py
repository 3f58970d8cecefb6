"""What the report measures from: the pipeline's tables, and their restriction to one seed.

The *scope* of a :class:`ReportInputs` is ``"all"`` (every training seed: the report's
verdicts) or one seed (``"0"``, ...: what a study with that one model per dataset would
have concluded, for the robustness columns). The unit of inference follows from it:
the training seed with at least two seeds in scope, else the image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from diffusion_circuits.report.verdict import Measurement
from diffusion_circuits.stats.compare import ALPHA
from diffusion_circuits.stats.hierarchical import (
    HIERARCHICAL,
    hierarchical_bootstrap_ci,
    hierarchical_mean_ci,
    ratio,
)
from diffusion_circuits.stats.study import ALL_SEEDS, StudyInputs

__all__ = ["ReportInputs", "for_seed", "inference_rows", "point", "ratio_of_means", "unit_of"]

IMAGE_CI = "percentile bootstrap over images"


@dataclass(frozen=True)
class ReportInputs:
    study: StudyInputs
    inference: pd.DataFrame  # stats stage: data/stats/inference.parquet
    cross_summary: pd.DataFrame
    cka: (
        pd.DataFrame
    )  # per hook and timestep: cka, cka_untrained_*, cka_baseline, cka_above_baseline
    cka_summary: pd.DataFrame  # the same metrics averaged over hooks (scope "timestep" / "all")
    robustness: pd.DataFrame
    n_images: dict[str, int]  # dataset -> images in the dataset
    n_distinct: dict[str, int]  # dataset -> distinct source images in the dataset
    n_probe: dict[str, int]  # dataset -> images probed
    n_probe_distinct: dict[str, int | None]  # dataset -> distinct sources probed (None: unknown)
    attention_heads: list[int]
    attention_width: list[int]
    num_train_timesteps: int
    n_parameters: int
    seed: int = 0
    n_resamples: int = 2000
    confidence: float = 0.95
    alpha: float = ALPHA  # params.stats.alpha: level for exact p values the paper prints
    scope: str = ALL_SEEDS
    paper_directions: dict[str, float] = field(default_factory=dict)  # test id -> paper's sign

    @property
    def seeds(self) -> list:
        return sorted(self.study.circuit_complexity["seed"].unique().tolist())

    @property
    def timesteps(self) -> list:
        """The probed timesteps (those of the circuit-complexity table)."""
        return sorted(self.study.circuit_complexity["timestep"].unique().tolist())


def _only(frame: pd.DataFrame, seed) -> pd.DataFrame:
    return frame[frame["seed"] == seed] if "seed" in frame.columns else frame


def for_seed(ctx: ReportInputs, seed) -> ReportInputs:
    """``ctx`` restricted to one training seed (scope ``str(seed)``)."""
    study = StudyInputs(**{f.name: _only(getattr(ctx.study, f.name), seed)
                           for f in dataclasses.fields(StudyInputs)})  # fmt: skip
    return dataclasses.replace(
        ctx, study=study, cross_summary=_only(ctx.cross_summary, seed), cka=_only(ctx.cka, seed),
        cka_summary=_only(ctx.cka_summary, seed), robustness=_only(ctx.robustness, seed),
        scope=str(seed),
    )  # fmt: skip


def unit_of(ctx: ReportInputs) -> str:
    """``"seed"`` when the scope holds at least two seeds, else ``"image"``."""
    return "seed" if ctx.scope == ALL_SEEDS and len(ctx.seeds) >= 2 else "image"


def inference_rows(ctx: ReportInputs, family: str, metric: str | None = None,
                   timestep=None) -> pd.DataFrame:  # fmt: skip
    """The stats stage's tests of one family at the context's scope and unit."""
    table = ctx.inference
    needed = ["family", "seed_scope", "unit", "metric", "timestep", "estimate", "p_holm"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"data/stats/inference.parquet lacks column(s) {missing}; re-run stats")
    rows = table[(table["family"] == family) & (table["seed_scope"] == ctx.scope)
                 & (table["unit"] == unit_of(ctx))]  # fmt: skip
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    if timestep is not None:
        rows = rows[rows["timestep"] == timestep]
    return rows


def _per_seed(frame: pd.DataFrame, lower: str | None) -> list[np.ndarray]:
    """Per-seed arrays of values, averaged per ``lower`` unit (e.g. image) first."""
    if "seed" not in frame.columns:
        raise KeyError("seed column (needed for seed-level inference)")
    out = []
    for _, part in frame.groupby("seed"):
        values = part.groupby(lower)["value"].mean() if lower else part["value"]
        values = values.to_numpy(dtype=float)
        if np.isfinite(values).any():
            out.append(values[np.isfinite(values)])
    return out


def point(ctx: ReportInputs, frame: pd.DataFrame, *, scale: float = 1.0,
          lower: str | None = "image_id") -> Measurement:  # fmt: skip
    """Mean of ``value`` with a CI over the context's unit.

    Seed unit: mean of per-seed means, hierarchical bootstrap (seeds, then ``lower``
    units). Image unit: values averaged per ``lower`` unit (over seeds' models), then
    a percentile bootstrap over those units (scipy).
    """
    lower = lower if lower in frame.columns else None
    if unit_of(ctx) == "seed":
        seeds = _per_seed(frame, lower)
        if not seeds:
            return Measurement(np.nan, comparable=False, reason="no measurement")
        if np.ptp(np.concatenate(seeds)) == 0:  # no variation: no CI to speak of
            return Measurement(float(seeds[0][0]) * scale, unit="seed")
        est, low, high = hierarchical_mean_ci(seeds, n_resamples=ctx.n_resamples, seed=ctx.seed,
                                              confidence=ctx.confidence)  # fmt: skip
        return Measurement(est * scale, low * scale, high * scale, unit="seed",
                           ci_method=HIERARCHICAL)  # fmt: skip
    values = frame.groupby(lower)["value"].mean() if lower else frame["value"]
    values = values.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Measurement(np.nan, comparable=False, reason="no measurement")
    estimate = float(values.mean()) * scale
    if len(values) < 3 or np.ptp(values) == 0:
        return Measurement(estimate, unit="image")
    result = stats.bootstrap((values,), np.mean, n_resamples=ctx.n_resamples, method="percentile",
                             confidence_level=ctx.confidence,
                             rng=np.random.default_rng(ctx.seed))  # fmt: skip
    ci = result.confidence_interval
    what = IMAGE_CI if lower == "image_id" else f"percentile bootstrap over {lower or 'rows'}"
    return Measurement(estimate, ci.low * scale, ci.high * scale, unit="image", ci_method=what)


def ratio_of_means(ctx: ReportInputs, frame: pd.DataFrame) -> Measurement:
    """natural / synthetic mean of ``value`` with a CI over the context's unit."""
    parts = {d: frame[frame["dataset"] == d] for d in ("synthetic", "natural")}
    if unit_of(ctx) == "seed":
        a, b = (_per_seed(parts[d], "image_id") for d in ("synthetic", "natural"))
        low, high = hierarchical_bootstrap_ci(a, b, statistic=ratio, n_resamples=ctx.n_resamples,
                                              seed=ctx.seed, confidence=ctx.confidence)  # fmt: skip
        value = np.mean([v.mean() for v in b]) / np.mean([v.mean() for v in a])
        return Measurement(float(value), low, high, unit="seed", ci_method=HIERARCHICAL)
    a, b = (parts[d].groupby("image_id")["value"].mean().dropna().to_numpy()
            for d in ("synthetic", "natural"))  # fmt: skip
    result = stats.bootstrap((a, b), lambda x, y, axis: y.mean(axis) / x.mean(axis),
                             n_resamples=ctx.n_resamples, method="percentile", vectorized=True,
                             confidence_level=ctx.confidence,
                             rng=np.random.default_rng(ctx.seed))  # fmt: skip
    ci = result.confidence_interval
    return Measurement(float(b.mean() / a.mean()), ci.low, ci.high, unit="image",
                       ci_method=IMAGE_CI)  # fmt: skip
