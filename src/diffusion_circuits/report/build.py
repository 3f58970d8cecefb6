"""Assemble the replication report: every claim beside our value, CI and verdict."""

from __future__ import annotations

from importlib.metadata import version

import numpy as np
import pandas as pd

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.inconsistencies import (
    documented_inconsistencies,
    find_inconsistencies,
)
from diffusion_circuits.report.measure import ReportInputs, measure
from diffusion_circuits.report.verdict import RELATIVE_TOLERANCE, VERDICTS, verdict

__all__ = ["claims_table", "render_report", "package_versions", "PACKAGES"]

PACKAGES = ("torch", "diffusers", "accelerate", "dvc", "pingouin", "scipy", "numpy", "pandas")


def claims_table(claims: list[Claim], ctx: ReportInputs) -> pd.DataFrame:
    """One row per claim: location, paper value, our value with CI, verdict and reason."""
    rows = []
    for claim in claims:
        ours = measure(claim, ctx)
        result = verdict(claim, ours)
        rows.append({
            "claim_id": claim.id, "location": claim.location, "quantity": claim.quantity,
            "dataset": claim.dataset, "timestep": claim.timestep, "target": claim.target,
            "statistic": claim.statistic, "paper_comparator": claim.comparator,
            "paper_value": claim.value, "paper_sd": claim.sd, "ours": ours.value,
            "ci_low": ours.ci_low, "ci_high": ours.ci_high, "verdict": result,
            "reason": ours.reason or claim.notes, "same_as": claim.same_as,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e4):
        return f"{value:.3g}"
    return f"{value:.4g}"


def _paper(row) -> str:
    text = ("" if row.paper_comparator == "=" else row.paper_comparator) + _number(row.paper_value)
    return text + (f" ± {_number(row.paper_sd)}" if pd.notna(row.paper_sd) else "")


def render_report(
    table: pd.DataFrame, claims: list[Claim], header: dict[str, str], n_parameters: int
) -> str:
    """The Markdown report."""
    counts = table["verdict"].value_counts()
    lines = ["# Replication report", "",
             "Roy (2025), *Mechanistic Interpretability of Diffusion Models: Circuit-Level "
             "Analysis and Causal Validation* (arXiv 2506.17237), reproduced by the "
             "diffusion-circuits pipeline. Every number below is read from the pipeline's "
             "outputs; the paper's values are data in `paper_claims.yaml`.", "",
             "## What produced these numbers", ""]  # fmt: skip
    lines += [f"- **{key}**: {value}" for key, value in header.items()]
    lines += ["", "## Summary", "",
              f"{len(table)} numeric claims: " + ", ".join(
                  f"{counts.get(v, 0)} {v}" for v in VERDICTS) + ".", "",
              "Verdict rule: p-value claims are replicated when our p < 0.05; ratios and "
              "differences when our 95% CI excludes the null on the paper's side (opposite "
              "direction when on the other side); effect sizes when our |d| has the paper's "
              "Cohen label; ranks when equal; bounds when satisfied; other values when the "
              f"paper's value lies in our 95% CI or within {RELATIVE_TOLERANCE:.0%} of our "
              "estimate. CIs are percentile bootstraps over images (the unit with one seed).",
              "", "## Claims", "",
              "| # | where | quantity | paper | ours | 95% CI | verdict | note |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for i, row in enumerate(table.itertuples(index=False), start=1):
        parts = [
            row.quantity,
            row.dataset,
            row.target,
            f"t={int(row.timestep)}" if pd.notna(row.timestep) else None,
        ]
        what = " ".join(str(p) for p in parts if isinstance(p, str) and p)
        ci = f"[{_number(row.ci_low)}, {_number(row.ci_high)}]" if np.isfinite(row.ci_low) else "-"
        note = (row.reason or "").replace("|", "/")
        lines.append(f"| {i} | {row.location} | {what} | {_paper(row)} | {_number(row.ours)} | "
                     f"{ci} | {row.verdict} | {note} |")  # fmt: skip
    lines += [
        "",
        "## Internal inconsistencies of the paper",
        "",
        "Found by recomputing the paper's own printed numbers:",
        "",
    ]
    computed = find_inconsistencies(claims, n_parameters)
    for item in computed:
        lines.append(f"- **{item['id']}** ({', '.join(item['claim_ids'])}): {item['description']}")
    seen = {item["id"] for item in computed}
    noted = [item for item in documented_inconsistencies(claims) if item["id"] not in seen]
    if noted:
        lines += ["", "Further inconsistencies noted when the claims were extracted "
                  "(`paper_inconsistencies.yaml`, with their severity):", ""]  # fmt: skip
        for item in noted:
            lines.append(
                f"- **{item['id']}** ({item['severity']}): {' '.join(item['description'].split())}"
            )
    return "\n".join(lines) + "\n"


def package_versions() -> str:
    return ", ".join(f"{name} {version(name)}" for name in PACKAGES)
