"""One forward call for every backbone: ``denoise(network, x_t, t) -> output``.

The backbones take different arguments: ``UNet2DModel(sample, timestep)``, but the DiT
is class-conditional (adaLN-Zero mixes a class embedding into every block's modulation)
and must be told the class, 0, the only one the study trains. Every training step,
evaluation, sampling step and probed run goes through :func:`denoise`, so no caller
asks which backbone it holds.
"""

from __future__ import annotations

import torch
from diffusers import DiTTransformer2DModel
from torch import nn

__all__ = ["denoise", "forward_kwargs", "unwrapped"]


def unwrapped(network: nn.Module) -> nn.Module:
    """The diffusers model inside DDP (accelerate keeps it in ``.module``) or
    ``torch.compile`` (``._orig_mod``) wrappers."""
    for attribute in ("module", "_orig_mod"):
        inner = getattr(network, attribute, None)
        if isinstance(inner, nn.Module):
            return unwrapped(inner)
    return network


def forward_kwargs(network: nn.Module, batch: int, device) -> dict[str, torch.Tensor]:
    """The conditioning a backbone needs beside ``(sample, timestep)``: none for a U-Net,
    class 0 for every item for the one-class DiT."""
    if isinstance(unwrapped(network), DiTTransformer2DModel):
        return {"class_labels": torch.zeros(batch, dtype=torch.long, device=device)}
    return {}


def denoise(network: nn.Module, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The network's raw output (``.sample``: epsilon or v) for ``x_t`` at timesteps ``t``.

    Examples
    --------
    >>> from diffusers import UNet2DModel
    >>> unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
    ...     block_out_channels=(8, 8), down_block_types=("DownBlock2D",) * 2,
    ...     up_block_types=("UpBlock2D",) * 2, norm_num_groups=8)
    >>> denoise(unet, torch.zeros(2, 1, 8, 8), torch.tensor([3, 3])).shape
    torch.Size([2, 1, 8, 8])
    """
    return network(x_t, t, **forward_kwargs(network, x_t.shape[0], x_t.device)).sample
