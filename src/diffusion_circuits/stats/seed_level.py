"""Intervals with their nominal coverage at a handful of units (t, Welch, Fieller) and power.

With 3 training seeds per dataset a percentile bootstrap over seeds is about
[min, max] of the seed means and covers 69-90% at nominal 95%. The intervals here are
the textbook small-sample ones on the per-seed means (scipy.stats), and every CI comes
from the same model as its p value, so "CI excludes the null" and "p < alpha" agree:

- one group's mean: Student t on the seed means, df = S - 1;
- a difference of two groups: Welch's t, Welch-Satterthwaite df;
- a ratio of two group means: Fieller's interval with the Welch df, the set of ratios
  r for which ``b - r a`` is not significant; at r = 1 it *is* the Welch test.

The images of one model enter through its seed mean; the same probe images serve every
seed, so the spread of seed means is the spread of training runs on these images, which
is what a claim about training runs needs (docs/VERDICTS.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pingouin as pg
from scipy import stats

__all__ = [
    "POWER",
    "detectable_effect",
    "fieller_interval",
    "t_interval",
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
    t = float(stats.t.ppf((1 + confidence) / 2, df))
    ma, mb = float(a.mean()), float(b.mean())
    quad = ma**2 - t**2 * va
    if quad <= 0:
        return {**row, "df": df}
    disc = (ma * mb) ** 2 - quad * (mb**2 - t**2 * vb)
    root = math.sqrt(max(disc, 0.0))
    row.update(ci_low=(ma * mb - root) / quad, ci_high=(ma * mb + root) / quad, df=df)
    return row


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
