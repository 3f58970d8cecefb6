"""Stage stats: dataset comparisons with pingouin/scipy; Tables 1-4 as CSV and Markdown."""

from pathlib import Path

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.io import write_json, write_parquet, write_text
from diffusion_circuits.params import load_params
from diffusion_circuits.stats.attention_share import (
    attention_share_markdown,
    attention_share_tables,
    with_sample_impact,
)
from diffusion_circuits.stats.loading import load_study_inputs
from diffusion_circuits.stats.study import study_statistics
from diffusion_circuits.stats.summary import stats_metrics, table_captions
from diffusion_circuits.stats.tables import to_markdown


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", default="reports/tables")
    args = parser.parse_args()
    params = load_params(args.params)
    inputs = load_study_inputs("data", params.train.seeds)
    tables, comparisons = study_statistics(
        inputs,
        n_resamples=params.stats.n_resamples,
        seed=params.stats.seed,
        confidence=params.stats.confidence,
        alpha=params.stats.alpha,
    )
    out = Path(args.out)
    share = attention_share_tables("data", params.train.seeds)
    tables["table3_layer_ablation"] = with_sample_impact(
        tables["table3_layer_ablation"], share["sample_impact"]
    )
    captions = table_captions()
    inference = tables.pop("inference")
    for name, table in tables.items():
        write_text(table.to_csv(index=False), out / f"{name}.csv")
        if name in captions:
            write_text(to_markdown(table, captions[name]), out / f"{name}.md")
    for name, table in share.items():
        write_text(table.to_csv(index=False), out / f"{name}.csv")
    write_text(
        attention_share_markdown(share["attention_share"], share["sample_impact"]),
        out / "attention_share.md",
    )
    write_parquet(comparisons, "data/stats/comparisons.parquet")
    write_parquet(inference, "data/stats/inference.parquet")
    write_json(stats_metrics(tables), "metrics/stats.json")


if __name__ == "__main__":
    main()
