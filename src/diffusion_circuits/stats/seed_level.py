"""Intervals with their nominal coverage at a handful of units (t, Welch, Fieller) and power.

With 3 training seeds per dataset a percentile bootstrap over seeds is about
[min, max] of the seed means and covers 69-90% at nominal 95%. The intervals here are
the textbook small-sample ones on the per-seed means (scipy.stats), and every CI comes
from the same model as its p value, so "CI excludes the null" and "p < alpha" agree:

- one group's mean: Student t on the seed means, df = S - 1;
- a difference of two groups: Welch's t, Welch-Satterthwaite df;
- a ratio of two group means: Fieller's interval with the Welch df, the set of ratios
  r for which ``b - r a`` is not significant; at r = 1 it *is* the Welch test.

The design is crossed: the same probe images serve every seed of a dataset, so the
spread of seed means holds the training-run variance but not the variance of drawing
these images. :func:`crossed_mean` adds it back with the two-way random-effects
variance of a grand mean (method of moments: seed, image and residual mean squares;
Satterthwaite df), so an interval is about the dataset's images and training runs, not
only these images; :func:`crossed_difference` and :func:`crossed_ratio` combine two
datasets' crossed means (Welch-Satterthwaite df; Fieller). With one value per seed they
reduce to the t / Welch / Fieller intervals above (docs/VERDICTS.md).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pingouin as pg
from scipy import stats

__all__ = [
    "POWER",
    "crossed_difference",
    "crossed_mean",
    "crossed_ratio",
    "crossed_table",
    "detectable_d",
    "detectable_effect",
    "fieller_interval",
    "t_interval",
    "t_interval_with_shared_error",
    "units_needed",
    "welch_interval",
]

POWER = 0.8  # the power at which the design's smallest detectable effect is stated


def _finite(values: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of ``values`` (one per unit) with its Student t interval.

    Returns ``estimate, ci_low, ci_high, se, df, n``; NaN bounds with fewer than two
    units, the estimate itself as both bounds when the values do not vary.

    Examples
    --------
    >>> row = t_interval([1.0, 2.0, 3.0])
    >>> row["estimate"], round(row["ci_low"], 3), round(row["ci_high"], 3), row["df"]
    (2.0, -0.484, 4.484, 2.0)
    """
    values = _finite(values)
    n = len(values)
    row = dict(estimate=float(values.mean()) if n else np.nan, ci_low=np.nan, ci_high=np.nan,
               se=np.nan, df=float(n - 1) if n else np.nan, n=n)  # fmt: skip
    if n < 2:
        return row
    se = float(values.std(ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * se
    row.update(ci_low=row["estimate"] - half, ci_high=row["estimate"] + half, se=se)
    return row


def t_interval_with_shared_error(
    values: Sequence[float], image_se: Sequence[float], confidence: float = 0.95
) -> dict:
    """Mean over seeds of a per-seed statistic of shared images, with the image error added.

    For a statistic of a whole image set (linear CKA of two models' features), computed
    once per seed on the same images with a per-seed image standard error ``image_se``
    (e.g. from the stage's bootstrap over images). The spread of ``values`` holds the
    training-run variance but not the error of drawing these images, which every seed
    shares; it is added in full: ``se^2 = s^2 / S + mean(image_se^2)`` (the shared part
    of the image error is at most the mean per-seed one, so the interval errs wide), with
    the Satterthwaite df of the seed term (the bootstrap term's df taken as infinite).

    Returns ``estimate, ci_low, ci_high, se, df, n`` as :func:`t_interval`.

    Examples
    --------
    >>> row = t_interval_with_shared_error([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    >>> round(row["ci_low"], 3), row["df"]  # no image error: the t interval
    (-0.484, 2.0)
    """
    values, image_se = np.asarray(values, dtype=float), np.asarray(image_se, dtype=float)
    keep = np.isfinite(values) & np.isfinite(image_se)
    values, image_se = values[keep], image_se[keep]
    row = t_interval(values, confidence)
    if row["n"] < 2:
        return row
    seed_part = float(values.var(ddof=1) / len(values))
    image_part = float(np.mean(image_se**2))
    se = math.sqrt(seed_part + image_part)
    if se == 0:
        return {**row, "ci_low": row["estimate"], "ci_high": row["estimate"], "se": 0.0}
    df = (
        (seed_part + image_part) ** 2 / (seed_part**2 / (len(values) - 1))
        if seed_part > 0
        else np.inf
    )
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    return {**row, "ci_low": row["estimate"] - half, "ci_high": row["estimate"] + half,
            "se": se, "df": float(df)}  # fmt: skip


def _welch_parts(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    denominator = va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)
    df = (va + vb) ** 2 / denominator if denominator > 0 else float(len(a) + len(b) - 2)
    return float(va), float(vb), float(df)


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """``mean(b) - mean(a)`` with Welch's interval, t, df and two-sided p (scipy).

    Returns ``estimate, ci_low, ci_high, se, df, t, p_value, n_a, n_b``; NaN tests with
    fewer than two units in a group.

    Examples
    --------
    >>> row = welch_interval([0.0, 1.0, 2.0], [2.0, 3.0, 4.0])
    >>> row["estimate"], round(row["ci_low"], 3), round(row["ci_high"], 3), round(row["p_value"], 4)
    (2.0, -0.267, 4.267, 0.0705)
    """
    a, b = _finite(a), _finite(b)
    row = dict(estimate=float(b.mean() - a.mean()) if len(a) and len(b) else np.nan,
               ci_low=np.nan, ci_high=np.nan, se=np.nan, df=np.nan, t=np.nan, p_value=np.nan,
               n_a=len(a), n_b=len(b))  # fmt: skip
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return row
    with warnings.catch_warnings():
        # One constant group trips scipy's precision-loss warning; Welch's t is still valid.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        test = stats.ttest_ind(b, a, equal_var=False)
    ci = test.confidence_interval(confidence_level=confidence)
    va, vb, _ = _welch_parts(a, b)
    row.update(ci_low=float(ci.low), ci_high=float(ci.high), se=math.sqrt(va + vb),
               df=float(test.df), t=float(test.statistic), p_value=float(test.pvalue))  # fmt: skip
    return row


def fieller_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """``mean(b) / mean(a)`` with Fieller's interval at the Welch df (the test of r = 1).

    The interval is ``{r : (b - r a)^2 <= t^2 (v_b + r^2 v_a)}`` with ``v`` the squared
    standard errors of the two means and t the Welch quantile; it excludes 1 exactly when
    Welch's test of the difference is significant. NaN bounds when the denominator's mean
    is not distinguishable from 0 (the set is then unbounded).

    Returns ``estimate, ci_low, ci_high, df, n_a, n_b``.

    Examples
    --------
    >>> row = fieller_interval([10.0, 11.0, 12.0], [12.0, 13.0, 14.0])
    >>> round(row["estimate"], 4), round(row["ci_low"], 3), round(row["ci_high"], 3)
    (1.1818, 0.978, 1.437)
    """
    a, b = _finite(a), _finite(b)
    row = dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, df=np.nan, n_a=len(a),
               n_b=len(b))  # fmt: skip
    if len(a) and len(b) and a.mean() != 0:
        row["estimate"] = float(b.mean() / a.mean())
    if len(a) < 2 or len(b) < 2:
        return row
    va, vb, df = _welch_parts(a, b)
    low, high = _fieller(float(a.mean()), float(b.mean()), va, vb, df, confidence)
    row.update(ci_low=low, ci_high=high, df=df)
    return row


def _fieller(ma: float, mb: float, va: float, vb: float, df: float,
             confidence: float) -> tuple[float, float]:  # fmt: skip
    """Fieller's bounds of ``mb / ma`` given the squared SEs; NaN when unbounded."""
    t = float(stats.t.ppf((1 + confidence) / 2, df))
    quad = ma**2 - t**2 * va
    if quad <= 0:
        return np.nan, np.nan
    disc = (ma * mb) ** 2 - quad * (mb**2 - t**2 * vb)
    root = math.sqrt(max(disc, 0.0))
    return (ma * mb - root) / quad, (ma * mb + root) / quad


def crossed_table(frame, seed: str = "seed", unit: str = "image_id",
                  value: str = "value") -> np.ndarray:  # fmt: skip
    """Seeds x units matrix of mean ``value`` (rows sorted by seed), complete units only.

    ``frame``: a long table with ``seed``, ``unit`` and ``value`` columns; a unit missing
    (or non-finite) in any seed is dropped, so every row holds the same units. When no
    unit is shared by every seed, one column of seed means (the nested design).
    """
    wide = frame.pivot_table(index=seed, columns=unit, values=value, aggfunc="mean")
    wide = wide.replace([np.inf, -np.inf], np.nan).dropna(axis=0, how="all").sort_index()
    complete = wide.dropna(axis=1, how="any")
    if complete.shape[1] == 0:
        return wide.mean(axis=1).to_numpy(dtype=float)[:, None]
    return complete.to_numpy(dtype=float)


def crossed_mean(values: np.ndarray, confidence: float = 0.95) -> dict:
    """Grand mean of a seeds x images table with the crossed random-effects interval.

    ``y[s, i] = mu + a_s + b_i + e_si``: the same images serve every seed, so the grand
    mean's variance is ``var_a / S + var_b / n + var_e / (S n)``. With the mean squares
    of seeds, images and residual (``MS_S``, ``MS_I``, ``MS_E``) and each variance
    component truncated at 0 this is ``(max(MS_S, MS_E) + max(MS_I, MS_E) - MS_E) / (S n)``,
    with Satterthwaite's df for that combination of mean squares. One seed: Student t
    over the images (a claim about one model); one image per seed: t over the seeds.

    Returns ``estimate, ci_low, ci_high, se, df, n, n_images``; ``n`` counts seeds.

    Examples
    --------
    >>> y = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]])
    >>> row = crossed_mean(y)  # seed and image effects, no residual
    >>> row["estimate"], round(row["se"] ** 2, 4), round(row["df"], 2)
    (3.0, 0.6667, 4.0)
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    n_seeds, n_images = values.shape
    if n_seeds < 2 or n_images < 2:
        row = t_interval(values.ravel(), confidence)
        return {**row, "n": n_seeds, "n_images": n_images}
    grand = float(values.mean())
    seed_effects = values.mean(axis=1) - grand
    image_effects = values.mean(axis=0) - grand
    residual = values - grand - seed_effects[:, None] - image_effects[None, :]
    df_s, df_i = n_seeds - 1, n_images - 1
    df_e = df_s * df_i
    ms_s = n_images * float((seed_effects**2).sum()) / df_s
    ms_i = n_seeds * float((image_effects**2).sum()) / df_i
    ms_e = float((residual**2).sum()) / df_e
    # coefficient of each mean square in the variance the truncated components keep
    coefficients = {"e": 1.0, "s": 0.0, "i": 0.0}
    for name, ms in (("s", ms_s), ("i", ms_i)):
        if ms > ms_e:
            coefficients[name] += 1.0
            coefficients["e"] -= 1.0
    squares = {"e": (ms_e, df_e), "s": (ms_s, df_s), "i": (ms_i, df_i)}
    total = sum(c * squares[k][0] for k, c in coefficients.items())
    row = dict(estimate=grand, ci_low=np.nan, ci_high=np.nan, se=np.nan, df=np.nan,
               n=n_seeds, n_images=n_images)  # fmt: skip
    if total <= 0:  # no variation at all
        return {**row, "ci_low": grand, "ci_high": grand, "se": 0.0, "df": float(df_e)}
    df = total**2 / sum((c * squares[k][0]) ** 2 / squares[k][1]
                        for k, c in coefficients.items() if c)  # fmt: skip
    se = math.sqrt(total / (n_seeds * n_images))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    row.update(ci_low=grand - half, ci_high=grand + half, se=se, df=float(df))
    return row


def _combined_df(va: float, dfa: float, vb: float, dfb: float) -> float:
    denominator = (va**2 / dfa if va else 0.0) + (vb**2 / dfb if vb else 0.0)
    return (va + vb) ** 2 / denominator if denominator > 0 else float(dfa + dfb)


def crossed_difference(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict:
    """``mean(b) - mean(a)`` of two crossed tables (independent datasets), t, df, p, CI.

    Each dataset's grand-mean variance is :func:`crossed_mean`'s; the difference's df is
    Welch-Satterthwaite's over the two. With one image column each this is Welch's test
    on the seed means.

    Returns ``estimate, ci_low, ci_high, se, df, t, p_value, n_a, n_b`` (seeds).

    Examples
    --------
    >>> a = np.array([[0.0], [1.0], [2.0]]); b = np.array([[2.0], [3.0], [4.0]])
    >>> row = crossed_difference(a, b)
    >>> row["estimate"], round(row["ci_low"], 3), round(row["p_value"], 4)
    (2.0, -0.267, 0.0705)
    """
    ra, rb = crossed_mean(a, confidence), crossed_mean(b, confidence)
    row = dict(estimate=rb["estimate"] - ra["estimate"], ci_low=np.nan, ci_high=np.nan,
               se=np.nan, df=np.nan, t=np.nan, p_value=np.nan, n_a=ra["n"], n_b=rb["n"])  # fmt: skip
    va, vb = ra["se"] ** 2, rb["se"] ** 2
    if not (np.isfinite(va) and np.isfinite(vb)) or va + vb == 0:
        return row
    df = _combined_df(va, ra["df"], vb, rb["df"])
    se = math.sqrt(va + vb)
    t = row["estimate"] / se
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    row.update(ci_low=row["estimate"] - half, ci_high=row["estimate"] + half, se=se,
               df=float(df), t=float(t), p_value=float(2 * stats.t.sf(abs(t), df)))  # fmt: skip
    return row


def crossed_ratio(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict:
    """``mean(b) / mean(a)`` of two crossed tables with Fieller's interval.

    The variances and df of :func:`crossed_difference`; the interval excludes 1 exactly
    when that difference is significant. With one image column each this is
    :func:`fieller_interval`.

    Returns ``estimate, ci_low, ci_high, se, df, n_a, n_b``; ``se`` is the delta-method
    SE of the ratio (for power statements only).
    """
    ra, rb = crossed_mean(a, confidence), crossed_mean(b, confidence)
    ma, mb = ra["estimate"], rb["estimate"]
    row = dict(estimate=mb / ma if ma else np.nan, ci_low=np.nan, ci_high=np.nan, se=np.nan,
               df=np.nan, n_a=ra["n"], n_b=rb["n"])  # fmt: skip
    va, vb = ra["se"] ** 2, rb["se"] ** 2
    if not (np.isfinite(va) and np.isfinite(vb)) or not ma:
        return row
    df = _combined_df(va, ra["df"], vb, rb["df"])
    low, high = _fieller(ma, mb, va, vb, df, confidence)
    se = abs(row["estimate"]) * math.sqrt(va / ma**2 + (vb / mb**2 if mb else 0.0))
    row.update(ci_low=low, ci_high=high, se=float(se), df=float(df))
    return row


@functools.lru_cache(maxsize=256)
def detectable_d(n_a: int, n_b: int, alpha: float = 0.05, power: float = POWER) -> float:
    """Smallest |d| a two-sided Welch test with ``n_a`` vs ``n_b`` units detects with ``power``.

    Prospective (a property of the design, never of the observed effect); pingouin
    ``power_ttest2n``. NaN with fewer than two units in a group.

    Examples
    --------
    >>> round(detectable_d(3, 3), 2)  # 3 vs 3 seeds
    3.07
    """
    if n_a < 2 or n_b < 2:
        return np.nan
    return float(pg.power_ttest2n(nx=n_a, ny=n_b, power=power, alpha=alpha))


def detectable_effect(se: float, df: float, alpha: float = 0.05, power: float = POWER) -> float:
    """Smallest |effect| a two-sided t test with this standard error detects with ``power``.

    ``(t_{1 - alpha/2, df} + t_{power, df}) * se``, in the units of the estimate.

    Examples
    --------
    >>> round(detectable_effect(1.0, 1e6), 3)  # the normal limit: 1.96 + 0.84
    2.802
    """
    if not (np.isfinite(se) and np.isfinite(df)) or df <= 0:
        return np.nan
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * se)


def units_needed(
    effect: float, se: float, n: Sequence[int], alpha: float = 0.05, power: float = POWER
) -> float:
    """Units per group a t test needs to detect ``effect`` with ``power`` (pingouin).

    ``n`` holds the units per group behind ``se``: one entry (one-sample: sd = se sqrt n)
    or two (two-sample: sd = se / sqrt(1/n_a + 1/n_b)). NaN when undefined.

    Examples
    --------
    >>> units_needed(1.0, 1.0, [3, 3])  # d = 1 / sqrt(1.5), power 0.8
    25.0
    """
    n = [int(k) for k in n]
    if not (np.isfinite(effect) and np.isfinite(se)) or se <= 0 or effect == 0 or not n:
        return np.nan
    two = len(n) == 2
    sd = se / math.sqrt(1 / n[0] + 1 / n[1]) if two else se * math.sqrt(n[0])
    d = abs(effect) / sd
    contrast = "two-samples" if two else "one-sample"
    try:
        needed = pg.power_ttest(d=d, power=power, alpha=alpha, contrast=contrast)
    except (ValueError, RuntimeError):
        return 2.0  # pingouin's solver needs n > 2: a huge effect needs no more than 2
    return float(max(2, math.ceil(needed))) if np.isfinite(needed) else 2.0
