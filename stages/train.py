"""Stage train@{dataset}-{seed}: one DDPM per dataset and seed, plus held-out accuracy(t)."""

from pathlib import Path

from dvclive import Live

from diffusion_circuits.analysis.accuracy import accuracy_table
from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.data.store import load_faceset
from diffusion_circuits.io import write_json, write_parquet
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.model.training import train_ddpm
from diffusion_circuits.params import load_params


@stage_entry
def main() -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--dataset", required=True, choices=["synthetic", "natural"])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data-root", default="data")
    args = parser.parse_args()
    params = load_params(args.params)
    name = f"{args.dataset}-seed{args.seed}"
    faces = load_faceset(Path(args.data_root) / args.dataset)
    split = faces.attributes["split"].to_numpy()
    x0 = images_to_tensor(faces.images[split == "train"])

    with Live(f"plots/train/{name}", dvcyaml=False, save_dvc_exp=False) as live:
        result = train_ddpm(
            x0, params, args.seed, f"data/models/{name}", f"data/resume/{name}", live=live
        )

    heldout = faces.attributes[split == "heldout"].sort_values(["source_id", "image_id"])
    heldout = heldout.drop_duplicates("source_id").head(params.train.eval_images)
    accuracy = accuracy_table(
        result.unet,
        result.scheduler,
        images_to_tensor(faces.images[heldout.index.to_numpy()]),
        heldout["image_id"].to_numpy(),
        params.probe.timesteps,
        seed=params.probe.seed,
    )
    accuracy.insert(0, "dataset", args.dataset)
    accuracy.insert(1, "seed", args.seed)
    write_parquet(accuracy, f"data/eval/{name}/accuracy.parquet")
    means = accuracy[accuracy.metric == "accuracy"].groupby("timestep")["value"].mean()
    write_json(
        {
            "final_loss": result.final_loss,
            "images_per_second": result.images_per_second,
            "wall_seconds": result.wall_seconds,
            "steps": result.steps,
            "resumed_from_step": result.resumed_from,
            "mixed_precision": result.mixed_precision,
            "n_eval_images": len(heldout),
            "accuracy": {f"t{t}": v for t, v in means.items()},
        },
        f"metrics/train/{name}.json",
    )


if __name__ == "__main__":
    main()
