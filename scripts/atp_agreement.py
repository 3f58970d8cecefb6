"""How well attribution patching (AtP) ranks components like exact activation patching.

Usage: python scripts/atp_agreement.py --model data/models/synthetic-seed0 --dataset synthetic
       [--data data]

On a trained model's held-out probe images: the clean input is each image noised at t,
the corrupt input another held-out image under the same noise (so only the content
differs). Two metrics: ``mse``, the per-image MSE of the noise estimate against the
clean run's true noise (quadratic, and at a good model's minimum, where a first-order
estimate has little to stand on), and ``toward_corrupt``, how far the output moves
toward the corrupt run's output (the projection of ``output - clean`` on ``corrupt -
clean``, divided by its squared length: 0 clean, 1 corrupt; linear in the output, the
analogue of a logit difference). For every ResNet block, attention layer, ResNet
residual branch and attention head (the probe's structural lists; a head is its slice
of ``<attn>.z``; heads and residual branches are the analysis's components), the exact
effect of patching it from the corrupt run (`probe.patching.activation_patching`) and
AtP's first-order estimate from one backward pass (`attribution_patching`), their
Spearman rank agreement per timestep, separately for the heads, the residual branches
and the modules (ResNets and attention outputs) and over all of them, and the wall time
of each sweep.
docs/PROBE.md quotes the output.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def compare(probe, groups: dict[str, list[str]], clean, corrupt, metric) -> dict:
    """Exact and AtP effects of every component: Spearman agreement per group and over
    all, each group's largest exact effect, and the wall time of each sweep."""
    from diffusion_circuits.probe.patching import (
        activation_patching,
        attribution_patching,
        rank_agreement,
    )

    components = [c for members in groups.values() for c in members]
    started = time.perf_counter()
    exact = activation_patching(probe, components, clean, corrupt, metric,
                                components_per_forward=16)  # fmt: skip
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    estimate = attribution_patching(probe, components, clean, corrupt, metric)
    row = {"atp_s": round(time.perf_counter() - started, 2), "exact_s": round(exact_s, 2),
           "spearman_all": round(rank_agreement(exact, estimate), 3)}  # fmt: skip
    for group, members in groups.items():
        part = {k: exact[k] for k in members}
        top = max(part, key=lambda k: abs(part[k]))
        row[f"spearman_{group}"] = round(rank_agreement(part, {k: estimate[k] for k in members}), 3)
        row[f"largest_{group}"] = [top, round(exact[top], 6), round(estimate[top], 6)]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="folder holding unet/ and scheduler/")
    parser.add_argument("--dataset", required=True, help="<data>/<dataset> holds its images")
    parser.add_argument("--data", default="data", help="folder holding the datasets")
    parser.add_argument("--n-images", type=int, default=8)
    parser.add_argument("--timesteps", type=int, nargs="+", default=[100, 300, 600, 900])
    args = parser.parse_args()

    import torch
    from diffusers import DDPMScheduler, UNet2DModel

    from diffusion_circuits.analysis.probing import select_probe_set
    from diffusion_circuits.data.store import load_faceset
    from diffusion_circuits.model.noise import add_noise, noise_from_output
    from diffusion_circuits.probe import Probe

    torch.set_num_threads(1)
    unet = UNet2DModel.from_pretrained(Path(args.model) / "unet").eval()
    scheduler = DDPMScheduler.from_pretrained(Path(args.model) / "scheduler")
    faces = load_faceset(Path(args.data) / args.dataset)
    x0 = select_probe_set(faces, args.n_images, unet.config.in_channels).x0
    other = x0.roll(1, dims=0)  # each image's corrupt twin: the next held-out image
    probe = Probe(unet)
    # the modules of the earlier table, the heads and ResNet branches the analysis ablates
    groups = {"modules": probe.resnets + probe.attentions, "residuals": probe.residuals,
              "heads": [head.name for head in probe.heads]}  # fmt: skip
    for timestep in args.timesteps:
        x_t, eps, t = add_noise(scheduler, x0, timestep, seed=0)
        clean = {"sample": x_t, "timestep": t}
        corrupt = {"sample": scheduler.add_noise(other, eps, t), "timestep": t}
        with torch.no_grad():
            clean_out, corrupt_out = unet(**clean).sample, unet(**corrupt).sample
        direction = (corrupt_out - clean_out).flatten(1)

        def mse(output, x_t=x_t, t=t, eps=eps):
            return (noise_from_output(scheduler, output, x_t, t) - eps).pow(2).mean(dim=(1, 2, 3))

        def toward_corrupt(output, clean_out=clean_out, direction=direction):
            moved = (output - clean_out).flatten(1)
            return (moved * direction).sum(1) / direction.pow(2).sum(1)

        for name, metric in (("mse", mse), ("toward_corrupt", toward_corrupt)):
            row = compare(probe, groups, clean, corrupt, metric)
            sizes = {group: len(members) for group, members in groups.items()}
            print(json.dumps({"model": args.model, "timestep": timestep, "metric": name,
                              "components": sizes, **row}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
