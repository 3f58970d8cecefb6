"""Adapter for diffusers ``UNet2DConditionModel`` (the Stable Diffusion family).

The block structure is ``UNet2DModel``'s (same names: ``time_emb``, ``conv_in``,
``down.{b}.resnet.{i}`` with ``.residual``, ``down.{b}.downsample``, ``mid``, ``skip.{k}``,
``up...``, ``conv_out``; same layer groups), but each ``*.attn.{i}`` is a spatial
``Transformer2DModel`` holding ``transformer_layers_per_block`` transformer blocks:

===================================  ==========================================
hook point                           diffusers module
===================================  ==========================================
``down.{b}.attn.{i}``                ``down_blocks.{b}.attentions.{i}``: the spatial
                                     transformer's output (proj_out + residual)
``<attn>.block.{j}``                 ``<attn path>.transformer_blocks.{j}``
``<attn>.block.{j}.self``            ``....attn1``: self-attention over the pixels
``<attn>.block.{j}.cross``           ``....attn2``: cross-attention, keys and values
                                     from ``encoder_hidden_states`` (text tokens)
``<attn>.block.{j}.ff``              ``....ff``: the feed-forward output
===================================  ==========================================

``.self`` and ``.cross`` carry the attention sites ``.q .k .v .pattern .z``; a cross
pattern is ``[batch, heads, queries (pixels), tokens]``. ``Probe.attention_keys``
tells the two apart (``"self"`` / ``"encoder"``), also in configs where ``attn1`` is
itself a cross-attention (``only_cross_attention``).
"""

from __future__ import annotations

from diffusers import UNet2DConditionModel
from torch import nn

from diffusion_circuits.probe.adapters.builder import NameMapBuilder
from diffusion_circuits.probe.adapters.unet import UNet2DAdapter

__all__ = ["UNet2DConditionAdapter"]


class UNet2DConditionAdapter(UNet2DAdapter):
    """Names the hook points of a ``UNet2DConditionModel`` (see the module docstring)."""

    model_class = UNet2DConditionModel

    def add_attention(
        self, names: NameMapBuilder, name: str, module: nn.Module, path: str, group: str
    ) -> None:
        blocks = getattr(module, "transformer_blocks", None)
        if blocks is None:  # e.g. an AttnDownBlock2D inside a conditional U-Net
            super().add_attention(names, name, module, path, group)
            return
        for j, block in enumerate(blocks):
            block_path = f"{path}.transformer_blocks.{j}"
            names.transformer_block(f"{name}.block.{j}", block, block_path, group)
        names.add(name, module, path, group, role="transformer", main=True)
