"""Head roles corrected across the heads of a model, with a null for "global".

The analyze stage tests each head's best candidate (edge, texture; parts on synthetic
faces) against an image-permutation null, one head at a time. A model has dozens of
heads, so a role is kept here only when its p value survives a correction over the
family of heads of that model (Holm by default, pingouin ``multicomp`` as in
:mod:`~diffusion_circuits.stats.corrections`), and a
head is ``global`` only when its specialisation is *shown* to lie below the global
threshold (one-sided t test over images, corrected over the same family), not merely
measured below it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

__all__ = ["MODEL_KEYS", "corrected_roles"]

MODEL_KEYS = ("dataset", "seed")
NAMED_ROLES = ("edge", "texture")


def _adjust(p: pd.Series, method: str) -> pd.Series:
    out = pd.Series(np.nan, index=p.index)
    finite = p.notna()
    if finite.any():
        out[finite] = pg.multicomp(p[finite].to_numpy(), method=method)[1]
    return out


def _global_p(attention: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One-sided p of "mean specialisation < threshold" per head, over images."""
    rows = attention[attention["metric"] == "specialisation"]
    keys = [k for k in (*MODEL_KEYS, "hook", "head") if k in rows.columns]
    per_image = rows.groupby([*keys, "image_id"], as_index=False)["value"].mean()
    out = []
    for key, part in per_image.groupby(keys):
        values = part["value"].to_numpy(dtype=float)
        p = np.nan
        if len(values) >= 2 and np.ptp(values) > 0:
            p = float(stats.ttest_1samp(values, threshold, alternative="less").pvalue)
        elif len(values):
            p = 0.0 if values.mean() < threshold else 1.0
        out.append({**dict(zip(keys, key, strict=True)), "global_p_value": p})
    return pd.DataFrame(out)


def corrected_roles(
    roles: pd.DataFrame,
    attention: pd.DataFrame,
    *,
    alpha: float = 0.05,
    global_threshold: float = 0.05,
    method: str = "holm",
) -> pd.DataFrame:
    """The head-roles table with roles that survive a correction over each model's heads.

    Parameters
    ----------
    roles : the analyze stage's head roles (``hook, head, role_candidate, role_score,
        p_value``; optional ``semantic_score, semantic_part, semantic_p_value``), with
        ``dataset`` / ``seed`` where several models are stacked.
    attention : tidy attention table (metric ``specialisation`` per image).
    alpha : level of the corrected tests.
    global_threshold : specialisation below which a head is global (``analyze.global_threshold``).
    method : pingouin ``multicomp`` method (``holm``, ``fdr_bh``, ...).

    Returns
    -------
    ``roles`` plus ``p_role_adj`` (the role test's p, corrected), ``p_semantic_adj``,
    ``global_p_value`` and ``p_global_adj``, ``n_heads`` (the family size) and
    ``role_corrected``: ``global`` when the corrected global test rejects; else the
    candidate when its score is positive and ``p_role_adj < alpha``; ``undetermined``
    where the analyze stage said so; else ``none``. ``semantic_corrected`` is True where
    the best part beats its null after the correction (descriptive on synthetic faces).

    Examples
    --------
    >>> roles = pd.DataFrame({"hook": "h", "head": [0, 1, 2], "role_candidate": "edge",
    ...     "role_score": 0.3, "p_value": [0.001, 0.03, 0.04], "role": "edge"})
    >>> attention = pd.DataFrame({"hook": "h", "head": [0, 0, 1, 1, 2, 2], "metric":
    ...     "specialisation", "image_id": [0, 1] * 3, "value": [0.3, 0.4, 0.3, 0.5, 0.2, 0.6]})
    >>> corrected_roles(roles, attention)["role_corrected"].tolist()  # Holm: 0.003, 0.06, 0.06
    ['edge', 'none', 'none']
    """
    table = roles.copy()
    keys = [k for k in MODEL_KEYS if k in table.columns]
    merge_keys = [*keys, "hook", "head"]
    table = table.merge(_global_p(attention, global_threshold), on=merge_keys, how="left")
    groups = table.groupby(keys).groups.values() if keys else [table.index]
    for column, adjusted in (("p_value", "p_role_adj"), ("global_p_value", "p_global_adj"),
                             ("semantic_p_value", "p_semantic_adj")):  # fmt: skip
        table[adjusted] = np.nan
        if column not in table.columns:
            continue
        for index in groups:
            table.loc[index, adjusted] = _adjust(table.loc[index, column].astype(float), method)
    table["n_heads"] = table.groupby(keys)["head"].transform("size") if keys else len(table)
    named = table["role_candidate"].isin(NAMED_ROLES) & (table["role_score"] > 0)
    role = np.where(named & (table["p_role_adj"] < alpha), table["role_candidate"], "none")
    role = np.where(table["role"].eq("undetermined"), "undetermined", role)
    table["role_corrected"] = np.where(table["p_global_adj"] < alpha, "global", role)
    semantic = table.get("semantic_score", pd.Series(np.nan, index=table.index))
    table["semantic_corrected"] = (semantic > 0) & (table["p_semantic_adj"] < alpha)
    return table
