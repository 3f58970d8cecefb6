"""The replication report as one self-contained HTML page (Jinja2, figures inlined).

The page opens offline from a single file: styles are inline, figures are base64 PNG
``data:`` URIs and nothing is fetched. It reads top-down as a person would: one sentence
with the verdict counts first, then the findings that matter most as a list, what changed,
the paper's abstract-level claims, then the figures and tables that back them, every
claim with its verdict, and where the data came from. Each verdict links to the figure or
table that shows the measurement. Everything on it is built from structured data (the
claims table, figure files, table frames): Markdown is rendered only for single notes and
captions, so no ``###`` or ``|---|`` reaches the reader. Tables longer than
:data:`LONG_TABLE_ROWS` rows fold into ``<details>``; wide ones scroll inside their box.
"""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import pandas as pd

from diffusion_circuits.report.build import CLAIM_COLUMNS
from diffusion_circuits.report.headline import VERDICT_GROUPS, verdict_sentence
from diffusion_circuits.report.summary import (
    FINDING_ORDER,
    changed_verdicts,
    seed_dependent,
    shared_test_lines,
    top_findings,
)

__all__ = ["LONG_TABLE_ROWS", "render_page", "figures_in"]

# Verdict -> CSS class: agreement green, evidence against red, the rest grey.
VERDICT_CLASSES = {
    **{v: "ok" for v in VERDICT_GROUPS["agree"]},
    **{v: "bad" for v in VERDICT_GROUPS["against"]},
}
# A table with more rows than this is folded (<details>), so the page stays scannable.
LONG_TABLE_ROWS = 12


@functools.cache
def _markdown():
    # markdown-it-py comes with the pipeline extra: imported only when a page is rendered
    from markdown_it import MarkdownIt

    # CommonMark with GFM tables; raw HTML in the text is escaped, never passed through.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_block(text: str) -> markupsafe.Markup:
    """Markdown (the summary: headings, lists, tables, emphasis) as safe HTML."""
    return markupsafe.Markup(_markdown().render(text or ""))


def markdown_inline(text: str) -> markupsafe.Markup:
    """One line of Markdown (a note, a caption) as safe inline HTML."""
    return markupsafe.Markup(_markdown().renderInline(str(text or "")))


# Where each claimed quantity is shown, when the claim's location names no table or
# figure: a table or figure name prefix, or "provenance" for set-up quantities.
QUANTITY_EVIDENCE = {
    "table4": "table4", "all_metrics_p": "table4", "effect_size_range": "table4",
    "power": "figure2", "role_entropy": "table2", "head_specialisation": "table2",
    "n_head_roles": "table2", "head_entropy_range": "table2", "head_importance": "figure4",
    "circuit_complexity": "table1", "circuit_complexity_ratio": "table1",
    "circuit_complexity_increase": "table1", "layer_ablation": "table3",
    "intervention_impact_range": "table3", "accuracy": "figure3",
    "cross_dataset_accuracy": "figure8", "feature_transferability": "figure8",
    "entropy_divergence": "figure8", "specialisation_divergence": "figure8",
    "feature_complexity": "figure5", "phase_feature_complexity": "figure5",
    "phase_timesteps": "figure5", "processing_phases": "figure5",
    "information_flow_efficiency": "figure6", "circuit_robustness": "figure7",
    "sample_size": "provenance", "model": "provenance", "timesteps_total": "provenance",
    "ci_level": "provenance", "n_synthetic_attributes": "provenance",
}  # fmt: skip

_LOCATION = re.compile(r"\b(Table|Figure) (\d+)\b")


def figures_in(folder: str | Path) -> dict[str, tuple[Path, str]]:
    """Every ``<name>.png`` of a folder with the caption saved beside it (``<name>.txt``).

    Returns name -> (PNG path, caption), in name order; a missing caption is "".
    """
    entries = {}
    for png in sorted(Path(folder).glob("*.png")):
        caption = png.with_suffix(".txt")
        entries[png.stem] = (png, caption.read_text().strip() if caption.is_file() else "")
    return entries


def _number(value: Any) -> str:
    """4 significant digits; blank for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, int | float):
        return f"{value:.4g}"
    return str(value)


def _evidence(row: Mapping[str, Any], anchors: set[str]) -> str | None:
    """The anchor of the figure or table showing a claim's measurement, if on the page."""

    def named(prefix: str) -> str | None:
        if prefix in anchors:
            return prefix
        # "table1" -> "table1_circuit_complexity"; "figure3" -> "figure3_dataset_comparison"
        return next((a for a in sorted(anchors) if a.startswith(f"{prefix}_")), None)

    candidates = []
    if isinstance(row.get("evidence"), str):
        candidates.append(row["evidence"])
    for kind, number in _LOCATION.findall(str(row.get("location", ""))):
        candidates.append(f"{kind.lower()}{number}")
    quantity = str(row.get("quantity", ""))
    candidates += [target for key, target in QUANTITY_EVIDENCE.items()
                   if quantity == key or quantity.startswith(f"{key}_")]  # fmt: skip
    for candidate in candidates:
        found = named(candidate)
        if found:
            return found
    return None


def _claim_rows(claims: pd.DataFrame, anchors: set[str]) -> list[dict[str, Any]]:
    rows = []
    for number, row in enumerate(claims.to_dict("records"), start=1):
        scope = " ".join(
            str(row[k]) if k != "timestep" else f"t={_number(row[k])}"
            for k in ("dataset", "timestep", "target")
            if _number(row.get(k))
        )
        paper = f"{row.get('paper_comparator', '') or ''}{_number(row.get('paper_value'))}"
        if _number(row.get("paper_sd")):
            paper += f" ± {_number(row['paper_sd'])}"
        low, high = _number(row.get("ci_low")), _number(row.get("ci_high"))
        verdict = str(row.get("verdict", ""))
        rows.append({
            "id": f"claim-{row.get('claim_id', number)}", "number": number,
            "location": row.get("location", ""),
            "quantity": f"{row.get('quantity', '')} {scope}".strip(),
            "paper": paper.lstrip("="), "ours": _number(row.get("ours")),
            "ci": f"[{low}, {high}]" if low and high else "",
            "verdict": verdict, "verdict_class": VERDICT_CLASSES.get(verdict, "na"),
            "evidence": _evidence(row, anchors), "note": row.get("reason") or "",
            "headline": bool(row.get("headline", str(row.get("location", "")).startswith("Abstract"))),
        })  # fmt: skip
    return rows


def _heading(name: str) -> str:
    """``figure3_dataset_comparison`` -> ``Figure 3: dataset comparison``."""
    match = re.fullmatch(r"([a-z]+)(\d+)_?(.*)", name)
    if not match:
        return name.replace("_", " ")
    kind, number, rest = match.groups()
    return f"{kind.capitalize()} {number}" + (f": {rest.replace('_', ' ')}" if rest else "")


def _figure(name: str, entry: Any) -> dict[str, str]:
    path, caption = entry if isinstance(entry, tuple) else (entry["path"], entry["caption"])
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    heading = _heading(name)
    return {"id": name, "heading": heading, "caption": caption, "src": f"data:image/png;base64,{data}"}  # fmt: skip


def _rows(table: pd.DataFrame) -> list[list[str]]:
    return [[_number(v) for v in row] for row in table.itertuples(index=False)]


def _table(name: str, table: pd.DataFrame | str) -> dict[str, Any]:
    heading = _heading(name)
    if isinstance(table, str):  # preformatted Markdown (e.g. a table file): rendered as is
        return {"id": name, "heading": heading, "text": table, "columns": [], "rows": [],
                "long": table.count("\n") > LONG_TABLE_ROWS}  # fmt: skip
    return {"id": name, "heading": heading, "text": None,
            "columns": [str(c) for c in table.columns], "rows": _rows(table),
            "long": len(table) > LONG_TABLE_ROWS}  # fmt: skip


def _counts_sentence(verdicts: pd.Series, what: str) -> str:
    counts = verdicts.value_counts()
    order = [v for v in FINDING_ORDER if v in counts] + [
        v for v in counts.index if v not in FINDING_ORDER
    ]
    return f"{len(verdicts)} {what}: " + ", ".join(f"{counts[v]} {v}" for v in order) + "."


def _summary_sections(claims: pd.DataFrame, previous: pd.DataFrame | None) -> dict[str, Any]:
    """The summary of ``reports/replication.md``, as data for the template (no Markdown).

    Needs the full claims table (:data:`CLAIM_COLUMNS`, ``verdict_seed*``); a reduced
    table gets the verdict sentence and counts only.
    """
    if not set(CLAIM_COLUMNS) <= set(claims.columns):
        return {}
    changed = changed_verdicts(claims, previous)
    if previous is None:
        changed_text = "None: no previous committed claims table."
    elif changed.empty:
        changed_text = "None: every verdict equals the last committed report's."
    else:
        changed_text = f"{len(changed)} claim{'s' if len(changed) > 1 else ''} changed verdict:"
    dependent = seed_dependent(claims)
    seeds = [c for c in claims.columns if c.startswith("verdict_seed")]
    return {
        "distinct": _counts_sentence(
            claims.loc[claims["same_as"].isna(), "verdict"],
            "distinct assertions (a claim repeated by the paper, or making the same "
            "assertion about the same test, counts once)"),
        "findings": top_findings(claims),
        "changed_text": changed_text,
        "changed": {"columns": ["claim", "before", "after"], "rows": _rows(changed),
                    "long": len(changed) > LONG_TABLE_ROWS},
        "shared_tests": shared_test_lines(claims),
        "seeds_text": f"Verdicts recomputed on each seed's pair of models alone ({len(seeds)} "
                      f"seed(s), image unit): {len(dependent)} claims change verdict with the seed.",
        "seed_dependent": {"columns": ["claim", "verdict", *seeds], "rows": _rows(dependent),
                           "long": len(dependent) > LONG_TABLE_ROWS},
    }  # fmt: skip


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("diffusion_circuits.report", "templates"),
        autoescape=True,  # plain text is escaped; Markdown goes through markdown-it (no raw HTML)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["markdown"] = markdown_block
    environment.filters["markdown_inline"] = markdown_inline
    return environment


def render_page(
    claims: pd.DataFrame,
    summary: str | Mapping[str, str] | None,
    figures: Mapping[str, tuple[str | Path, str] | Mapping[str, Any]],
    tables: Mapping[str, pd.DataFrame | str],
    provenance: Mapping[str, str],
    title: str = "Replication report",
    previous: pd.DataFrame | None = None,
) -> str:
    """Render the replication report as one self-contained HTML page.

    Parameters
    ----------
    claims : pd.DataFrame
        The claims table (``reports/replication_claims.csv`` columns): ``claim_id``,
        ``location``, ``quantity``, ``dataset``, ``timestep``, ``target``,
        ``paper_comparator``, ``paper_value``, ``paper_sd``, ``ours``, ``ci_low``,
        ``ci_high``, ``verdict``, ``reason``; optional ``evidence`` (the figure or table
        name that shows the claim) and ``headline`` (bool; by default the claims of the
        paper's abstract). Missing optional columns are fine.
    summary : str, mapping or None
        None (the pipeline's page): the summary is built from ``claims`` itself (the
        findings that matter most as a list, changed verdicts, shared tests, seed
        robustness). Otherwise extra headline text: Markdown (rendered by markdown-it-py,
        raw HTML escaped), or label -> finding (each a line of Markdown).
    figures : mapping
        Figure name (its anchor, e.g. ``figure3_dataset_comparison``) -> ``(png_path,
        caption)`` or ``{"path": ..., "caption": ...}``; :func:`figures_in` reads a folder.
    tables : mapping
        Table name (its anchor, e.g. ``table1_circuit_complexity``) -> DataFrame, or
        preformatted text.
    provenance : mapping
        Label -> value: data sources, sizes, packages, commit.
    title : str
        Page title.
    previous : pd.DataFrame, optional
        The last committed claims table, for "verdicts changed since" (``summary=None``).

    Returns
    -------
    str
        The HTML document. Each verdict links to the figure or table with the claim's
        measurement (from ``evidence``, a "Table N"/"Figure N" in ``location``, or the
        quantity), or to the provenance for set-up quantities; verdicts with no
        matching figure or table on the page are not linked.
    """
    figure_items = [_figure(name, entry) for name, entry in figures.items()]
    table_items = [_table(name, table) for name, table in tables.items()]
    anchors = {f["id"] for f in figure_items} | {t["id"] for t in table_items} | {"provenance"}
    rows = _claim_rows(claims, anchors)
    verdicts = pd.Series([r["verdict"] for r in rows], dtype=object)
    # agreement, evidence against, absence of evidence, then what could not be tested
    grouped = [v for members in VERDICT_GROUPS.values() for v in members]
    counts = verdicts.value_counts()
    counts = counts.reindex(sorted(counts.index, key=lambda v: (grouped + [v]).index(v)))
    if summary is None:
        summary_text, findings, sections = "", {}, _summary_sections(claims, previous)
    elif isinstance(summary, str):
        summary_text, findings, sections = summary, {}, {}
    else:
        summary_text, findings, sections = "", dict(summary), {}
    return (
        _environment()
        .get_template("replication.html.j2")
        .render(
            title=title,
            verdict_sentence=verdict_sentence(verdicts),
            sections=sections,
            summary=summary_text,
            findings=findings,
            counts=[(v, int(n), VERDICT_CLASSES.get(v, "na")) for v, n in counts.items()],
            n_claims=len(rows),
            headline=[r for r in rows if r["headline"]],
            claims=rows,
            figures=figure_items,
            tables=table_items,
            provenance=dict(provenance),
        )
    )
