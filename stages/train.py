"""Stage train@{dataset}-{seed}: one DDPM per dataset and seed (EMA weights saved)."""

from contextlib import nullcontext
from pathlib import Path

from dvclive import Live

from diffusion_circuits.cli import stage_entry, stage_parser
from diffusion_circuits.data.store import load_faceset, split_images
from diffusion_circuits.io import write_json
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.model.training import make_accelerator, train_ddpm
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
    x0 = images_to_tensor(split_images(faces, "train"), params.model.in_channels)

    # Under `accelerate launch`, only the main process logs and writes.
    accelerator = make_accelerator(params)
    main = accelerator.is_main_process
    with (
        Live(f"plots/train/{name}", dvcyaml=False, save_dvc_exp=False)
        if main
        else nullcontext() as live
    ):
        result = train_ddpm(
            x0,
            params,
            args.seed,
            f"data/models/{name}",
            f"data/resume/{name}",
            live=live,
            accelerator=accelerator,
        )
    if not main:
        return
    write_json(
        {
            "final_loss": result.final_loss,
            "steps": result.steps,
            "n_train_images": len(x0),
            "n_train_sources": int(
                faces.attributes.query("split == 'train'")["source_id"].nunique()
            ),
            "mixed_precision": result.mixed_precision,
        },
        f"metrics/train/{name}.json",
    )
    write_json(
        {
            "images_per_second": result.images_per_second,
            "wall_seconds": result.wall_seconds,
            "resumed_from_step": result.resumed_from,
            "num_processes": result.num_processes,
        },
        f"timings/train/{name}.json",
    )


if __name__ == "__main__":
    main()
