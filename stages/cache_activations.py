"""Stage cache_activations@{dataset}-{seed}: per-image activation and attention summaries."""

import time

from diffusion_circuits.analysis.activations import summarise_activations
from diffusion_circuits.analysis.figure_tensors import figure_tensors
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.cli import model_stage_args, stage_entry
from diffusion_circuits.io import write_json, write_npz, write_parquet


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    name = args.name
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
            "n_distinct_sources": int(
                model.faces.attributes.set_index("image_id")
                .loc[model.probe_set.image_ids, "source_id"]
                .nunique()
            ),
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
