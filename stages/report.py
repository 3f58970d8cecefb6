"""Stage report: reports/replication.md and the claims table beside it."""

import subprocess

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.io import write_json, write_text
from diffusion_circuits.params import load_params
from diffusion_circuits.report.build import claims_table, package_versions, render_report
from diffusion_circuits.report.claims import load_claims
from diffusion_circuits.report.inputs import load_report_inputs, report_header


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False)  # fmt: skip
    return result.stdout.strip() or "unknown (not a git checkout)"


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--tables", default="reports/tables")
    args = parser.parse_args()
    params = load_params(args.params)
    claims = load_claims()
    inputs = load_report_inputs("data", params, args.tables)
    table = claims_table(claims, inputs)
    header = report_header(params, _commit(), package_versions())
    write_text(render_report(table, claims, header, inputs.n_parameters), "reports/replication.md")
    write_text(table.to_csv(index=False), "reports/replication_claims.csv")
    write_json({"n_claims": len(table), **table["verdict"].value_counts().to_dict()},
               "metrics/report.json")  # fmt: skip


if __name__ == "__main__":
    main()
