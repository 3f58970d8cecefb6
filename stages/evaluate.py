"""Stage evaluate@{dataset}-{seed}: held-out accuracy(t) beside the no-learning baselines."""

import numpy as np

from diffusion_circuits.analysis.accuracy import BASELINES, accuracy_table, pixel_moments
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.cli import model_stage_args, stage_entry
from diffusion_circuits.data.store import split_images
from diffusion_circuits.io import write_json, write_parquet
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.stats.compare import bootstrap_ci


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
    # Images are the unit of a claim about this one model: a CI over them says whether a
    # margin of a few 1e-4 is above 0 or inside the spread of the evaluation set.
    margins = accuracy[accuracy["metric"] == "accuracy_margin"].groupby("timestep")["value"]
    ci = dict(
        n_resamples=params.stats.n_resamples,
        seed=params.stats.seed,
        confidence=params.stats.confidence,
    )
    margin_ci = {
        f"t{t}": list(bootstrap_ci((values.to_numpy(),), np.mean, **ci)[:2])
        for t, values in margins
    }
    write_json(
        {
            "n_eval_images": len(model.probe_set.image_ids),
            "n_distinct_sources": len(np.unique(model.probe_set.image_ids)),
            "accuracy": {f"t{t}": v for t, v in means["accuracy"].items()},
            **{b: {f"t{t}": v for t, v in means[b].items()} for b in BASELINES},
            "margin_over_best_baseline": {f"t{t}": v for t, v in means["accuracy_margin"].items()},
            "margin_ci_over_images": margin_ci,
            "beats_baselines_everywhere": bool(worst_margin > 0),
            "beats_baselines_everywhere_by_ci": all(low > 0 for low, _ in margin_ci.values()),
        },
        f"metrics/evaluate/{name}.json",
    )


if __name__ == "__main__":
    main()
