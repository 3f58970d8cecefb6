"""Stage stats: dataset comparisons with pingouin/scipy; Tables 1-4 as CSV and Markdown."""

from pathlib import Path

from diffusion_circuits import layout
from diffusion_circuits.cli import stage_args, stage_entry, stage_parser


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default=str(layout.TABLES_DIR))
    args, params = stage_args(parser)
    # Imported after parsing (pandas, scipy, pingouin): --help stays fast.
    from diffusion_circuits.io import write_json, write_parquet, write_text
    from diffusion_circuits.stats.study_outputs import study_outputs

    outputs = study_outputs(params, layout.DATA)
    for file_name, text in outputs.table_files.items():
        write_text(text, Path(args.out) / file_name)
    write_parquet(outputs.comparisons, layout.stats_dir() / "comparisons.parquet")
    write_parquet(outputs.inference, layout.stats_dir() / "inference.parquet")
    write_json(outputs.metrics, layout.stage_metrics("stats"))


if __name__ == "__main__":
    main()
