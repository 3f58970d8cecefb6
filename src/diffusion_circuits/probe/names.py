"""Canonical hook-point names for any diffusers ``UNet2DModel``, built from its modules.

Names follow ``<part>.<block>.<kind>.<index>[.<site>]`` and are independent of diffusers'
attribute names (``module_path`` maps back):

=========================  ==============================================
``time_emb``               ``time_embedding``
``conv_in``                ``conv_in``
``down.{b}.resnet.{i}``    ``down_blocks.{b}.resnets.{i}``
``down.{b}.attn.{i}``      ``down_blocks.{b}.attentions.{i}``
``down.{b}.downsample``    ``down_blocks.{b}.downsamplers.0``
``mid.resnet.{i}``         ``mid_block.resnets.{i}``
``mid.attn.{i}``           ``mid_block.attentions.{i}``
``mid``                    ``mid_block`` (the bottleneck's output)
``up.{b}.resnet.{i}``      ``up_blocks.{b}.resnets.{i}``
``up.{b}.attn.{i}``        ``up_blocks.{b}.attentions.{i}``
``up.{b}.upsample``        ``up_blocks.{b}.upsamplers.0``
``conv_out``               ``conv_out``
``skip.{k}``               entry k of the encoder->decoder skip tuple (skip.0 = conv_in output)
=========================  ==============================================

Attention sites: ``<attn>.q``, ``.k``, ``.v`` ([batch, heads, tokens, head_dim]),
``.pattern`` ([batch, heads, queries, keys]), ``.z`` (per-head outputs before the output
projection, [batch, heads, queries, head_dim]); ``<attn>.out`` is an alias of ``<attn>``.

Layer groups (the paper's seven): down blocks are split into three consecutive runs with
``numpy.array_split`` (encoder_early / middle / late; with fewer than three blocks the
later groups are empty), likewise the up blocks (decoder_early is the first up block, at
the lowest resolution); the mid block is ``middle``; ``conv_in`` is encoder_early and
``conv_out`` decoder_late; ``skip.k`` and attention sites belong to their producer's group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

__all__ = ["ATTENTION_SITES", "LAYER_GROUPS", "NameMap", "build_name_map"]

ATTENTION_SITES = ("q", "k", "v", "pattern", "z")
LAYER_GROUPS = (
    "encoder_early",
    "encoder_middle",
    "encoder_late",
    "middle",
    "decoder_early",
    "decoder_middle",
    "decoder_late",
)


@dataclass
class NameMap:
    """Everything the probe needs to know about one UNet's structure."""

    modules: dict[str, nn.Module] = field(default_factory=dict)  # module hook -> module
    paths: dict[str, str] = field(default_factory=dict)  # module hook -> diffusers path
    hook_points: list[str] = field(default_factory=list)  # every name, forward order
    attention_heads: dict[str, int] = field(default_factory=dict)
    skip_sources: list[str] = field(default_factory=list)  # skip.k -> producing hook
    skip_consumers: list[tuple[int, int]] = field(default_factory=list)  # skip.k -> (up b, j)
    groups: dict[str, str] = field(default_factory=dict)  # name -> layer group

    def layer_groups(self) -> dict[str, list[str]]:
        return {g: [n for n in self.hook_points if self.groups.get(n) == g] for g in LAYER_GROUPS}


def _split(n: int) -> list[int]:
    """Group index (0, 1, 2) of each of ``n`` consecutive blocks."""
    index = np.zeros(n, dtype=int)
    for group, members in enumerate(np.array_split(np.arange(n), 3)):
        index[members] = group
    return index.tolist()


def build_name_map(unet: nn.Module) -> NameMap:
    """Walk ``unet`` once and name every hook point."""
    names = NameMap()

    def add(name: str, module: nn.Module, path: str, group: str | None) -> None:
        names.modules[name] = module
        names.paths[name] = path
        names.hook_points.append(name)
        if group is not None:
            names.groups[name] = group

    def add_attention(name: str, module: nn.Module, path: str, group: str) -> None:
        for site in ATTENTION_SITES:
            names.hook_points.append(f"{name}.{site}")
            names.groups[f"{name}.{site}"] = group
        add(name, module, path, group)
        names.attention_heads[name] = module.heads

    def add_skip(source: str) -> None:
        k = len(names.skip_sources)
        names.skip_sources.append(source)
        names.hook_points.append(f"skip.{k}")
        names.groups[f"skip.{k}"] = names.groups[source]

    add("time_emb", unet.time_embedding, "time_embedding", None)
    add("conv_in", unet.conv_in, "conv_in", "encoder_early")
    add_skip("conv_in")
    encoder = _split(len(unet.down_blocks))
    for b, block in enumerate(unet.down_blocks):
        group = LAYER_GROUPS[encoder[b]]
        attentions = getattr(block, "attentions", None)
        for i, resnet in enumerate(block.resnets):
            add(f"down.{b}.resnet.{i}", resnet, f"down_blocks.{b}.resnets.{i}", group)
            source = f"down.{b}.resnet.{i}"
            if attentions is not None and attentions[i] is not None:
                source = f"down.{b}.attn.{i}"
                add_attention(source, attentions[i], f"down_blocks.{b}.attentions.{i}", group)
            add_skip(source)
        if getattr(block, "downsamplers", None):
            add(
                f"down.{b}.downsample",
                block.downsamplers[0],
                f"down_blocks.{b}.downsamplers.0",
                group,
            )
            add_skip(f"down.{b}.downsample")
    mid = unet.mid_block
    if mid is not None:
        mid_attentions = list(getattr(mid, "attentions", []))
        for i, resnet in enumerate(mid.resnets):
            add(f"mid.resnet.{i}", resnet, f"mid_block.resnets.{i}", "middle")
            if i < len(mid_attentions) and mid_attentions[i] is not None:
                add_attention(
                    f"mid.attn.{i}", mid_attentions[i], f"mid_block.attentions.{i}", "middle"
                )
        add("mid", mid, "mid_block", "middle")
    decoder = _split(len(unet.up_blocks))
    for b, block in enumerate(unet.up_blocks):
        group = LAYER_GROUPS[4 + decoder[b]]
        attentions = getattr(block, "attentions", None)
        for i, resnet in enumerate(block.resnets):
            add(f"up.{b}.resnet.{i}", resnet, f"up_blocks.{b}.resnets.{i}", group)
            if attentions is not None and attentions[i] is not None:
                add_attention(
                    f"up.{b}.attn.{i}", attentions[i], f"up_blocks.{b}.attentions.{i}", group
                )
        if getattr(block, "upsamplers", None):
            add(f"up.{b}.upsample", block.upsamplers[0], f"up_blocks.{b}.upsamplers.0", group)
    add("conv_out", unet.conv_out, "conv_out", "decoder_late")
    # Up block b receives the last len(resnets) skips still unconsumed, as a tuple in
    # skip order (it then pops them from the end): skip.k -> (b, position in that tuple).
    consumers: list[tuple[int, int]] = [(-1, -1)] * len(names.skip_sources)
    position = len(names.skip_sources)
    for b, block in enumerate(unet.up_blocks):
        position -= len(block.resnets)
        for j in range(len(block.resnets)):
            consumers[position + j] = (b, j)
    names.skip_consumers = consumers
    return names
