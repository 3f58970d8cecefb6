"""One adapter per model family: it names the family's hook points, attention sites and
layer groups; the core (capture, intervene, replay, cleanup) never asks which it holds.

An adapter is a class with ``matches(model) -> bool`` and ``build(model) -> NameMap``
(filled with :class:`~diffusion_circuits.probe.adapters.builder.NameMapBuilder`). Adding
a family means adding one module here and its entry in :data:`ADAPTERS`.
"""

from __future__ import annotations

from torch import nn

from diffusion_circuits.probe.adapters.dit import DiTAdapter, PixArtAdapter
from diffusion_circuits.probe.adapters.unet import UNet2DAdapter
from diffusion_circuits.probe.adapters.unet_condition import UNet2DConditionAdapter

__all__ = ["ADAPTERS", "SUPPORTED_MODELS", "adapter_for"]

ADAPTERS = (UNet2DAdapter, UNet2DConditionAdapter, DiTAdapter, PixArtAdapter)
SUPPORTED_MODELS = tuple(adapter.model_class.__name__ for adapter in ADAPTERS)


def adapter_for(model: nn.Module):
    """The adapter of ``model``'s family; ValueError naming the supported ones if none.

    >>> import torch
    >>> adapter_for(torch.nn.Linear(2, 2))
    Traceback (most recent call last):
    ...
    ValueError: Probe does not support Linear; supported: UNet2DModel, UNet2DConditionModel, DiTTransformer2DModel, PixArtTransformer2DModel
    """
    for adapter in ADAPTERS:
        if adapter.matches(model):
            return adapter()
    raise ValueError(
        f"Probe does not support {type(model).__name__}; supported: {', '.join(SUPPORTED_MODELS)}"
    )
