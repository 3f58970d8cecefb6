"""The Markdown replication report from the claims table."""

from __future__ import annotations

import pandas as pd

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.inconsistencies import (
    documented_inconsistencies,
    find_inconsistencies,
)
from diffusion_circuits.report.summary import fmt_number, paper_text, summary_lines
from diffusion_circuits.report.verdict import ALPHA, rule_text

__all__ = ["render_report"]


def _what(row) -> str:
    parts = [row.quantity, row.dataset, row.target,
             f"t={int(row.timestep)}" if pd.notna(row.timestep) else None]  # fmt: skip
    return " ".join(str(p) for p in parts if isinstance(p, str) and p)


def _claim_lines(table: pd.DataFrame) -> list[str]:
    n_seeds = sum(c.startswith("verdict_seed") for c in table.columns)
    lines = ["| # | claim | where | quantity | paper | ours | 95% CI | unit: CI method | "
             "verdict | seeds agreeing | why; note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for i, row in enumerate(table.itertuples(index=False), start=1):
        ci = (
            f"[{fmt_number(row.ci_low)}, {fmt_number(row.ci_high)}]"
            if pd.notna(row.ci_low)
            else "-"
        )
        method = f"{row.unit}: {row.ci_method}" if row.ci_method else (row.unit or "-")
        same = f" (same as {row.same_as})" if isinstance(row.same_as, str) else ""
        flag = " ⚠ seed-dependent" if row.seed_dependent else ""
        note = "; ".join(x for x in (row.why, row.reason) if x).replace("|", "/")
        lines.append(
            f"| {i} | {row.claim_id}{same} | {row.location} | {_what(row)} | "
            f"{paper_text(row._asdict())} | {fmt_number(row.ours)} | {ci} | {method} | {row.verdict} | "
            f"{'-' if pd.isna(row.seeds_agreeing) else row.seeds_agreeing}/{n_seeds}{flag} | "
            f"{note} |"
        )
    return lines


def render_report(
    table: pd.DataFrame,
    claims: list[Claim],
    header: dict[str, str],
    n_parameters: int,
    previous: pd.DataFrame | None = None,
    *,
    alpha: float = ALPHA,
) -> str:
    """The Markdown report: provenance, the rule, the summary, every claim, inconsistencies.

    ``previous`` is the last committed claims table (None when there is none); ``alpha``
    (``params.stats.alpha``) is printed in the rule.
    """
    lines = ["# Replication report", "",
             "Roy (2025), *Mechanistic Interpretability of Diffusion Models: Circuit-Level "
             "Analysis and Causal Validation* (arXiv 2506.17237), reproduced by the "
             "diffusion-circuits pipeline. Every number below is read from the pipeline's "
             "outputs; the paper's values are data in `paper_claims.yaml`.", "",
             "## What produced these numbers", ""]  # fmt: skip
    lines += [f"- **{key}**: {value}" for key, value in header.items()]
    lines += ["", "## Verdict rule", "", rule_text(alpha), "",
              "Each row states its statistical unit and how its CI was obtained (column "
              "`unit: CI method`); `seeds agreeing` counts the seeds whose pair of models "
              "alone gives the same verdict (docs/VERDICTS.md).", "",
              "## Summary", ""]  # fmt: skip
    lines += summary_lines(table, previous)
    lines += ["", "## Claims", ""] + _claim_lines(table)
    lines += ["", "## Internal inconsistencies of the paper", "",
              "Found by recomputing the paper's own printed numbers:", ""]  # fmt: skip
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
