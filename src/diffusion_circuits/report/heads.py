"""Claims about attention heads of the synthetic model: roles corrected across heads.

A head has a role only when its role test survives Holm over the heads of its model and
is ``global`` only when its specialisation is shown below the global threshold
(:func:`~diffusion_circuits.stats.roles.corrected_roles`). A claim about a role no head
earns is *inconclusive* (the paper's head is not found at this power), with the
smallest corrected p and the family size in the reason, never "not comparable".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.context import ReportInputs, unit_of
from diffusion_circuits.report.intervals import point
from diffusion_circuits.report.verdict import Measurement
from diffusion_circuits.stats.roles import corrected_roles
from diffusion_circuits.stats.study import head_impacts

__all__ = ["ASSIGNED_ROLES", "head_importance", "heads", "n_roles", "role_metric"]

# Labels that name a function; "global", "none" and "undetermined" do not.
ASSIGNED_ROLES = ("edge", "texture", "semantic")


def all_heads(ctx: ReportInputs) -> pd.DataFrame:
    """Every head of the synthetic model(s) with its corrected role (``role_corrected``)."""
    roles = corrected_roles(ctx.study.head_roles, ctx.study.attention, alpha=ctx.alpha,
                            global_threshold=ctx.global_threshold)  # fmt: skip
    return roles[roles["dataset"] == "synthetic"] if "dataset" in roles.columns else roles


def heads(ctx: ReportInputs, role: str) -> pd.DataFrame:
    """Heads of the synthetic model(s) holding ``role`` after the correction."""
    table = all_heads(ctx)
    if role == "semantic":
        return table[table["semantic_corrected"] & (table["role_corrected"] != "global")]
    return table[table["role_corrected"] == role]


def _absent(ctx: ReportInputs, role: str) -> Measurement:
    table = all_heads(ctx)
    column = "p_semantic_adj" if role == "semantic" else "p_role_adj"
    candidates = table if role == "semantic" else table[table["role_candidate"] == role]
    smallest = candidates[column].min() if len(candidates) else np.nan
    counts = ", ".join(f"{r} {n}" for r, n in table["role_corrected"].value_counts().items())
    family = int(table["n_heads"].max()) if len(table) else 0
    if role == "global":
        column, candidates = "p_global_adj", table
        smallest = table[column].min() if len(table) else np.nan
    best = f"smallest Holm-adjusted p {smallest:.3g}" if np.isfinite(smallest) else "no candidate"
    test = (
        "has a specialisation shown below the global threshold (one-sided t over images)"
        if role == "global"
        else f"earns the role {role!r} against its permutation null"
    )
    bar = table["null_threshold"].median() if "null_threshold" in table.columns else np.nan
    design = (f"; the role test detects a mean correlation above its null threshold (median "
              f"r = {bar:.3g} before the correction); the paper gives no effect size for a "
              "role, so no number of seeds follows" if np.isfinite(bar) else "")  # fmt: skip
    why = (f"no head of the synthetic model {test} after Holm over its {family} heads ({best}; "
           f"heads: {counts}): the paper's {role} head is not found, which at this power is no "
           f"evidence either way{design}")  # fmt: skip
    return Measurement(np.nan, inconclusive=why, unit=unit_of(ctx))


def _head_rows(claim: Claim, frame: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    keys = ["hook", "head"] + (["seed"] if "seed" in chosen.columns and "seed" in frame.columns else [])  # fmt: skip
    rows = frame[frame["dataset"] == "synthetic"].merge(chosen[keys].drop_duplicates(), on=keys)
    if claim.timestep is not None and claim.timestep in set(rows["timestep"]):
        rows = rows[rows["timestep"] == claim.timestep]
    return rows


def role_metric(ctx: ReportInputs, claim: Claim, metric: str) -> Measurement:
    """Mean ``metric`` (entropy, specialisation) of the heads holding the claim's role."""
    chosen = heads(ctx, claim.target)
    if chosen.empty:
        return _absent(ctx, claim.target)
    attention = ctx.study.attention
    return point(ctx, _head_rows(claim, attention[attention["metric"] == metric], chosen))


def head_importance(ctx: ReportInputs, claim: Claim) -> Measurement:
    """Mean relative impact of mean-ablating one head of the role, at the claim's timestep."""
    chosen = heads(ctx, claim.target)
    if chosen.empty:
        return _absent(ctx, claim.target)
    rows = head_impacts(ctx.study.interventions)
    return point(ctx, _head_rows(claim, rows, chosen.astype({"head": int})))


def n_roles(ctx: ReportInputs) -> Measurement:
    """Heads per synthetic model with a named role after the correction; t over seeds."""
    table = all_heads(ctx)
    named = table["role_corrected"].isin(ASSIGNED_ROLES) | table["semantic_corrected"]
    seeds = table["seed"] if "seed" in table.columns else pd.Series(0, index=table.index)
    per_model = named.groupby(seeds).sum().rename("value").rename_axis("seed").reset_index()
    if unit_of(ctx) != "seed":  # one model: a count, no sampling interval at this unit
        return Measurement(float(per_model["value"].mean()), unit=unit_of(ctx), n_units=(1,))
    return point(ctx, per_model.astype({"value": float}))
