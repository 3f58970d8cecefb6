"""Training rate of DiT candidates beside the study U-Net, to choose the DiT's depth and patch.

Usage: python scripts/benchmark_backbones.py [--steps N] [--out timings/backbones.json]

The loop is scripts/benchmark.py's candidate loop (one thread, as the pipeline's lanes
train; fp32 forward + backward + AdamW on a batch of ``train.batch_size`` at
``data.resolution``), through :func:`diffusion_circuits.model.forward.denoise`, the call
every stage makes. The U-Net is timed first and last, and each DiT between: on a loaded
machine the two U-Net rates say how much the load moved during the measurement.
scripts/backbones_table.py renders the JSON into docs/BACKBONES.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from diffusion_circuits.io import write_text
from diffusion_circuits.model.factory import build_network
from diffusion_circuits.model.forward import denoise
from diffusion_circuits.params import ModelParams, load_params

# (depth, patch size) of each DiT candidate: 8 heads x 32 = 256 channels throughout
DIT_CANDIDATES = ((4, 2), (4, 4), (6, 2), (6, 4))


def training_rate(model: ModelParams, batch: int, steps: int) -> tuple[float, int]:
    """(images/s, parameters) of ``steps`` timed training steps after one warm-up step."""
    network = build_network(model)
    optimizer = torch.optim.AdamW(network.parameters(), 1e-4)
    generator = torch.Generator().manual_seed(0)
    size = model.sample_size
    x = torch.randn(batch, model.in_channels, size, size, generator=generator)
    t = torch.randint(0, 1000, (batch,), generator=generator)

    def step():
        denoise(network, x, t).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return batch / seconds, sum(p.numel() for p in network.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default="timings/backbones.json")
    args = parser.parse_args()
    params = load_params()
    torch.set_num_threads(1)
    batch, unet = params.train.batch_size, params.model.model_copy(update={"backbone": "unet"})
    rows = []

    def measure(label: str, model: ModelParams, **fields) -> None:
        rate, n_parameters = training_rate(model, batch, args.steps)
        rows.append({"candidate": label, **fields, "images_per_second": rate,
                     "parameters": n_parameters})  # fmt: skip
        print(f"{label}: {rate:.1f} img/s, {n_parameters / 1e6:.2f}M parameters", flush=True)

    measure("unet (study default), before", unet, backbone="unet")
    for depth, patch in DIT_CANDIDATES:
        dit = params.model.dit.model_copy(update={"num_layers": depth, "patch_size": patch})
        model = params.model.model_copy(update={"backbone": "dit", "dit": dit})
        tokens = (model.sample_size // patch) ** 2
        measure(f"dit depth {depth}, patch {patch}", model, backbone="dit", depth=depth,
                patch_size=patch, tokens=tokens)  # fmt: skip
    measure("unet (study default), after", unet, backbone="unet")
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_1min": os.getloadavg()[0],
        "threads": 1,
        "batch_size": batch,
        "resolution": params.data.resolution,
        "timed_steps": args.steps,
        "rows": rows,
    }
    write_text(json.dumps(report, indent=2) + "\n", args.out)


if __name__ == "__main__":
    main()
