"""Full tensors for a few images, for the figures that show pictures (Figures 3 and 9).

Everything else is summarised per image; these few denoising trajectories with their
attention patterns are kept whole, in float16.
"""

from __future__ import annotations

import numpy as np
import torch

from diffusion_circuits.analysis.model_io import TrainedModel
from diffusion_circuits.model.forward import denoise
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.params import Params
from diffusion_circuits.probe import Probe

__all__ = ["figure_tensors"]


@torch.no_grad()
def figure_tensors(model: TrainedModel, params: Params) -> dict[str, np.ndarray]:
    """Samples, their trajectory at the probe timesteps and every attention pattern there.

    Keys: ``samples`` [n, C, H, W]; ``timesteps`` [T]; ``states`` [T, n, C, H, W];
    ``pattern:<hook>`` [T, n, heads, queries, keys]; ``real`` [n, H, W, 3] uint8 (probe
    images of the training dataset, for side-by-side panels).
    """
    n = params.probe.n_figure_images
    trajectory = sample_trajectory(
        model.network,
        model.scheduler,
        n=n,
        seed=params.probe.seed,
        record=list(params.probe.timesteps),
    )
    probe = Probe(model.network)
    sites = {attn: f"{attn}.pattern" for attn in probe.attention_heads}
    patterns: dict[str, list[torch.Tensor]] = {attn: [] for attn in sites}
    for timestep, state in zip(trajectory.timesteps, trajectory.states, strict=True):
        with probe.capture(names=list(sites.values())) as cache:
            device = model.network.device
            timesteps = torch.full((n,), timestep, dtype=torch.long, device=device)
            denoise(model.network, state.to(device), timesteps)
        for attn, site in sites.items():
            patterns[attn].append(cache[site].cpu())
    tensors = {
        "samples": trajectory.samples.half().numpy(),
        "timesteps": np.asarray(trajectory.timesteps),
        "states": trajectory.states.half().numpy(),
        "real": model.probe_set.images[:n],
    }
    for attn, values in patterns.items():
        tensors[f"pattern:{attn}"] = torch.stack(values).half().numpy()
    return tensors
