"""Sampling from a trained model, keeping the intermediate ``x_t`` along the trajectory.

Figures need both the final samples and the states in between (Figure 9 shows the
denoising trajectory with attention patterns at chosen timesteps), so this is a plain
DDIM loop over the diffusers scheduler rather than a pipeline that only returns images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from PIL import Image

from diffusion_circuits.io import atomic_path
from diffusion_circuits.model.factory import Denoiser
from diffusion_circuits.model.forward import denoise

__all__ = ["Trajectory", "sample_trajectory", "sample_grid", "save_sample_grid"]


@dataclass(frozen=True)
class Trajectory:
    samples: torch.Tensor  # [N, C, H, W] in [-1, 1]
    timesteps: list[int]  # the recorded timesteps, in denoising order (high to low)
    states: torch.Tensor  # [len(timesteps), N, C, H, W]: x_t entering the step at t


@torch.no_grad()
def sample_trajectory(
    unet: Denoiser,
    scheduler: DDPMScheduler,
    n: int,
    seed: int,
    num_inference_steps: int = 50,
    record: Sequence[int] | None = None,
    step_context: Callable[[int], contextlib.AbstractContextManager] | None = None,
) -> Trajectory:
    """Generate ``n`` images with DDIM (eta=0) and record ``x_t`` at the steps nearest ``record``.

    ``record`` lists timesteps in [0, T); each is mapped to the closest inference step.
    With ``record=None`` every inference step is kept. ``step_context(t)``, when given,
    is entered around the network call of the step at ``t`` (an intervention during
    sampling: the same ``seed`` gives every run the same starting noise).
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
    # Drawn on the CPU so that every device starts from the same noise.
    x = torch.randn((n, unet.config.in_channels, size, size), generator=generator)
    x = x.to(unet.device)
    kept_t, kept_x = [], []
    for t in steps:
        if t in wanted:
            kept_t.append(t)
            kept_x.append(x.to("cpu", copy=True))
        # DDIM reads scheduler.config.prediction_type, so the raw output goes in as it is.
        with step_context(t) if step_context else contextlib.nullcontext():
            output = denoise(unet, x, torch.full((n,), t, dtype=torch.long, device=x.device))
        x = ddim.step(output, t, x, eta=0.0).prev_sample
    x = x.cpu()
    states = torch.stack(kept_x) if kept_x else x.new_zeros((0, *x.shape))
    return Trajectory(samples=x.clamp(-1, 1), timesteps=kept_t, states=states)


def sample_grid(samples: torch.Tensor, columns: int, border: int = 1) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> uint8 [rows * (H + b), columns * (W + b), C] image grid.

    Examples
    --------
    >>> sample_grid(torch.zeros(3, 1, 2, 2), columns=2).shape
    (6, 6, 1)
    """
    n, channels, height, width = samples.shape
    rows = -(-n // columns)
    grid = np.full((rows * (height + border), columns * (width + border), channels), 255, np.uint8)
    pixels = ((samples.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1)
    for i, image in enumerate(pixels.numpy()):
        top, left = (i // columns) * (height + border), (i % columns) * (width + border)
        grid[top : top + height, left : left + width] = image
    return grid


def save_sample_grid(samples: torch.Tensor, columns: int, path: Path, scale: int = 3) -> None:
    """Write the grid as a PNG, each pixel drawn ``scale`` x ``scale`` so faces are visible."""
    grid = sample_grid(samples, columns)
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
