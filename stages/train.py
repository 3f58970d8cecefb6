"""Stage train@{dataset}-{seed}: one DDPM per dataset and seed (EMA weights saved)."""

from diffusion_circuits import layout
from diffusion_circuits.cli import model_stage_parser, stage_args, stage_entry


@stage_entry
def main() -> None:
    parser = model_stage_parser(__doc__)
    parser.add_argument("--data-root", default=str(layout.DATA))
    args, params = stage_args(parser)
    # Imported after parsing (torch, diffusers): --help stays fast.
    from diffusion_circuits.io import write_json
    from diffusion_circuits.model.train_run import train_model

    run = train_model(params, args.dataset, args.seed, args.data_root)
    if not run.is_main_process:
        return
    name = layout.model_name(args.dataset, args.seed)
    write_json(run.metrics, layout.stage_metrics("train", name))
    write_json(run.timings, layout.stage_timings("train", name))


if __name__ == "__main__":
    main()
