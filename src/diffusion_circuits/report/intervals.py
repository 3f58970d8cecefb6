"""Means, ratios and ranks with intervals over the context's unit, and their design.

Seed unit (two or more seeds in scope): the crossed seeds x images model of
:mod:`~diffusion_circuits.stats.seed_level` (the same probe images serve every seed:
seed and image random effects, Satterthwaite df) for a mean, and Fieller on two such
means for a ratio; rows without an image column (per-head values, one value per model)
use Student t on the per-seed means. Image unit (a claim about one model, or one seed in
scope): the image bootstrap of ``report/context.py``, labelled as such. Each
:class:`Measurement` carries ``se``, ``df`` and ``n_units`` so an inconclusive row can
state what the design detects.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from diffusion_circuits.report import context
from diffusion_circuits.report.context import ReportInputs, unit_of
from diffusion_circuits.report.verdict import Measurement
from diffusion_circuits.stats.seed_level import crossed_mean, crossed_ratio, crossed_table
from diffusion_circuits.vocabulary import DATASETS

__all__ = [
    "RANK_CI",
    "SEED_CROSSED",
    "SEED_RATIO",
    "SEED_T",
    "seed_table",
    "point",
    "rank_interval",
    "ratio_of_means",
    "se_of",
]

SEED_T = "t interval on per-seed means (seed = unit)"
SEED_CROSSED = "crossed seeds x images interval (seed and image random effects; seed = unit)"
SEED_RATIO = "Fieller interval on crossed seeds x images means, Satterthwaite df (seed = unit)"
RANK_CI = "rank interval: percentile bootstrap over images (one model: images averaged over seeds)"


def se_of(low: float, high: float, df: float, confidence: float = 0.95) -> float:
    """The standard error a symmetric t interval of this width implies."""
    if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(df)) or df <= 0:
        return np.nan
    return float((high - low) / (2 * stats.t.ppf((1 + confidence) / 2, df)))


def seed_table(frame: pd.DataFrame, lower: str | None = "image_id") -> np.ndarray:
    """Seeds x ``lower`` units table of ``value`` (crossed), or one column of seed means."""
    if "seed" not in frame.columns:
        raise KeyError("seed column (needed for seed-level inference)")
    frame = frame[np.isfinite(frame["value"])]
    if lower in frame.columns:
        return crossed_table(frame, "seed", lower)
    return frame.groupby("seed")["value"].mean().sort_index().to_numpy(dtype=float)[:, None]


def _with_images(m: Measurement, frame: pd.DataFrame, ctx: ReportInputs) -> Measurement:
    n = int(frame["image_id"].nunique()) if "image_id" in frame.columns else len(frame)
    return dataclasses.replace(m, df=float(max(n - 1, 0)), n_units=(n,),
                               se=se_of(m.ci_low, m.ci_high, n - 1, ctx.confidence))  # fmt: skip


def _seed_method(table: np.ndarray) -> str:
    return SEED_CROSSED if table.shape[1] > 1 else SEED_T


def point(ctx: ReportInputs, frame: pd.DataFrame, *, scale: float = 1.0) -> Measurement:
    """Mean of ``value`` with a CI over the context's unit (crossed seeds x images, or images).

    Fewer than two seeds with values at the seed unit: the value without a CI (the
    verdict is then inconclusive); values identical in every seed and image: a
    zero-width interval.
    """
    if unit_of(ctx) != "seed":
        return _with_images(context.point(ctx, frame, scale=scale), frame, ctx)
    table = seed_table(frame)
    if table.size == 0:
        return Measurement(np.nan, comparable=False, reason="no measurement")
    if table.shape[0] < 2:
        return Measurement(float(table.mean()) * scale, unit="seed", n_units=(1,),
                           reason="values from one seed only: no seed-level interval")  # fmt: skip
    row = crossed_mean(table, ctx.confidence)
    method = context.NO_SPREAD if row["se"] == 0 else _seed_method(table)
    return Measurement(row["estimate"] * scale, row["ci_low"] * scale, row["ci_high"] * scale,
                       unit="seed", ci_method=method if np.isfinite(row["ci_low"]) else "",
                       se=row["se"] * scale, df=row["df"], n_units=(row["n"],))  # fmt: skip


def ratio_of_means(ctx: ReportInputs, frame: pd.DataFrame) -> Measurement:
    """natural / synthetic mean of ``value``: Fieller on crossed means, or the image bootstrap."""
    parts = {d: frame[frame["dataset"] == d] for d in DATASETS}
    if unit_of(ctx) != "seed":
        m = context.ratio_of_means(ctx, frame)
        n = tuple(int(p["image_id"].nunique()) for p in parts.values())
        df = float(sum(n) - 2)
        return dataclasses.replace(m, df=df, n_units=n, se=se_of(m.ci_low, m.ci_high, df, ctx.confidence))  # fmt: skip
    a, b = (seed_table(parts[d]) for d in DATASETS)
    row = crossed_ratio(a, b, ctx.confidence)
    return Measurement(row["estimate"], row["ci_low"], row["ci_high"], unit="seed",
                       ci_method=SEED_RATIO, se=row["se"], df=row["df"],
                       n_units=(row["n_a"], row["n_b"]))  # fmt: skip


def rank_interval(
    per_image: pd.DataFrame, target: str, *, n_resamples: int, seed: int, confidence: float
) -> tuple[float, float, float]:
    """Rank of ``target`` (1 = largest mean) among the columns, with a bootstrap interval.

    ``per_image``: one row per image, one column per ranked item (images shared by every
    item, so rows are resampled whole: the paired design of one model's images).
    """
    values = per_image.dropna().to_numpy(dtype=float)
    column = list(per_image.columns).index(target)

    def rank(matrix: np.ndarray) -> np.ndarray:
        means = matrix.mean(axis=-2)
        return (means > means[..., [column]]).sum(axis=-1) + 1.0

    observed = float(rank(values))
    if len(values) < 3:
        return observed, np.nan, np.nan
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_resamples, len(values)))
    ranks = rank(values[draws])
    tail = (1 - confidence) / 2
    low, high = np.quantile(ranks, [tail, 1 - tail], method="inverted_cdf")
    return observed, float(low), float(high)
