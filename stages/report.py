"""Stage report: reports/replication.md and the claims table beside it, and
metrics/summary.json, the few headline numbers that `dvc exp show` compares across runs."""

from diffusion_circuits import layout
from diffusion_circuits.cli import stage_args, stage_entry, stage_parser


@stage_entry
def main() -> None:
    args, params = stage_args(stage_parser(__doc__))
    # Imported after parsing (diffusers, pandas): --help stays fast.
    import io

    import pandas as pd

    from diffusion_circuits.io import write_json, write_text
    from diffusion_circuits.report.assemble import build_report
    from diffusion_circuits.report.headline import summary_metrics

    report = build_report(params)
    write_text(report.markdown, layout.REPORT_MARKDOWN)
    write_text(report.html, layout.REPORT_HTML)
    write_text(report.claims_csv, layout.CLAIMS_CSV)
    write_json(report.metrics, layout.stage_metrics("report"))
    # Read back from the CSV just written: the summary sees exactly the committed claims.
    claims = pd.read_csv(io.StringIO(report.claims_csv))
    write_json(summary_metrics(claims, params.train.seeds), layout.SUMMARY_METRICS)


if __name__ == "__main__":
    main()
