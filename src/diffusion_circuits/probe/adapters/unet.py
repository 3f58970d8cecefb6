"""Adapter for diffusers ``UNet2DModel``; its walk is shared by the conditional U-Net.

==========================  ======================================================
hook point                  diffusers module (``unet.get_submodule(path)``)
==========================  ======================================================
``time_emb``                ``time_embedding`` (before any class embedding is added)
``conv_in``                 ``conv_in``
``down.{b}.resnet.{i}``     ``down_blocks.{b}.resnets.{i}``
``<resnet>.residual``       ``<resnet path>.conv2``: the ResNet block's residual
                            branch (its output is ``(shortcut(x) + residual) /
                            output_scale_factor``); listed just before its resnet
``down.{b}.attn.{i}``       ``down_blocks.{b}.attentions.{i}``
``down.{b}.downsample``     ``down_blocks.{b}.downsamplers.0``; Skip blocks:
                            ``down_blocks.{b}`` (its first output, after the
                            ``resnet_down`` + ``skip_conv`` sum)
``mid.resnet.{i}``          ``mid_block.resnets.{i}``
``mid.attn.{i}``            ``mid_block.attentions.{i}``
``mid``                     ``mid_block`` (the bottleneck's output)
``up.{b}.resnet.{i}``       ``up_blocks.{b}.resnets.{i}``
``up.{b}.attn.{i}``         ``up_blocks.{b}.attentions.{i}``
``up.{b}.upsample``         ``up_blocks.{b}.upsamplers.0``; Skip blocks:
                            ``up_blocks.{b}.resnet_up``
``conv_out``                ``conv_out`` (after conv_norm_out and conv_act)
``skip.{k}``                entry k of the skip tuple (``down_block_res_samples``);
                            path = the module producing it, ``skip.0`` = ``conv_in``
==========================  ======================================================

In ``UNet2DModel`` each ``*.attn.{i}`` is one diffusers ``Attention`` (self-attention
over the pixels) with the sites ``.q .k .v .pattern .z``; its output is ``to_out`` +
residual, divided by the rescale factor.

Layer groups (the paper's seven): the down blocks are split into three consecutive runs
by ``numpy.array_split(range(n), 3)`` -> encoder_early / encoder_middle / encoder_late
(3 blocks: one each; 2 blocks: early, middle and no late; 4 blocks: 2, 1, 1; 5: 2, 2, 1);
the up blocks likewise -> decoder_early (lowest resolution) / middle / late; the mid
block is ``middle``; ``conv_in`` is encoder_early and ``conv_out`` decoder_late; a
``skip.k``, a residual branch and an attention site belong to the group of the module
producing them. ``time_emb`` belongs to no group.
"""

from __future__ import annotations

from diffusers import UNet2DModel
from torch import nn

from diffusion_circuits.probe.adapters.builder import NameMapBuilder, depth_groups
from diffusion_circuits.probe.names import LAYER_GROUPS, NameMap

__all__ = ["UNet2DAdapter"]

ENCODER, DECODER = LAYER_GROUPS[:3], LAYER_GROUPS[4:]
SAMPLER = {"role": "sampler", "main": True}


def _interleaved(block: nn.Module) -> list[tuple[str, int, nn.Module]]:
    """The block's resnets and attentions in the order its forward calls them."""
    resnets = list(block.resnets)
    attentions = list(getattr(block, "attentions", None) or [])
    order: list[tuple[str, int, nn.Module]] = []
    if len(attentions) == len(resnets):  # resnet i then attention i (Attn*Block2D)
        for i, resnet in enumerate(resnets):
            order.append(("resnet", i, resnet))
            if attentions[i] is not None:
                order.append(("attn", i, attentions[i]))
    else:  # AttnSkipUpBlock2D: one attention after all resnets
        order += [("resnet", i, r) for i, r in enumerate(resnets)]
        order += [("attn", i, a) for i, a in enumerate(attentions) if a is not None]
    return order


def _has_attention(block: nn.Module, i: int) -> bool:
    attentions = list(getattr(block, "attentions", None) or [])
    return len(attentions) == len(block.resnets) and attentions[i] is not None


class UNet2DAdapter:
    """Names the hook points of a ``UNet2DModel`` (see the module docstring)."""

    model_class = UNet2DModel

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return isinstance(model, cls.model_class)

    def add_attention(
        self, names: NameMapBuilder, name: str, module: nn.Module, path: str, group: str
    ) -> None:
        """One entry of a block's ``attentions``; here a plain ``Attention``."""
        names.attention(name, module, path, group, main=True)

    def build(self, unet: nn.Module) -> NameMap:
        names = NameMapBuilder()
        if getattr(unet, "time_embedding", None) is not None:
            names.add("time_emb", unet.time_embedding, "time_embedding", None, role="embedding")
        names.add("conv_in", unet.conv_in, "conv_in", ENCODER[0], role="input", main=True)
        skips = [names.skip("conv_in")]
        for b, (block, group) in enumerate(
            zip(unet.down_blocks, depth_groups(len(unet.down_blocks), ENCODER), strict=True)
        ):
            for kind, i, module in _interleaved(block):
                path = f"down_blocks.{b}.{'resnets' if kind == 'resnet' else 'attentions'}.{i}"
                self._add_part(names, f"down.{b}.{kind}.{i}", kind, module, path, group)
                # every resnet's output (after its attention, if any) is handed on as a skip
                if kind == "attn" or not _has_attention(block, i):
                    skips.append(names.skip(f"down.{b}.{kind}.{i}"))
            if getattr(block, "resnet_down", None) is not None:  # Skip*DownBlock2D
                names.add(
                    f"down.{b}.downsample",
                    block,
                    f"down_blocks.{b}",
                    group,
                    kind="block",
                    **SAMPLER,
                )
                skips.append(names.skip(f"down.{b}.downsample"))
            elif getattr(block, "downsamplers", None):
                path = f"down_blocks.{b}.downsamplers.0"
                names.add(f"down.{b}.downsample", block.downsamplers[0], path, group, **SAMPLER)
                skips.append(names.skip(f"down.{b}.downsample"))
        mid = getattr(unet, "mid_block", None)
        if mid is not None:
            resnets = list(mid.resnets)
            attentions = list(getattr(mid, "attentions", None) or [])
            names.resnet("mid.resnet.0", resnets[0], "mid_block.resnets.0", "middle")
            for i, resnet in enumerate(resnets[1:]):
                if i < len(attentions) and attentions[i] is not None:
                    path = f"mid_block.attentions.{i}"
                    self.add_attention(names, f"mid.attn.{i}", attentions[i], path, "middle")
                path = f"mid_block.resnets.{i + 1}"
                names.resnet(f"mid.resnet.{i + 1}", resnet, path, "middle")
            names.add("mid", mid, "mid_block", "middle", role="bottleneck")
        remaining = len(skips)
        for b, (block, group) in enumerate(
            zip(unet.up_blocks, depth_groups(len(unet.up_blocks), DECODER), strict=True)
        ):
            # up block b receives the last len(resnets) unconsumed skips, in skip order
            remaining -= len(block.resnets)
            for j in range(len(block.resnets)):
                if 0 <= remaining + j < len(skips):
                    skips[remaining + j].consumer, skips[remaining + j].position = b, j
            for kind, i, module in _interleaved(block):
                path = f"up_blocks.{b}.{'resnets' if kind == 'resnet' else 'attentions'}.{i}"
                self._add_part(names, f"up.{b}.{kind}.{i}", kind, module, path, group)
            if getattr(block, "resnet_up", None) is not None:  # Skip*UpBlock2D
                names.add(
                    f"up.{b}.upsample",
                    block.resnet_up,
                    f"up_blocks.{b}.resnet_up",
                    group,
                    **SAMPLER,
                )
            elif getattr(block, "upsamplers", None):
                path = f"up_blocks.{b}.upsamplers.0"
                names.add(f"up.{b}.upsample", block.upsamplers[0], path, group, **SAMPLER)
        # UNet2DModel adds the FIR skip sample to conv_out's output in place
        names.add(
            "conv_out", unet.conv_out, "conv_out", DECODER[-1], role="output", main=True, copy=True
        )
        for skip in skips:
            if skip.consumer is None:
                raise ValueError(
                    f"{skip.name} is consumed by no up block: the UNet's down and up blocks do not match"
                )
            # a skip is read (and edited) where its up block receives it
            skip.module = unet.up_blocks[skip.consumer]
        return names.done()

    def _add_part(self, names, name, kind, module, path, group) -> None:
        if kind == "resnet":
            names.resnet(name, module, path, group)
        else:
            self.add_attention(names, name, module, path, group)
