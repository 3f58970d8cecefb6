"""Synthetic vs natural comparisons as tidy tables (pingouin and scipy.stats underneath).

For each combination of the ``by`` columns, values are first averaged to one per
statistical unit (the image, or the training seed for model-level claims), then compared
with Welch's t-test, Cohen's d, a bootstrap CI of the mean difference, achieved power,
the N per group needed for power 0.95, and a two-sample Kolmogorov-Smirnov test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

__all__ = ["COLUMNS", "cohen_label", "compare_groups", "compare_datasets"]

COLUMNS = [
    "test", "contrast", "n_a", "n_b", "mean_a", "sd_a", "mean_b", "sd_b", "estimate", "ratio",
    "ci_low", "ci_high", "t", "dof", "p_value", "effect_size", "effect_label", "power",
    "n_for_power_95", "ks_stat", "ks_p_value", "note",
]  # fmt: skip


def cohen_label(d: float) -> str:
    """negligible < 0.2 <= small < 0.5 <= medium < 0.8 <= large, on |d|.

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


def _mean_difference(a, b, axis):
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def compare_groups(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """All statistics for one pair of samples (one value per unit); estimate = mean(b) - mean(a)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(test="welch_t", n_a=len(a), n_b=len(b), note="")
    if len(a):
        row.update(mean_a=a.mean(), sd_a=a.std(ddof=1) if len(a) > 1 else np.nan)
    if len(b):
        row.update(mean_b=b.mean(), sd_b=b.std(ddof=1) if len(b) > 1 else np.nan)
    if len(a) and len(b):
        row["estimate"] = b.mean() - a.mean()
        row["ratio"] = b.mean() / a.mean() if a.mean() != 0 else np.nan
    if len(a) < 2 or len(b) < 2:
        row.update(effect_label="undefined", note="fewer than 2 units in a group")
        return row
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        row.update(effect_label="undefined", note="no variance in either group")
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        welch = stats.ttest_ind(b, a, equal_var=False)
        d = float(pg.compute_effsize(b, a, eftype="cohen"))
        boot = stats.bootstrap(
            (a, b),
            _mean_difference,
            n_resamples=n_resamples,
            confidence_level=confidence,
            vectorized=True,
            paired=False,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
        power = float(pg.power_ttest2n(nx=len(a), ny=len(b), d=d)) if d != 0 else np.nan
        needed = pg.power_ttest(d=d, power=0.95) if d != 0 and np.isfinite(d) else np.nan
        ks = stats.ks_2samp(a, b)
    row.update(
        ci_low=boot.confidence_interval.low,
        ci_high=boot.confidence_interval.high,
        t=welch.statistic,
        dof=welch.df,
        p_value=welch.pvalue,
        effect_size=d,
        effect_label=cohen_label(d),
        power=power,
        n_for_power_95=math.ceil(needed) if np.isfinite(needed) else np.nan,
        ks_stat=ks.statistic,
        ks_p_value=ks.pvalue,
    )
    return row


def compare_datasets(
    df: pd.DataFrame,
    *,
    dv: str = "value",
    between: str = "dataset",
    groups: tuple[str, str] = ("synthetic", "natural"),
    by: Sequence[str] = ("metric", "timestep"),
    unit: str = "image_id",
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Compare ``groups[1]`` against ``groups[0]`` within each combination of ``by``.

    Parameters
    ----------
    df : tidy table, one row per observation.
    unit : rows sharing ``(by, between, unit)`` are averaged first (e.g. heads of one image).

    Returns
    -------
    DataFrame: the ``by`` columns, then :data:`COLUMNS`. ``contrast`` reads
    ``"natural - synthetic"``; estimate, CI and d share that sign.

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
    units = df.groupby([*by, between, unit], dropna=False, as_index=False)[dv].mean()
    rows = []
    for key, part in units.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        a = part.loc[part[between] == first, dv].to_numpy()
        b = part.loc[part[between] == second, dv].to_numpy()
        row = compare_groups(a, b, n_resamples=n_resamples, seed=seed, confidence=confidence)
        row["contrast"] = f"{second} - {first}"
        rows.append({**dict(zip(by, key, strict=True)), **row})
    return pd.DataFrame(rows, columns=[*by, *COLUMNS])
