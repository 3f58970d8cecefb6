"""One adapter per model family: it names the family's hook points, attention sites and
layer groups; the core (capture, intervene, replay, cleanup) never asks which it holds.

An adapter is a class with ``matches(model) -> bool`` and ``build(model) -> NameMap``
(filled with :class:`~diffusion_circuits.probe.adapters.builder.NameMapBuilder`). Adding
a family means adding one module here and its entry in :data:`ADAPTERS`. A model no
family adapter matches falls back to :class:`GenericAdapter` (every submodule by path).
"""

from __future__ import annotations

from torch import nn

from diffusion_circuits.probe.adapters.builder import is_attention
from diffusion_circuits.probe.adapters.dit import DiTAdapter, PixArtAdapter
from diffusion_circuits.probe.adapters.generic import GenericAdapter
from diffusion_circuits.probe.adapters.joint import FluxAdapter, SD3Adapter
from diffusion_circuits.probe.adapters.unet import UNet2DAdapter
from diffusion_circuits.probe.adapters.unet_condition import UNet2DConditionAdapter
from diffusion_circuits.probe.names import NameMap

__all__ = ["ADAPTERS", "SUPPORTED_MODELS", "GenericAdapter", "adapter_for", "build_name_map"]

ADAPTERS = (
    UNet2DAdapter,
    UNet2DConditionAdapter,
    DiTAdapter,
    PixArtAdapter,
    SD3Adapter,
    FluxAdapter,
)
SUPPORTED_MODELS = tuple(adapter.model_class.__name__ for adapter in ADAPTERS)


def adapter_for(model: nn.Module):
    """The adapter of ``model``'s family, else :class:`GenericAdapter`.

    ValueError for a module with no submodules (nothing to name):

    >>> import torch
    >>> type(adapter_for(torch.nn.Sequential(torch.nn.Linear(2, 2)))).__name__
    'GenericAdapter'
    >>> adapter_for(torch.nn.Linear(2, 2))
    Traceback (most recent call last):
    ...
    ValueError: Probe cannot name any hook point of Linear: it has no submodules (family adapters: UNet2DModel, UNet2DConditionModel, DiTTransformer2DModel, PixArtTransformer2DModel, SD3Transformer2DModel, FluxTransformer2DModel)
    """
    for adapter in ADAPTERS:
        if adapter.matches(model):
            return adapter()
    if GenericAdapter.matches(model):
        return GenericAdapter()
    raise ValueError(
        f"Probe cannot name any hook point of {type(model).__name__}: it has no submodules "
        f"(family adapters: {', '.join(SUPPORTED_MODELS)})"
    )


def build_name_map(model: nn.Module, adapter=None) -> NameMap:
    """Name every hook point of ``model``, in forward order, with its family's adapter.

    ``adapter`` overrides the choice (e.g. ``GenericAdapter()``). Raises a one-line
    ValueError (never a raw AttributeError) when the adapter meets a configuration it
    does not know, and when a diffusers attention module of the model is named by no
    hook point: none is dropped silently.

    Examples
    --------
    >>> from diffusers import UNet2DModel
    >>> unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
    ...                    layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
    ...                    up_block_types=("UpBlock2D",) * 2, attention_head_dim=4)
    >>> names = build_name_map(unet)
    >>> names.hook_points[:7]
    ['time_emb', 'conv_in', 'skip.0', 'down.0.resnet.0.residual', 'down.0.resnet.0', 'skip.1', 'down.0.downsample']
    >>> names.attention_heads, names.module_path("mid.attn.0.pattern")
    ({'mid.attn.0': 2}, 'mid_block.attentions.0')
    >>> names.layer_groups()["encoder_middle"]
    ['down.1.resnet.0.residual', 'down.1.resnet.0', 'skip.3']
    """
    adapter = adapter_for(model) if adapter is None else adapter
    try:
        names = adapter.build(model)
    except AttributeError as error:  # a config variant the adapter does not know
        raise ValueError(
            f"Probe cannot name the hook points of this {type(model).__name__} "
            f"({type(adapter).__name__}): {error}"
        ) from error
    named = {p.path for p in names.points.values() if p.role == "attention"}
    for path, module in model.named_modules():
        if is_attention(module) and path not in named:
            raise ValueError(
                f"{type(adapter).__name__} names no hook point for attention {path} "
                f"({type(module).__name__}); Probe(model, adapter=GenericAdapter()) names it by path"
            )
    return names
