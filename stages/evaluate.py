"""Stage evaluate@{dataset}-{seed}: held-out accuracy(t) beside the no-learning baselines."""

import numpy as np

from diffusion_circuits.analysis.accuracy import BASELINES, accuracy_table, pixel_moments
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.cli import model_stage_args, stage_entry
from diffusion_circuits.data.store import split_images
from diffusion_circuits.io import write_json, write_parquet
from diffusion_circuits.model.noise import images_to_tensor


@stage_entry
def main() -> None:
    args, params = model_stage_args(__doc__)
    name = args.name
    model = load_trained(params, args.dataset, args.seed, n_probe=params.evaluate.n_images)
    channels = model.unet.config.in_channels
    accuracy = accuracy_table(
        model.unet,
        model.scheduler,
        model.probe_set.x0,
        model.probe_set.image_ids,
        params.probe.timesteps,
        seed=params.probe.seed,
        moments=pixel_moments(images_to_tensor(split_images(model.faces, "train"), channels)),
    )
    accuracy.insert(0, "dataset", args.dataset)
    accuracy.insert(1, "seed", args.seed)
    write_parquet(accuracy, f"data/eval/{name}/accuracy.parquet")
    means = accuracy.groupby(["metric", "timestep"])["value"].mean()
    worst_margin = means["accuracy_margin"].min()
    write_json(
        {
            "n_eval_images": len(model.probe_set.image_ids),
            "n_distinct_sources": len(np.unique(model.probe_set.image_ids)),
            "accuracy": {f"t{t}": v for t, v in means["accuracy"].items()},
            **{b: {f"t{t}": v for t, v in means[b].items()} for b in BASELINES},
            "margin_over_best_baseline": {f"t{t}": v for t, v in means["accuracy_margin"].items()},
            "beats_baselines_everywhere": bool(worst_margin > 0),
        },
        f"metrics/evaluate/{name}.json",
    )


if __name__ == "__main__":
    main()
