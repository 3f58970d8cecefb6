"""Stage feature_net@{dataset}: the sample-quality feature network and the real-vs-real ceiling."""

from pathlib import Path

import torch

from diffusion_circuits.analysis.sample_quality import (
    attribute_error_of_real_draws,
    ceiling_images,
    fit_feature_space,
    noise_control,
    quality_scores,
    save_feature_space,
)
from diffusion_circuits.cli import model_stage_args, stage_entry
from diffusion_circuits.data.store import load_faceset
from diffusion_circuits.io import write_json


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__, seed=False)
    cfg, channels = params.samples, params.model.in_channels
    torch.set_num_threads(params.train.num_threads)  # as every model stage: same rounding
    faces = load_faceset(Path("data") / args.dataset)
    feature_space, report = fit_feature_space(
        faces, channels, cfg.feature_steps, cfg.feature_batch_size, seed=cfg.seed
    )
    save_feature_space(feature_space, f"data/features/{args.dataset}")
    reals = ceiling_images(faces, channels, cfg.n_samples, cfg.seed)
    ceiling = quality_scores(feature_space, faces, reals, channels, cfg.k)
    noised = noise_control(feature_space, faces, reals, channels, cfg.k, cfg.seed)
    attribute_floor = attribute_error_of_real_draws(
        feature_space, faces, channels, cfg.n_samples, cfg.seed
    )
    write_json(
        {
            **report,
            "real_vs_real": ceiling,
            "noised_real_vs_real": noised,
            **({"attribute_error_of_real_draws": attribute_floor} if attribute_floor else {}),
        },
        f"metrics/feature_net/{args.dataset}.json",
    )


if __name__ == "__main__":
    main()
