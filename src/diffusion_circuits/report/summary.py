"""The report's summary, generated from the claims table (nothing typed in).

- counts per verdict, over every row and over distinct assertions (rows without ``same_as``);
- claims whose verdict changed since the previous committed claims table;
- one line per stats test that several claims refer to;
- claims whose verdict depends on the training seed;
- the five findings that matter most, chosen by :func:`top_findings`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffusion_circuits.report.verdict import (
    CONSISTENT,
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_TESTABLE,
    OPPOSITE,
    REPLICATED,
    VERDICTS,
)

__all__ = ["changed_verdicts", "seed_dependent", "shared_test_lines", "summary_lines",
           "top_findings", "FINDING_ORDER"]  # fmt: skip

# Severity order of verdicts for the findings: evidence against the paper first, then
# the absence of evidence, then agreement.
FINDING_ORDER = (OPPOSITE, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, REPLICATED, CONSISTENT)
HEADLINE = ("Abstract", "6 Conclusion")


def fmt_number(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e4):
        return f"{value:.3g}"
    return f"{value:.4g}"


def paper_text(row) -> str:
    comparator = "" if row["paper_comparator"] == "=" else row["paper_comparator"]
    sd = f" ± {fmt_number(row['paper_sd'])}" if pd.notna(row["paper_sd"]) else ""
    return f"{comparator}{fmt_number(row['paper_value'])}{sd}"


def _ours(row) -> str:
    ci = ""
    if pd.notna(row["ci_low"]) and pd.notna(row["ci_high"]):
        ci = f" [{fmt_number(row['ci_low'])}, {fmt_number(row['ci_high'])}]"
    unit = f", {row['unit']} unit" if row["unit"] else ""
    p = f", p_holm {row['p_adj']}" if row["p_adj"] else ""
    return f"{fmt_number(row['ours'])}{ci}{unit}{p}"


def changed_verdicts(table: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """``claim_id, before, after`` for claims whose verdict differs from ``previous``.

    Claims new since ``previous`` have ``before`` "(new)". Empty when ``previous`` is None.
    """
    if previous is None:
        return pd.DataFrame(columns=["claim_id", "before", "after"])
    if not {"claim_id", "verdict"} <= set(previous.columns):
        raise ValueError("previous claims table needs columns claim_id and verdict")
    before = previous.drop_duplicates("claim_id").set_index("claim_id")["verdict"]
    after = table.set_index("claim_id")["verdict"]
    old = before.reindex(after.index).fillna("(new)")
    changed = old != after
    return pd.DataFrame({"claim_id": after.index[changed], "before": old[changed].to_numpy(),
                         "after": after[changed].to_numpy()})  # fmt: skip


def top_findings(table: pd.DataFrame, n: int = 5) -> list[str]:
    """The ``n`` findings that matter most, in plain words.

    Rule: among distinct assertions (no ``same_as``) with a judged verdict (not "not
    comparable"), order by (1) headline claims first (Abstract, Conclusion), (2) claims
    about datasets / model families first, (3) verdict severity :data:`FINDING_ORDER`,
    (4) the paper's order; take at most one claim per stats test.
    """
    rows = table[table["same_as"].isna() & table["verdict"].isin(FINDING_ORDER)].copy()
    rows["headline"] = ~rows["location"].str.startswith(HEADLINE)
    rows["general"] = ~rows["model_level"].astype(bool)
    rows["severity"] = rows["verdict"].map(FINDING_ORDER.index)
    rows["order"] = np.arange(len(rows))
    rows = rows.sort_values(["headline", "general", "severity", "order"])
    findings, seen = [], set()
    for _, row in rows.iterrows():
        tests = row["tests"] or row["claim_id"]
        if tests in seen:
            continue
        seen.add(tests)
        text = (f"**{row['verdict']}** — {row['location']} ({row['claim_id']}): the paper "
                f"reports {paper_text(row)}; we measure {_ours(row)}. {row['why']}.")  # fmt: skip
        alone = sorted({row[c] for c in row.index if c.startswith("verdict_seed")})
        if row["verdict"] == NOT_TESTABLE and alone:
            text += f" Each seed's models alone: {' / '.join(alone)} (not a finding about the datasets)."
        findings.append(text)
        if len(findings) == n:
            break
    return findings


def shared_test_lines(table: pd.DataFrame) -> list[str]:
    """One line per stats test that several claims refer to, with each claim's verdict."""
    lines = []
    for tests, part in table[table["tests"] != ""].groupby("tests", sort=False):
        if len(part) < 2:
            continue
        claims = ", ".join(f"{r.claim_id} ({r.verdict})" for r in part.itertuples())
        lines.append(f"`{tests}`: {claims}")
    return lines


def seed_dependent(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose verdict differs between the seeds (with the per-seed verdict columns)."""
    columns = [c for c in table.columns if c.startswith("verdict_seed")]
    return table.loc[table["seed_dependent"], ["claim_id", "verdict", *columns]]


def summary_lines(table: pd.DataFrame, previous: pd.DataFrame | None) -> list[str]:
    """Markdown lines of the summary section."""
    counts = table["verdict"].value_counts()
    distinct = table.loc[table["same_as"].isna(), "verdict"].value_counts()
    seeds = [c for c in table.columns if c.startswith("verdict_seed")]
    lines = [f"{len(table)} numeric claims: "
             + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + ".", "",
             f"{int(table['same_as'].isna().sum())} distinct assertions (a claim repeated by "
             "the paper or making the same assertion about the same test counts once): "
             + ", ".join(f"{distinct.get(v, 0)} {v}" for v in VERDICTS) + ".", "",
             "### The five findings that matter most", "",
             "_Chosen by rule: headline claims (Abstract, Conclusion) first, then claims "
             "about datasets or model families, then by severity (" + ", ".join(FINDING_ORDER)
             + "), then the paper's order; one per test._",
             ""]  # fmt: skip
    lines += [f"{i}. {text}" for i, text in enumerate(top_findings(table), start=1)]
    lines += ["", "### Verdicts changed since the last committed report", ""]
    changes = changed_verdicts(table, previous)
    if previous is None:
        lines.append("None: no previous committed claims table.")
    elif changes.empty:
        lines.append("None: every verdict equals the last committed report's.")
    else:
        lines += [f"{len(changes)} claims changed verdict:", "", "| claim | before | after |",
                  "|---|---|---|"]  # fmt: skip
        lines += [f"| {r.claim_id} | {r.before} | {r.after} |" for r in changes.itertuples()]
    lines += ["", "### One test, one verdict", "",
              "Claims that refer to the same stats test (column `tests`):", ""]  # fmt: skip
    lines += [f"- {line}" for line in shared_test_lines(table)] or ["- none"]
    lines += ["", "### Robustness across training seeds", ""]
    dependent = seed_dependent(table)
    lines.append(f"Verdicts recomputed on each seed's pair of models alone ({len(seeds)} "
                 f"seed(s), image unit): {len(dependent)} claims change verdict with the seed"
                 + (":" if len(dependent) else "."))  # fmt: skip
    if len(dependent):
        lines += ["", "| claim | verdict | " + " | ".join(seeds) + " |",
                  "|---|---|" + "---|" * len(seeds)]  # fmt: skip
        lines += ["| " + " | ".join(str(v) for v in r) + " |"
                  for r in dependent.itertuples(index=False)]  # fmt: skip
    return lines
