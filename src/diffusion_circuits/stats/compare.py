"""Synthetic vs natural comparisons as tidy tables (pingouin and scipy.stats underneath).

For each combination of the ``by`` columns, values are first averaged to one per
statistical unit (the image, or the training seed for model-level claims), then compared
with Welch's t-test, Cohen's d, a bootstrap CI of the mean difference, the smallest |d|
the design detects with power 0.8 (prospective: post-hoc power at the observed effect
carries no information beyond the p value) and a two-sample Kolmogorov-Smirnov test.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from diffusion_circuits.stats.seed_level import detectable_d
from diffusion_circuits.vocabulary import DATASETS

__all__ = ["COLUMNS", "bootstrap_ci", "cohen_label", "compare_groups", "compare_datasets"]

COLUMNS = [
    "test", "contrast", "n_a", "n_b", "mean_a", "sd_a", "mean_b", "sd_b", "estimate", "ratio",
    "ci_low", "ci_high", "ci_method", "t", "dof", "p_value", "effect_size", "effect_label",
    "d_for_power_80", "ks_stat", "ks_p_value", "note",
]  # fmt: skip

ALPHA = 0.05


def cohen_label(d: float) -> str:
    """Cohen's verbal label of an effect size, on ``|d|``.

    negligible < 0.2 <= small < 0.5 <= medium < 0.8 <= large; ``"undefined"`` for NaN.

    Examples
    --------
    >>> [cohen_label(d) for d in (0.19999, 0.2, -0.5, 0.8)]
    ['negligible', 'small', 'medium', 'large']
    """
    if d is None or not np.isfinite(d):
        return "undefined"
    size = abs(d)
    if size < 0.2:
        return "negligible"
    if size < 0.5:
        return "small"
    return "medium" if size < 0.8 else "large"


def bootstrap_ci(
    samples: tuple[np.ndarray, ...],
    statistic: Callable,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, str]:
    """BCa bootstrap CI of ``statistic(*samples, axis)`` (independent resampling per sample).

    Returns ``(low, high, method)``. BCa corrects the percentile interval for bias and
    skew; when its jackknife acceleration is degenerate (NaN bounds, e.g. very few
    distinct values) the plain percentile interval is returned and ``method`` says so.

    Examples
    --------
    >>> low, high, method = bootstrap_ci((np.arange(10.0),), np.mean, n_resamples=500)
    >>> bool(low < 4.5 < high), method
    (True, 'BCa')
    """
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            # Degenerate BCa is detected from the NaN bounds below, not from the warning.
            warnings.simplefilter("ignore", category=stats.DegenerateDataWarning)
            warnings.simplefilter("ignore", category=RuntimeWarning)
            result = stats.bootstrap(
                samples, statistic, n_resamples=n_resamples, confidence_level=confidence,
                vectorized=True, paired=False, method=method, rng=np.random.default_rng(seed),
            )  # fmt: skip
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high), method
    return np.nan, np.nan, "none"


def _mean_difference(a, b, axis):
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def compare_groups(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = ALPHA,
) -> dict:
    """All statistics of :data:`COLUMNS` for two samples (one value per unit).

    ``estimate = mean(b) - mean(a)``; d, t and the CI share its sign. ``alpha`` is the
    test level of ``d_for_power_80`` (the stats stage passes ``params.stats.alpha``).
    Non-finite values are dropped first. Fewer than 2 units in a group, or no variance in either group,
    gives NaN tests and a ``note`` saying why.

    Examples
    --------
    >>> row = compare_groups([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], n_resamples=200)
    >>> row["estimate"], row["effect_size"], row["effect_label"]
    (1.0, 1.0, 'large')
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    dropped = int((~np.isfinite(a)).sum() + (~np.isfinite(b)).sum())
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    row: dict = dict.fromkeys(COLUMNS, np.nan)
    row.update(test="welch_t", contrast="b - a", n_a=len(a), n_b=len(b), effect_label="undefined",
               ci_method="none", d_for_power_80=detectable_d(len(a), len(b), alpha))  # fmt: skip
    notes = [f"{dropped} non-finite units dropped"] if dropped else []
    if len(a):
        row.update(mean_a=float(a.mean()), sd_a=float(a.std(ddof=1)) if len(a) > 1 else np.nan)
    if len(b):
        row.update(mean_b=float(b.mean()), sd_b=float(b.std(ddof=1)) if len(b) > 1 else np.nan)
    if len(a) and len(b):
        row["estimate"] = row["mean_b"] - row["mean_a"]
        row["ratio"] = row["mean_b"] / row["mean_a"] if row["mean_a"] != 0 else np.nan
    if len(a) < 2 or len(b) < 2:
        row["note"] = "; ".join([*notes, "fewer than 2 units in a group"])
        return row
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        row["note"] = "; ".join([*notes, "no variance in either group"])
        return row
    with warnings.catch_warnings():
        # One constant group trips scipy's precision-loss warning; Welch's t is still valid.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        welch = stats.ttest_ind(b, a, equal_var=False)
    d = float(pg.compute_effsize(b, a, paired=False, eftype="cohen"))
    low, high, method = bootstrap_ci(
        (a, b), _mean_difference, n_resamples=n_resamples, seed=seed, confidence=confidence
    )
    if method == "percentile":
        notes.append("percentile bootstrap CI (BCa degenerate)")
    ks = stats.ks_2samp(a, b)
    row.update(
        ci_low=low, ci_high=high, ci_method=f"{method} bootstrap over units" if method != "none"
        else "none", t=float(welch.statistic), dof=float(welch.df),
        p_value=float(welch.pvalue), effect_size=d, effect_label=cohen_label(d),
        ks_stat=float(ks.statistic),
        ks_p_value=float(ks.pvalue), note="; ".join(notes),
    )  # fmt: skip
    return row


def _check_columns(df: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; table has {list(df.columns)}")


def compare_datasets(
    df: pd.DataFrame,
    *,
    dv: str = "value",
    between: str = "dataset",
    groups: tuple[str, str] = DATASETS,
    by: Sequence[str] = ("metric", "timestep"),
    unit: str = "image_id",
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Compare ``groups[1]`` against ``groups[0]`` within each combination of ``by``.

    Parameters
    ----------
    df : tidy table, one row per observation.
    dv : column with the measured value.
    between : column holding the group labels.
    groups : ``(a, b)``; the contrast is ``b - a`` (default natural - synthetic).
    by : one comparison per combination of these columns (may be empty).
    unit : the statistical unit. Rows sharing ``(by, between, unit)`` are averaged first
        (e.g. the heads or hooks of one image), so ``n_a``/``n_b`` count units, not rows.
        ``"image_id"``: variation over images of one fixed model per dataset (with
        several seeds, an image's values are averaged over the seeds' models);
        ``"seed"``: model-level claims, one value per independently trained model.
    n_resamples, seed, confidence : bootstrap settings (``seed`` seeds the resampling).
    alpha : test level for ``d_for_power_80``.

    Returns
    -------
    DataFrame with the ``by`` columns, then

    - ``test``: ``"welch_t"``; ``contrast``: e.g. ``"natural - synthetic"``
    - ``n_a, n_b``: units per group; ``mean_a, sd_a, mean_b, sd_b`` (SD with ddof=1)
    - ``estimate``: mean_b - mean_a; ``ratio``: mean_b / mean_a (NaN if mean_a == 0)
    - ``ci_low, ci_high``: bootstrap CI of the estimate (BCa, see :func:`bootstrap_ci`);
      ``ci_method``: how it was obtained (``"BCa bootstrap over units"``, the percentile
      fallback, or ``"none"``)
    - ``t, dof, p_value``: Welch's unequal-variance t-test (scipy), two-sided
    - ``effect_size``: Cohen's d with pooled SD (pingouin), sign of the estimate;
      ``effect_label``: :func:`cohen_label`
    - ``d_for_power_80``: the smallest |d| the two-sided Welch test at level ``alpha``
      detects with power 0.8 at these n (pingouin ``power_ttest2n``; NaN below 2 units)
    - ``ks_stat, ks_p_value``: two-sample Kolmogorov-Smirnov test (scipy)
    - ``note``: why statistics are NaN or how the CI was obtained; empty otherwise

    Notes
    -----
    d = (mean_b - mean_a) / s_p with s_p^2 = ((n_a-1) sd_a^2 + (n_b-1) sd_b^2) / (n_a+n_b-2).
    Welch: t = (mean_b - mean_a) / sqrt(sd_a^2/n_a + sd_b^2/n_b), Welch-Satterthwaite dof.
    ``attrs`` carries ``groups``, ``confidence`` and ``unit`` for table formatting.

    Examples
    --------
    >>> table = pd.DataFrame({"dataset": ["synthetic"] * 4 + ["natural"] * 4,
    ...     "image_id": list(range(8)), "metric": "m", "value": [1., 2., 3., 4., 2., 3., 4., 5.]})
    >>> compare_datasets(table, by=["metric"], n_resamples=200)[["estimate", "effect_label"]]
       estimate effect_label
    0       1.0       medium
    """
    by = list(by)
    first, second = groups
    _check_columns(df, [dv, between, unit, *by])
    if first == second:
        raise ValueError(f"groups must be two different values of {between!r}, got {groups}")
    if unit in by or between in by:
        raise ValueError(f"by={by} must not contain the unit {unit!r} or the group {between!r}")
    if not pd.api.types.is_numeric_dtype(df[dv]):
        raise ValueError(f"column {dv!r} must be numeric, got dtype {df[dv].dtype}")
    if not 0 < confidence < 1 or n_resamples < 1:
        raise ValueError(f"need 0 < confidence < 1 and n_resamples >= 1, got {confidence}, {n_resamples}")  # fmt: skip
    present = set(df[between].dropna().unique())
    absent = [g for g in groups if g not in present]
    if absent:
        raise ValueError(f"{between} value(s) {absent} not in table; present: {sorted(present, key=str)}")  # fmt: skip
    rows = df[df[between].isin(groups)]
    units = rows.groupby([*by, between, unit], dropna=False, as_index=False)[dv].mean()
    out = []
    for key, part in units.groupby(by, dropna=False, sort=True) if by else [((), units)]:
        key = key if isinstance(key, tuple) else (key,)
        a = part.loc[part[between] == first, dv].to_numpy()
        b = part.loc[part[between] == second, dv].to_numpy()
        row = compare_groups(a, b, n_resamples=n_resamples, seed=seed, confidence=confidence,
                             alpha=alpha)  # fmt: skip
        row["contrast"] = f"{second} - {first}"
        out.append({**dict(zip(by, key, strict=True)), **row})
    table = pd.DataFrame(out, columns=[*by, *COLUMNS])
    table.attrs.update(groups=(first, second), confidence=confidence, unit=unit)
    return table
