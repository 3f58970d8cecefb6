"""Benchmark harness: prints the figures the issues ask for, as one table.

Usage: python scripts/benchmark.py [--pipeline] [--steps N] [--candidates]

Micro-benchmarks (always): the machine's fp32 and bf16 matmul rates; training images/s
and achieved FLOP/s of our loop in its variants (fp32, bf16, bf16 + channels-last,
bf16 + torch.compile) against a plain diffusers + accelerate loop (the recipe of the
diffusers unconditional-training example) on the same model and batch, run side by side;
full-capture probe overhead against a plain forward. With --pipeline it also times every
stage of a default ``dvc repro --force`` (wall time and peak RSS through /usr/bin/time),
the no-op ``dvc repro`` and the size of data/. With --candidates it times one training
step per image, on one thread as the pipeline's lanes train, of each architecture
candidate for attention that matters (``ATTENTION_CANDIDATES``, docs/TRAINING.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch.utils.flop_counter import FlopCounterMode

from diffusion_circuits.model.device import cpu_supports_bf16
from diffusion_circuits.model.factory import build_scheduler, build_unet
from diffusion_circuits.model.training import batch_for_step
from diffusion_circuits.params import Params, load_params
from diffusion_circuits.probe import Probe

ROWS: list[tuple[str, str]] = []


def row(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"{name:<58} {value}", flush=True)


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def step_flops(unet, x0, scheduler) -> int:
    images, noise, t = batch_for_step(x0, 0, 0, x0.shape[0], 1000)
    with FlopCounterMode(display=False) as counter:
        loss = F.mse_loss(unet(scheduler.add_noise(images, noise, t), t).sample, noise)
        loss.backward()
    unet.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def our_step_factory(params, x0, *, bf16: bool, channels_last: bool, compile_model: bool):
    """One step of our loop (as in model.training), returning a callable."""
    AcceleratorState._reset_state(reset_partial_state=True)  # one process, several set-ups
    accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=True)
    unet = build_unet(params.model)
    scheduler = build_scheduler(params.scheduler)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    unet = unet.to(memory_format=fmt)
    if compile_model:
        unet = torch.compile(unet)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=1e-4)
    unet, optimizer = accelerator.prepare(unet, optimizer)
    ema = EMAModel(unet.parameters(), decay=0.999, use_ema_warmup=True, power=2 / 3)
    state = {"step": 0}

    def step():
        images, noise, t = batch_for_step(x0, state["step"], 0, x0.shape[0], 1000)
        noisy = scheduler.add_noise(images, noise, t).contiguous(memory_format=fmt)
        with accelerator.autocast():
            prediction = unet(noisy, t).sample
        loss = F.mse_loss(prediction.float(), noise)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(unet.parameters())
        state["step"] += 1

    return step


def plain_step_factory(params, x0):
    """The diffusers unconditional-training example's loop: fp32 default, AdamW, EMA."""
    AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(mixed_precision="no", cpu=True)
    unet = build_unet(params.model)
    scheduler = build_scheduler(params.scheduler)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4, betas=(0.95, 0.999),
                                  weight_decay=1e-6, eps=1e-8)  # fmt: skip
    lr = get_cosine_schedule_with_warmup(optimizer, 10, 10_000)
    unet, optimizer, lr = accelerator.prepare(unet, optimizer, lr)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0,
                   power=3 / 4)  # fmt: skip
    generator = torch.Generator().manual_seed(0)

    def step():
        clean = x0
        noise = torch.randn(clean.shape, generator=generator)
        t = torch.randint(0, 1000, (clean.shape[0],), generator=generator)
        noisy = scheduler.add_noise(clean, noise, t)
        with accelerator.accumulate(unet):
            loss = F.mse_loss(unet(noisy, t).sample.float(), noise.float())
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(unet.parameters(), 1.0)
            optimizer.step()
            lr.step()
            optimizer.zero_grad()
        ema.step(unet.parameters())

    return step


def time_steps(step, n: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


# The budgets are in reference minutes: minutes on the 2-core AMD EPYC where the plain loop
# below ran REFERENCE_IMG_PER_S on the 2026-12-01 default model. That model and batch stay
# fixed here whatever params.yaml says, so the rate measures the machine, not the params.
REFERENCE_IMG_PER_S = 28.7
REFERENCE_BATCH = 32


def reference_params():
    """The 2026-12-01 default: 3 x 32 x 32, widths 32/64/256, 3 x 8 heads, batch 32, fp32.

    Spelled out in full (params.yaml only fills the keys a benchmark never reads), so that
    editing params.yaml never moves the reference machine factor.
    """
    raw = yaml.safe_load(Path("params.yaml").read_text())
    reference = {
        "data": {**raw["data"], "resolution": 32, "colour": "rgb"},
        "natural": {**raw["natural"], "source": "celeba", "celeba_dir": "unused"},
        "model": {
            "backbone": "unet",
            "dit": raw["model"]["dit"],  # unused by the U-Net; validated all the same
            "sample_size": 32,
            "in_channels": 3,
            "out_channels": 3,
            "layers_per_block": 1,
            "block_out_channels": [32, 64, 256],
            "down_block_types": ["DownBlock2D"] * 3,
            "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
            "attention_head_dim": 32,
            "add_attention": True,
            "norm_num_groups": 32,
            "dropout": 0.0,
        },
        "scheduler": {
            "beta_schedule": "squaredcos_cap_v2",
            "num_train_timesteps": 1000,
            "prediction_type": "epsilon",
        },
        "train": {**raw["train"], "batch_size": REFERENCE_BATCH},
    }
    return Params.model_validate({**raw, **reference})  # fmt: skip


def reference_factor(steps: int = 6, repeats: int = 3) -> float:
    """Reference minutes per minute on this machine: this machine's plain-loop rate / 28.7."""
    params = reference_params()
    x0 = torch.rand(REFERENCE_BATCH, 3, 32, 32) * 2 - 1
    step = plain_step_factory(params, x0)
    seconds = statistics.median(time_steps(step, steps) for _ in range(repeats))
    rate = REFERENCE_BATCH / seconds
    row("plain loop on the reference model (machine speed)",
        f"{rate:.1f} img/s = {rate / REFERENCE_IMG_PER_S:.2f}x the reference machine")  # fmt: skip
    return rate / REFERENCE_IMG_PER_S


def training_benchmark(params, steps: int) -> None:
    batch = params.train.batch_size
    x0 = torch.rand(batch, params.model.in_channels, params.data.resolution,
                    params.data.resolution) * 2 - 1  # fmt: skip
    flops = step_flops(build_unet(params.model), x0, build_scheduler(params.scheduler))
    fp32, bf16 = matmul_rate(torch.float32), matmul_rate(torch.bfloat16)
    row("matmul rate fp32 (2048^3)", f"{fp32 / 1e9:.1f} GFLOP/s")
    row(
        "matmul rate bf16 (2048^3)",
        f"{bf16 / 1e9:.1f} GFLOP/s (native bf16: {cpu_supports_bf16()})",
    )
    row(f"training FLOPs per step (fwd+bwd, batch {batch})", f"{flops / 1e9:.1f} GFLOP")
    variants = {
        "plain diffusers+accelerate loop (fp32)": plain_step_factory(params, x0),
        "ours fp32": our_step_factory(params, x0, bf16=False, channels_last=False, compile_model=False),
        "ours bf16 (default)": our_step_factory(params, x0, bf16=True, channels_last=False, compile_model=False),
        "ours bf16 + channels_last": our_step_factory(params, x0, bf16=True, channels_last=True, compile_model=False),
    }  # fmt: skip
    if params.train.compile or steps >= 10:
        variants["ours bf16 + torch.compile"] = our_step_factory(
            params, x0, bf16=True, channels_last=False, compile_model=True
        )
    # Interleave rounds so drift in machine speed hits every variant alike.
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for step in variants.values():  # warm-up (compile happens here)
        time_steps(step, 1, warmup=2)
    for _ in range(3):
        for name, step in variants.items():
            seconds[name].append(time_steps(step, max(1, steps // 3), warmup=0))
    base = statistics.median(seconds["plain diffusers+accelerate loop (fp32)"])
    for name, values in seconds.items():
        s = statistics.median(values)
        row(f"train {name}", f"{batch / s:.1f} img/s, {flops / s / 1e9:.1f} GFLOP/s "
            f"({flops / s / bf16:.0%} of bf16 peak), {base / s:.2f}x plain")  # fmt: skip


@torch.no_grad()
def probe_benchmark(params, repeats: int = 7) -> None:
    unet = build_unet(params.model).eval()
    probe = Probe(unet)
    x = torch.randn(params.probe.batch_size, params.model.in_channels, params.data.resolution,
                    params.data.resolution)  # fmt: skip
    t = torch.full((x.shape[0],), 300)
    ratios = []
    unet(x, t)
    for _ in range(repeats):
        start = time.perf_counter()
        unet(x, t)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        with probe.capture():
            unet(x, t)
        ratios.append((time.perf_counter() - start) / plain)
    row(
        f"probe full capture / plain forward (batch {x.shape[0]})",
        f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})",
    )


# Issue 20's candidates: 8 heads x 3 layers at 256 channels, attention moved to 16 x 16.
ATTENTION_CANDIDATES = {
    "default: attention at 8x8 (mid + 2 in up.0)": {},
    "2 levels [32, 256]: all 3 at 16x16": dict(
        block_out_channels=(32, 256), down_block_types=("DownBlock2D",) * 2,
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    ),
    "2 levels [64, 256]: all 3 at 16x16": dict(
        block_out_channels=(64, 256), down_block_types=("DownBlock2D",) * 2,
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    ),
    "3 levels [32, 256, 256]: mid at 8x8, 2 at 16x16": dict(
        block_out_channels=(32, 256, 256), down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    ),
}  # fmt: skip


def candidate_benchmark(params, factor: float, steps: int) -> None:
    """One-thread training images/s of each candidate (fp32 forward + backward + AdamW)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.randn(params.train.batch_size, params.model.in_channels, params.data.resolution,
                    params.data.resolution)  # fmt: skip
    t = torch.randint(0, params.scheduler.num_train_timesteps, (len(x),))
    for name, overrides in ATTENTION_CANDIDATES.items():
        unet = build_unet(params.model.model_copy(update=overrides))
        optimizer = torch.optim.AdamW(unet.parameters(), 1e-4)

        def step(unet=unet, optimizer=optimizer):
            unet(x, t).sample.pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()

        rate = len(x) / (time_steps(step, steps, warmup=1) / steps)
        row(f"candidate {name}", f"{rate:.1f} img/s one thread = {rate / factor:.1f} reference "
            f"img/s, {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M parameters")  # fmt: skip
    torch.set_num_threads(threads)


def pipeline_benchmark(factor: float) -> None:
    names = subprocess.run(["dvc", "stage", "list", "--name-only"], capture_output=True,
                           text=True, check=True).stdout.split()  # fmt: skip
    total = 0.0
    for name in names:
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "dvc", "repro", "--single-item", "--force", name],
            capture_output=True,
            text=True,
            check=True,
        )
        wall, rss_kb = result.stderr.strip().splitlines()[-1].split()
        total += float(wall)
        row(f"stage {name}", f"{float(wall):.1f} s = {float(wall) * factor:.1f} reference s, "
            f"peak RSS {int(rss_kb) / 1024:.0f} MiB")  # fmt: skip
    row("default dvc repro from scratch (sum of stages)",
        f"{total / 60:.1f} min = {total / 60 * factor:.1f} reference min")  # fmt: skip
    start = time.perf_counter()
    subprocess.run(["dvc", "repro"], capture_output=True, check=True)
    row("no-op dvc repro", f"{time.perf_counter() - start:.1f} s")
    size = sum(p.stat().st_size for p in Path("data").rglob("*") if p.is_file())
    row("size of data/", f"{size / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipeline", action="store_true", help="also time a full dvc repro")
    parser.add_argument("--steps", type=int, default=9, help="timed training steps per variant")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads (default: every core, as the reference rate was "
                        "measured; the pipeline's processes use runtime.num_threads each)")  # fmt: skip
    parser.add_argument("--candidates", action="store_true",
                        help="also time the architecture candidates of docs/TRAINING.md")  # fmt: skip
    args = parser.parse_args()
    params = load_params()
    torch.set_num_threads(args.threads)
    factor = reference_factor()
    training_benchmark(params, args.steps)
    probe_benchmark(params)
    if args.candidates:
        candidate_benchmark(params, factor, max(2, args.steps // 3))
    if args.pipeline:
        pipeline_benchmark(factor)
        reference_factor()  # again after the pipeline: the machine's speed drifts
    print("\n| figure | value |\n|---|---|")
    for name, value in ROWS:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
