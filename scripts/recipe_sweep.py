"""Training-recipe sweep: held-out accuracy against the no-learning baselines per unit of compute.

Usage: python scripts/recipe_sweep.py --dataset natural --out /tmp/sweep NAME:KEY=VALUE,KEY=VALUE ...

Each variant overrides ``train.*`` keys of params.yaml, trains one model on the dataset's
training split (seed 0), evaluates it on the held-out sources exactly as the evaluate
stage does, saves 16 DDIM samples as ``<out>/<name>.npy`` and prints one table row:
steps x batch, wall time, images/s, held-out R^2 and margin over the better no-learning
baseline at each probe timestep. docs/TRAINING.md quotes its output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from diffusion_circuits.analysis.accuracy import accuracy_table, pixel_moments
from diffusion_circuits.analysis.probing import select_probe_set
from diffusion_circuits.data.store import load_faceset, split_images
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.model.training import train_ddpm
from diffusion_circuits.params import Params


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, assignments = text.partition(":")
    overrides = {}
    for item in filter(None, assignments.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    return name, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="natural")
    parser.add_argument("--out", default="/tmp/recipe_sweep")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    faces = load_faceset(Path("data") / args.dataset)
    for text in args.variants:
        name, overrides = parse_variant(text)
        params = Params.model_validate({**raw, "train": {**raw["train"], **overrides}})
        channels = params.model.in_channels
        x0 = images_to_tensor(split_images(faces, "train"), channels)
        started = time.perf_counter()
        result = train_ddpm(
            x0, params, 0, out / name / "model", out / name / "resume", progress=False
        )
        wall = time.perf_counter() - started
        probe_set = select_probe_set(faces, 100, channels)
        table = accuracy_table(
            result.unet, result.scheduler, probe_set.x0, probe_set.image_ids,
            params.probe.timesteps, seed=params.probe.seed, moments=pixel_moments(x0),
        )  # fmt: skip
        means = table.groupby(["metric", "timestep"])["value"].mean()
        samples = sample_trajectory(result.unet, result.scheduler, 16, seed=0, record=[]).samples
        np.save(out / f"{name}.npy", samples.numpy())
        row = {
            "variant": name,
            "overrides": overrides,
            "steps_x_batch": f"{params.train.steps} x {params.train.batch_size}",
            "wall_s": round(wall, 1),
            "img_per_s": round(result.images_per_second, 1),
            "final_loss": round(result.final_loss, 4),
            "accuracy": {int(t): round(v, 4) for t, v in means["accuracy"].items()},
            "margin": {int(t): round(v, 4) for t, v in means["accuracy_margin"].items()},
        }
        print(json.dumps(row), flush=True)
        torch.save(row, out / f"{name}.row")


if __name__ == "__main__":
    main()
