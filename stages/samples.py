"""Stage samples@{dataset}-{seed}: DDIM samples (EMA weights), a PNG grid, sample quality."""

from diffusion_circuits import layout
from diffusion_circuits.cli import model_stage_args, stage_entry


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    # Imported after parsing (torch, diffusers): --help stays fast.
    from diffusion_circuits.analysis.model_samples import sample_model
    from diffusion_circuits.io import write_json, write_npz, write_parquet
    from diffusion_circuits.model.sampling import save_sample_grid

    out = layout.samples_dir(args.dataset, args.seed)
    result = sample_model(params, args.dataset, args.seed)
    write_npz(out / "samples.npz", samples=result.samples.half().numpy())
    grid = params.samples.grid_size
    save_sample_grid(result.samples[: grid**2], grid, layout.sample_grid(args.dataset, args.seed))
    if not result.attributes.empty:
        write_parquet(result.attributes, out / "attributes.parquet")
    write_json(result.metrics, layout.stage_metrics("samples", args.name))


if __name__ == "__main__":
    main()
