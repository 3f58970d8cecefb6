"""Multiple-comparison corrections within families of tests (Bonferroni and Holm)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

__all__ = ["adjust_family"]


def _adjust(p: pd.Series, method: str) -> pd.Series:
    out = pd.Series(np.nan, index=p.index)
    finite = p.notna()
    if finite.any():
        out[finite] = multipletests(p[finite].to_numpy(), method=method)[1]
    return out


def adjust_family(
    table: pd.DataFrame,
    *,
    family: str | Sequence[str] | None = None,
    p_col: str = "p_value",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Add ``p_bonferroni``, ``p_holm`` and ``significant`` (Holm p < alpha) per family.

    NaN p-values stay NaN and do not count towards the family size.

    Examples
    --------
    >>> t = pd.DataFrame({"p_value": [0.01, 0.02, 0.04]})
    >>> adjust_family(t)["p_holm"].round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    out = table.copy()
    if family is None:
        groups = [out.index]
    else:
        groups = [idx for _, idx in out.groupby(family, dropna=False).groups.items()]
    out["p_bonferroni"] = np.nan
    out["p_holm"] = np.nan
    for index in groups:
        out.loc[index, "p_bonferroni"] = _adjust(out.loc[index, p_col], "bonferroni")
        out.loc[index, "p_holm"] = _adjust(out.loc[index, p_col], "holm")
    out["significant"] = out["p_holm"] < alpha
    return out
