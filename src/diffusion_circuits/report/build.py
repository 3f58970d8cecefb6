"""Assemble the claims table: every claim beside our value, CI, unit, verdict and robustness."""

from __future__ import annotations

import dataclasses
from importlib.metadata import version

import numpy as np
import pandas as pd
import pingouin as pg

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.context import ReportInputs, for_seed
from diffusion_circuits.report.measure import claim_tests, measure
from diffusion_circuits.report.verdict import (
    ALPHA,
    INCONCLUSIVE,
    NOT_TESTABLE,
    NULLS,
    Measurement,
    claim_kind,
    is_model_level,
    paper_threshold,
    verdict,
)
from diffusion_circuits.stats.seed_level import (
    POWER,
    detectable_d,
    detectable_effect,
    units_needed,
)

__all__ = [
    "CLAIM_COLUMNS",
    "claims_table",
    "package_versions",
    "paper_directions",
    "paper_effects",
    "power_statement",
    "shared_tests",
    "PACKAGES",
]

PACKAGES = ("torch", "diffusers", "accelerate", "dvc", "pingouin", "scipy", "numpy", "pandas")

CLAIM_COLUMNS = [
    "claim_id", "location", "quantity", "dataset", "timestep", "target", "statistic", "kind",
    "model_level", "paper_comparator", "paper_value", "paper_sd", "threshold", "ours",
    "ci_low", "ci_high", "unit", "ci_method", "tests", "p_adj", "verdict", "why", "reason",
    "detectable_effect", "units_needed", "same_as",
]  # fmt: skip


def paper_directions(claims: list[Claim]) -> dict[str, float]:
    """Test id -> the paper's sign for it, from its first ratio / difference / percent claim.

    The paper's Table 4 prints |d|; the sign of a test is read from the paper's own
    ratio (against 1) or signed difference / percent change (against 0) for that test.
    """
    directions: dict[str, float] = {}
    for claim in claims:
        tests = claim_tests(claim)
        if claim_kind(claim) == "directional" and len(tests) == 1:
            null = NULLS.get(claim.statistic, 0.0)
            directions.setdefault(tests[0], float(np.sign(claim.value - null)))
    return directions


def paper_effects(claims: list[Claim]) -> dict[str, float]:
    """The paper's effect per test: ``effect <test>`` (a signed difference), ``ratio <test>``
    (ratio - 1, or a percent change / 100) and ``d <test>`` (its printed |d|)."""
    effects: dict[str, float] = {}
    for claim in claims:
        tests = claim_tests(claim)
        if len(tests) != 1:
            continue
        kind = claim_kind(claim)
        if kind == "effect size":
            effects.setdefault(f"d {tests[0]}", abs(claim.value))
        elif kind == "directional" and claim.statistic == "difference":
            effects.setdefault(f"effect {tests[0]}", claim.value)
        elif kind == "directional":
            relative = claim.value / 100 if claim.statistic == "percent" else claim.value - 1
            effects.setdefault(f"ratio {tests[0]}", relative)
    return effects


def _d_power(n: tuple[int, ...], d: float, alpha: float) -> tuple[float, float]:
    """Detectable |d| at power 0.8 with these group sizes; units per group for |d| = d."""
    if len(n) != 2 or min(n) < 2:
        return np.nan, np.nan
    detectable = detectable_d(n[0], n[1], alpha)
    needed = pg.power_ttest(d=d, power=POWER, alpha=alpha) if np.isfinite(d) and d > 0 else np.nan
    return detectable, float(np.ceil(needed)) if np.isfinite(needed) else np.nan


IMPRACTICAL = 1000  # units per group beyond which a power statement says so in words


def power_statement(claim: Claim, ours: Measurement, kind: str,
                    alpha: float = ALPHA) -> tuple[float, float, str]:  # fmt: skip
    """``(detectable, needed, text)`` for an inconclusive row.

    ``detectable``: the smallest effect (in the row's units; |d| for effect sizes) the
    design detects with power 0.8; ``needed``: units per group (seeds per dataset at the
    seed unit, images at the image unit) for power 0.8 at the paper's effect (for point
    values, the margin: telling the paper's value from one a margin away).
    """
    n = tuple(ours.n_units)
    unit = "seeds" if ours.unit == "seed" else "images"
    per = " per dataset" if len(n) == 2 else ""
    if kind in ("effect size", "bound"):
        d = abs(claim.value)
        detectable, needed = _d_power(n, d, alpha)
        what, effect = "|d|", f"|d| = {d:g}"
    elif kind == "rank" or not n:
        return np.nan, np.nan, "no design for a power statement (a rank, or no units)"
    else:
        null = NULLS.get(claim.statistic, 0.0)
        effect_value = {"point": claim.margin, "directional": claim.value - null}.get(kind, ours.paper_effect)  # fmt: skip
        se = ours.se
        detectable = detectable_effect(se, ours.df, alpha)
        needed = units_needed(effect_value, se, n, alpha) if effect_value is not None else np.nan
        what = "an effect of"
        effect = ("the margin" if kind == "point" else "the paper's effect") + (
            f" {effect_value:.3g}" if effect_value is not None and np.isfinite(effect_value) else "")  # fmt: skip
    if not np.isfinite(detectable):
        return detectable, needed, f"{n} {unit}{per}: too few for a power statement"
    if not np.isfinite(needed):
        need = "an undefined number of units"
    elif needed > IMPRACTICAL:  # a margin far below the spread between units
        need = f"{needed:,.0f} {unit}{per}, beyond any practical study"
    else:
        need = f"{needed:g} {unit}{per}"
    text = (f"with {' vs '.join(str(k) for k in n)} {unit} this design detects {what} "
            f"{detectable:.3g} with power {POWER:g}; {effect} would need {need}")  # fmt: skip
    return detectable, needed, text


def shared_tests(claims: list[Claim], alpha: float = ALPHA) -> dict[str, str]:
    """Claim id -> the first claim making the same assertion about the same tests.

    Same assertion: same kind, same tests, same statistic and same threshold (for p
    values) or value; one test then gives one verdict, listed once in the summary.
    """
    first: dict[tuple, str] = {}
    links: dict[str, str] = {}
    for claim in claims:
        tests = claim_tests(claim)
        if not tests:
            continue
        kind = claim_kind(claim)
        what = paper_threshold(claim, alpha) if kind == "significance" else claim.value
        key = (kind, tests, claim.statistic, what)
        if key in first:
            links[claim.id] = first[key]
        else:
            first[key] = claim.id
    return links


def _row(claim: Claim, ctx: ReportInputs, paper: dict[str, float]) -> dict:
    ours = measure(claim, ctx, paper)
    result, kind, why = verdict(claim, ours, alpha=ctx.alpha)
    detectable = needed = np.nan
    if result == INCONCLUSIVE and not ours.inconclusive:
        detectable, needed, text = power_statement(claim, ours, kind, ctx.alpha)
        why = f"{why}; {text}"
    return {
        "claim_id": claim.id, "location": claim.location, "quantity": claim.quantity,
        "dataset": claim.dataset, "timestep": claim.timestep, "target": claim.target,
        "statistic": claim.statistic, "kind": kind, "model_level": is_model_level(claim),
        "paper_comparator": claim.comparator, "paper_value": claim.value,
        "paper_sd": claim.sd,
        "threshold": paper_threshold(claim, ctx.alpha) if kind == "significance" else np.nan,
        "ours": ours.value, "ci_low": ours.ci_low, "ci_high": ours.ci_high,
        "unit": ours.unit, "ci_method": ours.ci_method, "tests": "; ".join(ours.tests or claim_tests(claim)),
        "p_adj": "; ".join(f"{p:.3g}" for p in ours.p_adj), "verdict": result, "why": why,
        "reason": "; ".join(r for r in (ours.reason, claim.notes) if r),
        "detectable_effect": detectable, "units_needed": needed,
    }  # fmt: skip


def claims_table(claims: list[Claim], ctx: ReportInputs) -> pd.DataFrame:
    """One row per claim (file order), with the verdict under each seed alone.

    Returns
    -------
    :data:`CLAIM_COLUMNS` (``kind``: the branch of the rule; ``unit``/``ci_method``: how
    ``ci_low``/``ci_high`` were obtained; ``tests``/``p_adj``: the stats-stage tests a
    claim refers to and their Holm-adjusted p; ``why``: the rule's reason for the verdict,
    with the power statement on inconclusive rows; ``detectable_effect`` / ``units_needed``:
    that statement's numbers (:func:`power_statement`);
    ``same_as``: the first claim the paper repeats here, or the first making the same
    assertion about the same test), then ``verdict_seed<s>`` for each seed (the rule
    applied to that seed's pair of models alone, image unit), ``seeds_agreeing`` (seeds
    whose own verdict equals ``verdict``; NA where ``verdict`` is "not testable", which no
    single seed can give) and ``seed_dependent`` (the per-seed verdicts differ).
    """
    ctx = dataclasses.replace(ctx, paper_directions=paper_directions(claims))
    paper = paper_effects(claims)
    table = pd.DataFrame([_row(c, ctx, paper) for c in claims])
    links = shared_tests(claims, ctx.alpha)
    table["same_as"] = [c.same_as or c.same_evidence or links.get(c.id) for c in claims]
    table = table[CLAIM_COLUMNS]
    per_seed = []
    for seed in ctx.seeds:
        scoped = for_seed(ctx, seed)
        column = f"verdict_seed{seed}"
        table[column] = [verdict(c, measure(c, scoped, paper), alpha=ctx.alpha)[0] for c in claims]
        per_seed.append(column)
    agreeing = (table[per_seed].to_numpy() == table[["verdict"]].to_numpy()).sum(axis=1)
    # "not testable" is the report's verdict only: no single seed can agree with it.
    untestable = table["verdict"] == NOT_TESTABLE
    table["seeds_agreeing"] = pd.Series(agreeing, index=table.index, dtype="Int64").mask(untestable)
    table["seed_dependent"] = table[per_seed].nunique(axis=1) > 1
    return table


def package_versions() -> str:
    return ", ".join(f"{name} {version(name)}" for name in PACKAGES)
