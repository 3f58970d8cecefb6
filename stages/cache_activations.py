"""Stage cache_activations@{dataset}-{seed}: per-image activation and attention summaries."""

import time

from diffusion_circuits.analysis.activations import summarise_activations
from diffusion_circuits.analysis.figure_tensors import figure_tensors
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.io import write_json, write_npz, write_parquet
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--dataset", required=True, choices=["synthetic", "natural"])
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    name = f"{args.dataset}-seed{args.seed}"
    out = f"data/cache/{name}"
    started = time.perf_counter()
    model = load_trained(params, args.dataset, args.seed)
    summaries = summarise_activations(
        model.unet,
        model.scheduler,
        model.probe_set,
        params.probe.timesteps,
        seed=params.probe.seed,
        batch_size=params.probe.batch_size,
        ife_bins=params.analyze.ife_bins,
    )
    tensors = figure_tensors(model, params)
    tables = {
        "activations": summaries.activations,
        "attention": summaries.attention,
        "information_flow": summaries.information_flow,
    }
    print(
        f"cache_activations: writing about {sum(t.memory_usage().sum() for t in tables.values()) / 2**20:.1f} MiB of tables"
    )
    for table_name, table in tables.items():
        table.insert(0, "dataset", args.dataset)
        table.insert(1, "seed", args.seed)
        write_parquet(table, f"{out}/{table_name}.parquet")
    write_npz(f"{out}/saliency.npz", **summaries.saliency)
    write_npz(f"{out}/figure_tensors.npz", **tensors)
    write_json(
        {
            "n_images": len(model.probe_set.image_ids),
            "image_selection": model.probe_set.selection,
            "rows": {k: len(v) for k, v in tables.items()},
            # IFE is chance-adjusted; bins per grid are capped at sqrt(positions).
            "information_flow_bins": sorted(
                int(b) for b in summaries.information_flow["bins"].unique()
            ),
        },
        f"metrics/cache/{name}.json",
    )
    write_json({"seconds": time.perf_counter() - started}, f"timings/cache/{name}.json")


if __name__ == "__main__":
    main()
