"""Stage cache_activations@{dataset}-{seed}: per-image activation and attention summaries."""

import time

from diffusion_circuits import layout
from diffusion_circuits.cli import model_stage_args, stage_entry


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    started = time.perf_counter()
    # Imported after parsing (torch, diffusers): --help stays fast.
    from diffusion_circuits.analysis.activation_cache import cache_model
    from diffusion_circuits.io import write_json, write_npz, write_parquet

    out = layout.cache_dir(args.dataset, args.seed)
    cache = cache_model(params, args.dataset, args.seed)
    mib = sum(table.memory_usage().sum() for table in cache.tables.values()) / 2**20
    print(f"cache_activations: writing about {mib:.1f} MiB of tables")
    for table_name, table in cache.tables.items():
        write_parquet(table, out / f"{table_name}.parquet")
    write_npz(out / "saliency.npz", **cache.saliency)
    write_npz(out / "figure_tensors.npz", **cache.figure_tensors)
    write_json(cache.metrics, layout.stage_metrics("cache", args.name))
    write_json({"seconds": time.perf_counter() - started}, layout.stage_timings("cache", args.name))


if __name__ == "__main__":
    main()
