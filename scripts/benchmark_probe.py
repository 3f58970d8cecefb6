"""Benchmark of the probe library (not a test): capture overhead and streaming memory.

1. Capture overhead on every supported architecture (random weights, mid-sized configs):
   the median time of a forward under full capture (every hook point, every attention
   site), of a capture of the attention patterns only, and of the main path (no attention
   sites), each divided by the median plain forward. Budget: 1.5x.
2. Streaming capture peak memory: a DDIM loop of 10, 50 and 200 steps streaming every
   attention pattern and the bottleneck (no reduction) to disk shards, each in a fresh
   process, reporting its peak RSS and the tracemalloc peak (numpy buffers). Budget: flat
   in the number of steps.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/benchmark_probe.py [--repeats 5] [--public]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from functools import partial

import torch
from diffusers import (
    DiTTransformer2DModel,
    PixArtTransformer2DModel,
    UNet2DConditionModel,
    UNet2DModel,
)

from diffusion_circuits.probe import Probe


def architectures() -> dict[str, tuple[torch.nn.Module, dict]]:
    """Mid-sized random-weight models and one batch of inputs for each."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    t = torch.tensor([500] * 4)
    unet = UNet2DModel(
        sample_size=32,
        block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=16,
        layers_per_block=1,
    )
    sd = UNet2DConditionModel(
        sample_size=32,
        block_out_channels=(32, 64, 64, 64),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        layers_per_block=2,
        cross_attention_dim=64,
        attention_head_dim=4,
        norm_num_groups=16,
    )
    # DiT and PixArt share one 6-block backbone of 4 x 32 heads, patch 2 on 32x32 latents
    small_backbone = dict(
        num_attention_heads=4,
        attention_head_dim=32,
        in_channels=4,
        out_channels=8,
        num_layers=6,
        sample_size=32,
        patch_size=2,
    )
    dit = DiTTransformer2DModel(**small_backbone, num_embeds_ada_norm=1000)
    pixart = PixArtTransformer2DModel(
        **small_backbone,
        cross_attention_dim=128,
        caption_channels=64,
        use_additional_conditions=False,
    )
    latents = torch.randn(4, 4, 32, 32, generator=g)
    text = torch.randn(4, 16, 64, generator=g)
    return {
        "UNet2DModel": (unet, dict(sample=torch.randn(4, 3, 32, 32, generator=g), timestep=t)),
        "UNet2DConditionModel": (
            sd,
            dict(sample=latents, timestep=t, encoder_hidden_states=text),
        ),
        "DiTTransformer2DModel": (
            dit,
            dict(hidden_states=latents, timestep=t, class_labels=torch.tensor([1, 2, 3, 4])),
        ),
        "PixArtTransformer2DModel": (
            pixart,
            dict(hidden_states=latents, timestep=t, encoder_hidden_states=text),
        ),
    }


def public_architectures() -> dict[str, tuple[torch.nn.Module, dict]]:
    """Public models at their published widths and depths (random weights, batch 1):
    where the mid-sized configs above exaggerate attention's share of the forward (a
    1024-token self-attention at width 32), these show the overhead users will see."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    t = torch.tensor([500])
    sd15 = UNet2DConditionModel(  # Stable Diffusion 1.5's UNet config
        sample_size=32,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    # DiT-XL/2 and PixArt-alpha share the XL/2 backbone: 28 blocks of 16 x 72 heads, patch 2
    # on 32x32 latents (256 px, 256 tokens)
    xl_2 = dict(
        num_attention_heads=16,
        attention_head_dim=72,
        in_channels=4,
        out_channels=8,
        num_layers=28,
        sample_size=32,
        patch_size=2,
    )
    dit_xl = DiTTransformer2DModel(**xl_2, num_embeds_ada_norm=1000)
    pixart_alpha = PixArtTransformer2DModel(  # T5 captions, 120 tokens
        **xl_2, cross_attention_dim=1152, caption_channels=4096, use_additional_conditions=False
    )
    latents = torch.randn(1, 4, 32, 32, generator=g)
    return {
        "PixArt-alpha, 256 px": (
            pixart_alpha,
            dict(
                hidden_states=latents,
                timestep=t,
                encoder_hidden_states=torch.randn(1, 120, 4096, generator=g),
            ),
        ),
        "SD1.5 UNet, 256 px": (
            sd15,
            dict(
                sample=latents,
                timestep=t,
                encoder_hidden_states=torch.randn(1, 77, 768, generator=g),
            ),
        ),
        "DiT-XL/2, 256 px": (
            dit_xl,
            dict(hidden_states=latents, timestep=t, class_labels=torch.tensor([1])),
        ),
    }


def forward(model, inputs: dict, probe: Probe | None = None, names=None) -> None:
    """One forward under no_grad, plain or inside ``probe.capture(names)``."""
    with torch.no_grad(), probe.capture(names) if probe is not None else nullcontext():
        model(**inputs)


def median_ratios(plain, variants: list, repeats: int) -> tuple[float, list[float]]:
    """Median plain time and median per-repeat ratio of each variant to the plain run.

    The runs of one repeat are interleaved (plain, variant 1, variant 2, ...), so a change
    of machine load between repeats hits plain and captured runs alike.
    """
    for fn in (plain, *variants):  # warm-up
        fn()
    plain_times, ratios = [], [[] for _ in variants]
    for _ in range(repeats):
        start = time.perf_counter()
        plain()
        base = time.perf_counter() - start
        plain_times.append(base)
        for fn, out in zip(variants, ratios, strict=True):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) / base)
    return statistics.median(plain_times), [statistics.median(r) for r in ratios]


def capture_overhead(repeats: int, public: bool) -> None:
    print(
        f"capture overhead (median of {repeats} interleaved repeats; budget 1.5x), {torch.get_num_threads()} threads"
    )
    print(f"{'model':26s} {'plain ms':>9s} {'full':>6s} {'patterns':>9s} {'no sites':>9s}")
    models = architectures() | (public_architectures() if public else {})
    for name, (model, inputs) in models.items():
        model.eval()
        probe = Probe(model)
        sites = {n for n in probe.hook_points if probe._map.points[n].kind == "site"}
        selections = {
            "full": None,
            "patterns": "*.pattern",
            "no sites": [n for n in probe.hook_points if n not in sites],
        }

        base, ratios = median_ratios(
            partial(forward, model, inputs),
            [partial(forward, model, inputs, probe, names) for names in selections.values()],
            repeats,
        )
        print(f"{name:26s} {base * 1e3:9.1f} " + " ".join(f"{r:8.2f}x" for r in ratios), flush=True)


def stream_child(steps: int, folder: str) -> dict:
    """One streamed DDIM trajectory (run in a fresh process): peak memory."""
    import resource
    import tracemalloc

    from diffusers import DDIMScheduler

    from diffusion_circuits.probe import DiskSink

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=16,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=16,
        layers_per_block=1,
    ).eval()
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(steps)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sink = DiskSink(folder, shard_mb=8)
    tracemalloc.start()
    with torch.no_grad(), Probe(unet).stream(["*.pattern", "mid"], sink) as state:
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
    _, traced_peak = tracemalloc.get_traced_memory()
    written = sum(f.stat().st_size for f in os.scandir(folder) if f.is_file())
    return dict(
        steps=steps,
        values=state.written,
        written_mb=written / 2**20,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        traced_peak_mb=traced_peak / 2**20,
    )


def streaming_memory() -> None:
    import tempfile

    print("streaming capture to disk (all patterns + mid, batch 4, 8 MB shards)")
    print(
        f"{'steps':>6s} {'values':>7s} {'written MB':>11s} {'peak RSS MB':>12s} {'tracemalloc MB':>15s}"
    )
    for steps in (10, 50, 200):
        with tempfile.TemporaryDirectory() as folder:
            out = subprocess.run(
                [sys.executable, __file__, "--stream-child", str(steps), folder],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['steps']:6d} {r['values']:7d} {r['written_mb']:11.1f} "
            f"{r['peak_rss_mb']:12.1f} {r['traced_peak_mb']:15.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--public",
        action="store_true",
        help="also SD 1.5's UNet, DiT-XL/2 and PixArt-alpha at published sizes (~8 GB)",
    )
    parser.add_argument("--stream-child", nargs=2, metavar=("STEPS", "FOLDER"))
    args = parser.parse_args()
    if args.stream_child:
        print(json.dumps(stream_child(int(args.stream_child[0]), args.stream_child[1])))
        return
    if not args.skip_overhead:
        capture_overhead(args.repeats, args.public)
        print()
    if not args.skip_memory:
        streaming_memory()


if __name__ == "__main__":
    main()
