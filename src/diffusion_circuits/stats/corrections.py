"""Multiple-comparison corrections within families of tests (pingouin ``multicomp``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pingouin as pg

__all__ = ["METHODS", "adjust_family"]

# Our column suffix -> pingouin's method name.
METHODS = {
    "bonferroni": "bonf",
    "holm": "holm",
    "sidak": "sidak",
    "fdr_bh": "fdr_bh",
    "fdr_by": "fdr_by",
}


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    # pingouin leaves NaN p-values NaN and leaves them out of the family size.
    if np.isnan(p).all():
        return np.full(len(p), np.nan)
    return pg.multicomp(p, method=METHODS[method])[1]


def adjust_family(
    table: pd.DataFrame,
    *,
    family: str | Sequence[str] | None = None,
    p_col: str = "p_value",
    methods: Sequence[str] = ("bonferroni", "holm"),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Adjust p-values for multiple comparisons within each family of tests.

    Parameters
    ----------
    table : one row per test.
    family : None: the whole table is one family; else the column(s) whose values
        define the families (e.g. ``"metric"``: one family per metric).
    p_col : column with the unadjusted p-values (NaN allowed).
    methods : any of ``bonferroni``, ``holm``, ``sidak``, ``fdr_bh``, ``fdr_by``.
    alpha : level for ``significant``.

    Returns
    -------
    A copy of ``table`` with one ``p_<method>`` column per method (default
    ``p_bonferroni``, ``p_holm``) and ``significant`` (nullable boolean): adjusted p <
    alpha on Holm when ``holm`` is among ``methods``, otherwise on the first method;
    NA where the p-value is NaN.

    Notes
    -----
    NaN p-values stay NaN and do not count towards their family's size m.
    Bonferroni: p * m (capped at 1). Holm: step-down, the k-th smallest p times (m - k + 1),
    made monotone.

    Examples
    --------
    >>> t = pd.DataFrame({"p_value": [0.01, 0.02, 0.04, np.nan]})
    >>> adjust_family(t)[["p_bonferroni", "p_holm", "significant"]].round(3)
       p_bonferroni  p_holm  significant
    0          0.03    0.03         True
    1          0.06    0.04         True
    2          0.12    0.04         True
    3           NaN     NaN         <NA>
    """
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown correction method(s) {unknown or methods}; allowed: {list(METHODS)}")  # fmt: skip
    families = [] if family is None else [family] if isinstance(family, str) else list(family)
    missing = [c for c in [p_col, *families] if c not in table.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; table has {list(table.columns)}")
    p = pd.to_numeric(table[p_col], errors="raise").astype(float)
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"column {p_col!r} must hold p-values in [0, 1] or NaN")
    out = table.copy()
    # Positions, not labels: the table's index may repeat.
    positions = (
        [np.arange(len(out))]
        if not families
        else list(out.groupby(families, dropna=False).indices.values())
    )
    values = p.to_numpy()
    for method in methods:
        adjusted = np.full(len(out), np.nan)
        for pos in positions:
            adjusted[pos] = _adjust(values[pos], method)
        out[f"p_{method}"] = adjusted
    decisive = out["p_holm" if "holm" in methods else f"p_{methods[0]}"]
    out["significant"] = (decisive < alpha).astype("boolean").mask(decisive.isna())
    return out
