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

from diffusion_circuits.layout import DATASETS
from diffusion_circuits.report.verdict import Measurement
from diffusion_circuits.stats.compare import ALPHA
from diffusion_circuits.stats.study import ALL_SEEDS, StudyInputs

__all__ = [
    "IMAGE_CI",
    "NO_SPREAD",
    "ReportInputs",
    "for_seed",
    "inference_rows",
    "point",
    "ratio_of_means",
    "unit_of",
]

IMAGE_CI = "percentile bootstrap over images"
NO_SPREAD = "no spread: the same value in every unit (zero-width interval)"


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
    global_threshold: float  # analyze.global_threshold: the null of a 'global' head
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


def point(ctx: ReportInputs, frame: pd.DataFrame, *, scale: float = 1.0,
          lower: str | None = "image_id") -> Measurement:  # fmt: skip
    """Mean of ``value`` at the image unit (a claim about one model, or one seed in scope).

    Values averaged per ``lower`` unit (over the seeds' models), then a percentile
    bootstrap over those units (scipy). The seed unit is
    :func:`diffusion_circuits.report.intervals.point`'s.
    """
    lower = lower if lower in frame.columns else None
    values = frame.groupby(lower)["value"].mean() if lower else frame["value"]
    values = values.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Measurement(np.nan, comparable=False, reason="no measurement")
    estimate = float(values.mean()) * scale
    if np.ptp(values) == 0:  # every image the same: a zero-width interval
        return Measurement(estimate, estimate, estimate, unit="image", ci_method=NO_SPREAD)
    if len(values) < 3:
        return Measurement(estimate, unit="image")
    result = stats.bootstrap((values,), np.mean, n_resamples=ctx.n_resamples, method="percentile",
                             confidence_level=ctx.confidence,
                             rng=np.random.default_rng(ctx.seed))  # fmt: skip
    ci = result.confidence_interval
    what = IMAGE_CI if lower == "image_id" else f"percentile bootstrap over {lower or 'rows'}"
    return Measurement(estimate, ci.low * scale, ci.high * scale, unit="image", ci_method=what)


def ratio_of_means(ctx: ReportInputs, frame: pd.DataFrame) -> Measurement:
    """natural / synthetic mean of ``value`` at the image unit (percentile bootstrap)."""
    parts = {d: frame[frame["dataset"] == d] for d in DATASETS}
    a, b = (parts[d].groupby("image_id")["value"].mean().dropna().to_numpy()
            for d in DATASETS)  # fmt: skip
    result = stats.bootstrap((a, b), lambda x, y, axis: y.mean(axis) / x.mean(axis),
                             n_resamples=ctx.n_resamples, method="percentile", vectorized=True,
                             confidence_level=ctx.confidence,
                             rng=np.random.default_rng(ctx.seed))  # fmt: skip
    ci = result.confidence_interval
    return Measurement(float(b.mean() / a.mean()), ci.low, ci.high, unit="image",
                       ci_method=IMAGE_CI)  # fmt: skip
