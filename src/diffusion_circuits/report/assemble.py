"""The report stage's work: the report as Markdown and HTML, its claims table and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from diffusion_circuits import layout
from diffusion_circuits.params import Params
from diffusion_circuits.report.build import claims_table, package_versions
from diffusion_circuits.report.claims import load_claims
from diffusion_circuits.report.history import committed_claims, head_commit
from diffusion_circuits.report.inputs import load_report_inputs, report_header
from diffusion_circuits.report.page import figures_in, render_page
from diffusion_circuits.report.render import render_report

__all__ = ["Report", "build_report"]


@dataclass(frozen=True)
class Report:
    markdown: str  # reports/replication.md
    html: str  # reports/replication.html
    claims_csv: str  # reports/replication_claims.csv
    metrics: dict[str, Any]  # metrics/report.json


def _sample_grids(params: Params) -> dict[str, tuple]:
    """This run's models only: grids of other seeds may lie in plots/samples from other runs."""
    grids = {}
    for dataset in layout.DATASETS:
        for seed in params.train.seeds:
            grid = layout.sample_grid(dataset, seed)
            if grid.is_file():
                grids[f"samples_{grid.stem}"] = (
                    grid,
                    f"DDIM samples of the {grid.stem} model (EMA weights), "
                    f"{params.samples.grid_size} x {params.samples.grid_size}.",
                )
    return grids


def build_report(params: Params) -> Report:
    claims = load_claims()
    inputs = load_report_inputs(layout.DATA, params)
    table = claims_table(claims, inputs)
    header = report_header(params, inputs, head_commit(), package_versions())
    previous = committed_claims(layout.CLAIMS_CSV)
    markdown = render_report(table, claims, header, inputs.n_parameters, previous,
                             alpha=params.stats.alpha)  # fmt: skip
    figures = {**figures_in(layout.FIGURES_DIR), **_sample_grids(params)}
    tables = {p.stem: pd.read_csv(p) for p in sorted(layout.TABLES_DIR.glob("table*.csv"))}
    return Report(
        markdown=markdown,
        # the page builds its summary from the table (headline sentence, findings, changes)
        html=render_page(table, None, figures, tables, header, previous=previous),
        # Fixed row order (the claims file's) and columns, 6 significant digits: git-diffable.
        claims_csv=table.to_csv(index=False, float_format="%.6g", lineterminator="\n"),
        metrics={"n_claims": len(table), **table["verdict"].value_counts().to_dict()},
    )
