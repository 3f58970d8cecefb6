"""Stage feature_net@{dataset}: the sample-quality feature network and the real-vs-real ceiling."""

from diffusion_circuits import layout
from diffusion_circuits.cli import model_stage_args, stage_entry


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__, seed=False)
    # Imported after parsing (torch): --help stays fast.
    from diffusion_circuits.analysis.sample_quality import fit_feature_net, save_feature_space
    from diffusion_circuits.io import write_json

    feature_space, metrics = fit_feature_net(params, args.dataset)
    save_feature_space(feature_space, layout.features_dir(args.dataset))
    write_json(metrics, layout.stage_metrics("feature_net", args.dataset))


if __name__ == "__main__":
    main()
