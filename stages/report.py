"""Stage report: reports/replication.md and the claims table beside it."""

import io
import subprocess
from pathlib import Path

import pandas as pd

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.io import write_json, write_text
from diffusion_circuits.params import load_params
from diffusion_circuits.report.build import claims_table, package_versions
from diffusion_circuits.report.claims import load_claims
from diffusion_circuits.report.inputs import load_report_inputs, report_header
from diffusion_circuits.report.page import figures_in, render_page
from diffusion_circuits.report.render import render_report
from diffusion_circuits.report.summary import summary_lines

CLAIMS_CSV = "reports/replication_claims.csv"


def _git(*args: str) -> str | None:
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def _previous_claims() -> pd.DataFrame | None:
    """The claims table of the last commit (None outside git or before the first report)."""
    text = _git("show", f"HEAD:{CLAIMS_CSV}")
    return pd.read_csv(io.StringIO(text)) if text else None


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    args = parser.parse_args()
    params = load_params(args.params)
    claims = load_claims()
    inputs = load_report_inputs("data", params)
    table = claims_table(claims, inputs)
    commit = (_git("rev-parse", "--short", "HEAD") or "").strip() or "unknown (not a git checkout)"
    header = report_header(params, inputs, commit, package_versions())
    text = render_report(table, claims, header, inputs.n_parameters, _previous_claims(),
                         alpha=params.stats.alpha)  # fmt: skip
    write_text(text, "reports/replication.md")
    figures = dict(figures_in("plots/figures"))
    # This run's models only: grids of other seeds may lie in plots/samples from other runs.
    for dataset in ("synthetic", "natural"):
        for seed in params.train.seeds:
            grid = Path(f"plots/samples/{dataset}-seed{seed}.png")
            if grid.is_file():
                figures[f"samples_{grid.stem}"] = (
                    grid,
                    f"DDIM samples of the {grid.stem} model (EMA weights), "
                    f"{params.samples.grid_size} x {params.samples.grid_size}.",
                )
    tables = {p.stem: pd.read_csv(p) for p in sorted(Path("reports/tables").glob("table*.csv"))}
    summary = "\n".join(summary_lines(table, _previous_claims()))
    write_text(render_page(table, summary, figures, tables, header), "reports/replication.html")
    # Fixed row order (the claims file's) and columns, 6 significant digits: git-diffable.
    write_text(table.to_csv(index=False, float_format="%.6g", lineterminator="\n"), CLAIMS_CSV)
    write_json({"n_claims": len(table), **table["verdict"].value_counts().to_dict()},
               "metrics/report.json")  # fmt: skip


if __name__ == "__main__":
    main()
