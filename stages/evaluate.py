"""Stage evaluate@{dataset}-{seed}: held-out accuracy(t) beside the no-learning baselines."""

from diffusion_circuits import layout
from diffusion_circuits.cli import model_stage_args, stage_entry


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    # Imported after parsing (torch, diffusers): --help stays fast.
    from diffusion_circuits.analysis.evaluation import evaluate_model
    from diffusion_circuits.io import write_json, write_parquet

    accuracy, metrics = evaluate_model(params, args.dataset, args.seed)
    write_parquet(accuracy, layout.eval_dir(args.dataset, args.seed) / "accuracy.parquet")
    write_json(metrics, layout.stage_metrics("evaluate", args.name))


if __name__ == "__main__":
    main()
