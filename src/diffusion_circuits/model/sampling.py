"""Sampling from a trained model, keeping the intermediate ``x_t`` along the trajectory.

Figures need both the final samples and the states in between (Figure 9 shows the
denoising trajectory with attention patterns at chosen timesteps), so this is a plain
DDIM loop over the diffusers scheduler rather than a pipeline that only returns images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

__all__ = ["Trajectory", "sample_trajectory"]


@dataclass(frozen=True)
class Trajectory:
    samples: torch.Tensor  # [N, C, H, W] in [-1, 1]
    timesteps: list[int]  # the recorded timesteps, in denoising order (high to low)
    states: torch.Tensor  # [len(timesteps), N, C, H, W]: x_t entering the step at t


@torch.no_grad()
def sample_trajectory(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    n: int,
    seed: int,
    num_inference_steps: int = 50,
    record: Sequence[int] | None = None,
) -> Trajectory:
    """Generate ``n`` images with DDIM (eta=0) and record ``x_t`` at the steps nearest ``record``.

    ``record`` lists timesteps in [0, T); each is mapped to the closest inference step.
    With ``record=None`` every inference step is kept.
    """
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(num_inference_steps)
    steps = [int(t) for t in ddim.timesteps]
    if record is None:
        wanted = set(steps)
    else:
        t_max = scheduler.config.num_train_timesteps
        bad = [t for t in record if not 0 <= t < t_max]
        if bad:
            raise ValueError(f"record timesteps {bad} outside [0, {t_max})")
        wanted = {min(steps, key=lambda s, t=t: abs(s - t)) for t in record}
    generator = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    x = torch.randn((n, unet.config.in_channels, size, size), generator=generator)
    kept_t, kept_x = [], []
    for t in steps:
        if t in wanted:
            kept_t.append(t)
            kept_x.append(x.clone())
        eps = unet(x, torch.full((n,), t, dtype=torch.long)).sample
        x = ddim.step(eps, t, x, eta=0.0).prev_sample
    return Trajectory(samples=x.clamp(-1, 1), timesteps=kept_t, states=torch.stack(kept_x))
