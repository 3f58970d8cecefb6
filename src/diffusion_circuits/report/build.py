"""Assemble the claims table: every claim beside our value, CI, unit, verdict and robustness."""

from __future__ import annotations

import dataclasses
from importlib.metadata import version

import numpy as np
import pandas as pd

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.context import ReportInputs, for_seed
from diffusion_circuits.report.measure import claim_tests, measure
from diffusion_circuits.report.verdict import (
    ALPHA,
    NOT_TESTABLE,
    NULLS,
    claim_kind,
    is_model_level,
    paper_threshold,
    verdict,
)

__all__ = [
    "CLAIM_COLUMNS",
    "claims_table",
    "package_versions",
    "paper_directions",
    "shared_tests",
    "PACKAGES",
]

PACKAGES = ("torch", "diffusers", "accelerate", "dvc", "pingouin", "scipy", "numpy", "pandas")

CLAIM_COLUMNS = [
    "claim_id", "location", "quantity", "dataset", "timestep", "target", "statistic", "kind",
    "model_level", "paper_comparator", "paper_value", "paper_sd", "threshold", "ours",
    "ci_low", "ci_high", "unit", "ci_method", "tests", "p_adj", "verdict", "why", "reason",
    "same_as",
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


def _row(claim: Claim, ctx: ReportInputs) -> dict:
    ours = measure(claim, ctx)
    result, kind, why = verdict(claim, ours, alpha=ctx.alpha)
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
    }  # fmt: skip


def claims_table(claims: list[Claim], ctx: ReportInputs) -> pd.DataFrame:
    """One row per claim (file order), with the verdict under each seed alone.

    Returns
    -------
    :data:`CLAIM_COLUMNS` (``kind``: the branch of the rule; ``unit``/``ci_method``: how
    ``ci_low``/``ci_high`` were obtained; ``tests``/``p_adj``: the stats-stage tests a
    claim refers to and their Holm-adjusted p; ``why``: the rule's reason for the verdict;
    ``same_as``: the first claim the paper repeats here, or the first making the same
    assertion about the same test), then ``verdict_seed<s>`` for each seed (the rule
    applied to that seed's pair of models alone, image unit), ``seeds_agreeing`` (seeds
    whose own verdict equals ``verdict``; NA where ``verdict`` is "not testable", which no
    single seed can give) and ``seed_dependent`` (the per-seed verdicts differ).
    """
    ctx = dataclasses.replace(ctx, paper_directions=paper_directions(claims))
    table = pd.DataFrame([_row(c, ctx) for c in claims])
    links = shared_tests(claims, ctx.alpha)
    table["same_as"] = [c.same_as or links.get(c.id) for c in claims]
    table = table[CLAIM_COLUMNS]
    per_seed = []
    for seed in ctx.seeds:
        scoped = for_seed(ctx, seed)
        column = f"verdict_seed{seed}"
        table[column] = [verdict(c, measure(c, scoped), alpha=ctx.alpha)[0] for c in claims]
        per_seed.append(column)
    agreeing = (table[per_seed].to_numpy() == table[["verdict"]].to_numpy()).sum(axis=1)
    # "not testable" is the report's verdict only: no single seed can agree with it.
    untestable = table["verdict"] == NOT_TESTABLE
    table["seeds_agreeing"] = pd.Series(agreeing, index=table.index, dtype="Int64").mask(untestable)
    table["seed_dependent"] = table[per_seed].nunique(axis=1) > 1
    return table


def package_versions() -> str:
    return ", ".join(f"{name} {version(name)}" for name in PACKAGES)
