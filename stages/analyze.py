"""Stage analyze@{dataset}-{seed}: interventions, circuit complexity and head roles."""

import time

from diffusion_circuits import layout
from diffusion_circuits.cli import model_stage_args, stage_entry


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    started = time.perf_counter()
    # Imported after parsing (torch, diffusers): --help stays fast.
    from diffusion_circuits.analysis.model_analysis import analyze_model
    from diffusion_circuits.io import write_json, write_npz, write_parquet

    out = layout.analysis_dir(args.dataset, args.seed)
    analysis = analyze_model(params, args.dataset, args.seed)
    # the intact samples from the common noise: cross_dataset's seed-swap yardstick
    write_npz(out / "share_intact_samples.npz", samples=analysis.intact_samples.numpy())
    for table_name, table in analysis.tables.items():
        write_parquet(table, out / f"{table_name}.parquet")
    write_json(analysis.metrics, layout.stage_metrics("analyze", args.name))
    write_json(
        {"seconds": time.perf_counter() - started}, layout.stage_timings("analyze", args.name)
    )


if __name__ == "__main__":
    main()
