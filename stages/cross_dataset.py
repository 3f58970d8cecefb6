"""Stage cross_dataset: cross accuracy, feature transferability (CKA), cross-model patching."""

import time

import pandas as pd

from diffusion_circuits.analysis.circuits import circuit_robustness
from diffusion_circuits.analysis.cross_dataset import (
    cross_accuracy,
    cross_model_patching,
    feature_transferability,
    summarise_cross,
)
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.io import write_json, write_parquet
from diffusion_circuits.model.training import cpu_supports_bf16
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--seed", type=int, default=None, help="model seed (default: first)")
    args = parser.parse_args()
    params = load_params(args.params)
    seed = params.train.seeds[0] if args.seed is None else args.seed
    started = time.perf_counter()
    models = [load_trained(params, dataset, seed) for dataset in ("synthetic", "natural")]
    common = dict(
        timesteps=params.probe.timesteps, seed=params.probe.seed, batch_size=params.probe.batch_size
    )
    accuracy = cross_accuracy(models, **common)
    summary = summarise_cross(accuracy)
    cka = feature_transferability(models, **common)
    bf16 = params.analyze.mixed_precision == "bf16" and cpu_supports_bf16()
    patching = cross_model_patching(models, **common, autocast_bf16=bf16)
    tops = pd.concat(
        [
            pd.read_parquet(f"data/analysis/{d}-seed{seed}/top_components.parquet")
            for d in ("synthetic", "natural")
        ]
    )
    robustness = circuit_robustness(tops)
    for table_name, table in {
        "accuracy": accuracy,
        "summary": summary,
        "cka": cka,
        "patching": patching,
        "robustness": robustness,
    }.items():
        write_parquet(table.assign(seed=seed), f"data/cross_dataset/{table_name}.parquet")
    write_json(
        {
            "seconds": time.perf_counter() - started,
            "cross_dataset_accuracy": summary["value"].mean(),
            "feature_transferability": cka["value"].mean(),
            "circuit_robustness": robustness.loc[
                robustness.comparison == "across_datasets", "value"
            ].mean(),
        },
        "metrics/cross_dataset.json",
    )


if __name__ == "__main__":
    main()
