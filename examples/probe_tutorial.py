"""Probe tutorial: cross-attention over a whole sampling trajectory, streamed to disk, and
a head ablated over a timestep window.

Runs on CPU in seconds with random weights (no download): it builds a tiny Stable
Diffusion-shaped U-Net, saves it with its scheduler to a local folder, loads both back
with ``from_pretrained`` (the way you would load a real checkpoint folder), then

1. samples with classifier-free guidance while streaming the conditional half's
   cross-attention patterns, averaged over heads and pixels (one weight per text token),
   to parquet/npz shards with a JSON manifest;
2. samples again from the same noise with one cross-attention head ablated only for
   t in [600, 900], and compares the two samples.

The text embeddings are random stand-ins for a text encoder's output (a CLIP/T5 encoder
needs the ``transformers`` package, which this project does not install).

    python examples/probe_tutorial.py [output_folder]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel

from diffusion_circuits.probe import (
    DiskSink,
    HeadAblation,
    Probe,
    Scheduled,
    load_tensors,
    read_manifest,
)

TOKENS, STEPS, GUIDANCE = 6, 10, 5.0


def build_and_save(folder: Path) -> None:
    """A Stable Diffusion 1.5-shaped U-Net, shrunk, and a DDIM scheduler, saved to disk."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=16,
        attention_head_dim=4,  # diffusers' name for the number of heads
        norm_num_groups=8,
    )
    unet.save_pretrained(folder / "unet")
    DDIMScheduler(num_train_timesteps=1000).save_pretrained(folder / "scheduler")


def sample(unet, scheduler, text, empty, seed: int = 0) -> torch.Tensor:
    """Classifier-free-guided DDIM sampling: a plain loop over ``scheduler.timesteps``."""
    generator = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    x = torch.randn(len(text), unet.config.in_channels, size, size, generator=generator)
    scheduler.set_timesteps(STEPS)
    context = torch.cat([empty, text])  # [uncond, cond], as diffusers pipelines stack it
    for t in scheduler.timesteps:
        with torch.no_grad():
            eps = unet(torch.cat([x, x]), t, encoder_hidden_states=context).sample
        uncond, cond = eps.chunk(2)
        x = scheduler.step(uncond + GUIDANCE * (cond - uncond), t, x).prev_sample
    return x


def main(out: Path) -> dict:
    build_and_save(out / "model")
    unet = UNet2DConditionModel.from_pretrained(out / "model" / "unet").eval()
    scheduler = DDIMScheduler.from_pretrained(out / "model" / "scheduler")
    probe = Probe(unet)
    cross = [name for name, keys in probe.attention_keys.items() if keys == "encoder"]
    print(f"{len(probe.hook_points)} hook points; cross-attention: {cross}")

    generator = torch.Generator().manual_seed(1)
    text = torch.randn(2, TOKENS, unet.config.cross_attention_dim, generator=generator)
    empty = torch.zeros_like(text)

    # 1. stream the conditional half's cross-attention, reduced to a weight per token
    per_token = lambda name, pattern: pattern.mean(dim=(1, 2))  # noqa: E731 [batch, tokens]
    sink = DiskSink(out / "trajectory")
    with probe.stream([f"{c}.pattern" for c in cross], sink, reduce=per_token, guidance="cond"):
        clean = sample(unet, scheduler, text, empty)
    manifest = read_manifest(out / "trajectory")
    timesteps, weights = load_tensors(out / "trajectory", f"{cross[0]}.pattern")
    print(
        f"{len(manifest['shards'])} shard(s); {cross[0]}: {weights.shape} (steps, images, tokens)"
    )
    for t, w in zip(timesteps, weights, strict=True):
        print(f"  t={t:4d} token weights of image 0: " + " ".join(f"{v:.3f}" for v in w[0]))

    # 2. the same noise, head 0 of the first cross-attention ablated for t in [600, 900]
    ablation = Scheduled(HeadAblation(cross[0], head=0), window=(600, 900))
    with probe.intervene(ablation):
        ablated = sample(unet, scheduler, text, empty)
    change = (ablated - clean).pow(2).mean().sqrt().item()
    print(
        f"RMS change of the samples from ablating {cross[0]} head 0 at t in [600, 900]: {change:.4g}"
    )
    return {"timesteps": timesteps, "weights": weights, "clean": clean, "ablated": ablated}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
