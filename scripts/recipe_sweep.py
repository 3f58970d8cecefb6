"""Training-recipe sweep: held-out accuracy against the no-learning baselines per unit of compute.

Usage: python scripts/recipe_sweep.py --dataset natural --out /tmp/sweep NAME:KEY=VALUE,KEY=VALUE ...

Each variant overrides ``train.*`` keys of params.yaml (bare keys) or ``model.*`` keys
(``model.block_out_channels=[32,256]``: architecture candidates), trains one model on the
dataset's training split (seed 0), evaluates it on the held-out sources exactly as the
evaluate stage does, measures attention's causal share as the analyze stage does (one step
on the held-out sources; on 16 DDIM samples of 25 steps), saves those samples as
``<out>/<name>.npy`` and prints one table row: steps x batch, wall time, images/s,
held-out R^2 and margin over the better no-learning baseline at each probe timestep, the
noise-MSE rise with every pattern uniform and with every attention branch removed, and the
median sample distance of each. docs/TRAINING.md quotes its output.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from diffusion_circuits.analysis.accuracy import accuracy_table, pixel_moments
from diffusion_circuits.analysis.attention_share import one_step_share, share_runs, share_summary
from diffusion_circuits.analysis.probing import select_probe_set
from diffusion_circuits.analysis.sample_impact import sample_impact, share_sample_runs
from diffusion_circuits.data.store import load_faceset, split_images
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.model.training import train_ddpm
from diffusion_circuits.params import Params
from diffusion_circuits.probe import Probe


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, assignments = text.partition(":")
    overrides = {}
    # commas inside [...] belong to a list value
    for item in filter(None, re.split(r",(?![^\[]*\])", assignments)):
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
        sections = {"train": dict(raw["train"]), "model": dict(raw["model"])}
        for key, value in overrides.items():
            section, _, field = key.rpartition(".")
            sections[section or "train"][field] = value
        params = Params.model_validate({**raw, **sections})
        channels = params.model.in_channels
        x0 = images_to_tensor(split_images(faces, "train"), channels)
        started = time.perf_counter()
        result = train_ddpm(
            x0, params, 0, out / name / "model", out / name / "resume", progress=False
        )
        wall = time.perf_counter() - started
        probe_set = select_probe_set(faces, 100, channels)
        table = accuracy_table(
            result.network, result.scheduler, probe_set.x0, probe_set.image_ids,
            params.probe.timesteps, seed=params.probe.seed, moments=pixel_moments(x0),
        )  # fmt: skip
        means = table.groupby(["metric", "timestep"])["value"].mean()
        share = share_summary(
            one_step_share(result.network, result.scheduler, probe_set, params.probe.timesteps,
                           params.probe.seed, batch_size=50)
        ).set_index(["target", "method", "timestep"])["mse_rise"]  # fmt: skip
        probe = Probe(result.network)
        whole = [r for r in share_runs(probe) if r.target == "attention"]
        distances, samples = sample_impact(
            result.network, result.scheduler, share_sample_runs(probe, whole), 16, 25, 0,
            progress=False,
        )  # fmt: skip
        np.save(out / f"{name}.npy", samples.numpy())
        rms = distances[distances.metric == "rms_distance"].groupby("method")["value"].median()
        row = {
            "variant": name,
            "overrides": overrides,
            "steps_x_batch": f"{params.train.steps} x {params.train.batch_size}",
            "wall_s": round(wall, 1),
            "img_per_s": round(result.images_per_second, 1),
            "final_loss": round(result.final_loss, 4),
            "accuracy": {int(t): round(v, 4) for t, v in means["accuracy"].items()},
            "margin": {int(t): round(v, 4) for t, v in means["accuracy_margin"].items()},
            "mse_rise_uniform": {
                int(t): round(v, 4) for t, v in share.loc[("attention", "uniform")].items()
            },
            "mse_rise_branch_zero": {
                int(t): round(v, 4) for t, v in share.loc[("attention", "branch_zero")].items()
            },
            "sample_rms_uniform": round(float(rms["uniform"]), 4),
            "sample_rms_branch_zero": round(float(rms["branch_zero"]), 4),
            "parameters": sum(p.numel() for p in result.network.parameters()),
        }
        print(json.dumps(row), flush=True)
        torch.save(row, out / f"{name}.row")


if __name__ == "__main__":
    main()
