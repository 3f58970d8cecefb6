"""Stage samples@{dataset}-{seed}: DDIM samples (EMA weights), a PNG grid, sample quality."""

from pathlib import Path

from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.analysis.sample_quality import (
    attribute_fidelity,
    load_feature_space,
    max_frequency_error,
    quality_scores,
)
from diffusion_circuits.cli import model_stage_args, stage_entry
from diffusion_circuits.data.store import heldout_originals
from diffusion_circuits.io import read_json, write_json, write_npz, write_parquet
from diffusion_circuits.model.sampling import sample_trajectory, save_sample_grid


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    cfg = params.samples
    name = args.name
    model = load_trained(params, args.dataset, args.seed)
    channels = model.unet.config.in_channels
    samples = sample_trajectory(
        model.unet, model.scheduler, cfg.n_samples, seed=cfg.seed,
        num_inference_steps=cfg.ddim_steps, record=[],
    ).samples  # fmt: skip
    write_npz(f"data/samples/{name}/samples.npz", samples=samples.half().numpy())
    save_sample_grid(samples[: cfg.grid_size**2], cfg.grid_size, Path(f"plots/samples/{name}.png"))
    feature_space = load_feature_space(f"data/features/{args.dataset}")
    scores = quality_scores(feature_space, model.faces, samples, channels, cfg.k)
    controls = read_json(f"metrics/feature_net/{args.dataset}.json")
    ceiling = controls["real_vs_real"]
    fidelity = attribute_fidelity(feature_space, model.faces, samples, channels)
    metrics = {
        **scores,
        "fraction_of_ceiling": {
            key: scores[key] / ceiling[key] if ceiling.get(key) else None
            for key in ("precision", "recall", "clean_fraction")
        },
        "n_samples": cfg.n_samples,
        "n_heldout_sources": len(heldout_originals(model.faces.attributes)),
    }
    if not fidelity.empty:
        fidelity.insert(0, "dataset", args.dataset)
        fidelity.insert(1, "seed", args.seed)
        write_parquet(fidelity, f"data/samples/{name}/attributes.parquet")
        metrics["max_attribute_frequency_error"] = max_frequency_error(
            fidelity["sample_frequency"], fidelity["heldout_predicted_frequency"]
        )
        metrics["max_attribute_frequency_error_vs_labels"] = max_frequency_error(
            fidelity["sample_frequency"], fidelity["data_frequency"]
        )
        # What n real held-out faces score on the same measure: the floor of a perfect sampler.
        metrics["max_attribute_frequency_error_of_real_draws"] = controls[
            "attribute_error_of_real_draws"
        ]
    write_json(metrics, f"metrics/samples/{name}.json")


if __name__ == "__main__":
    main()
