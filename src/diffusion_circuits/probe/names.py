"""Canonical hook-point names for any diffusers ``UNet2DModel``, built from its modules.

Names follow ``<part>.<block>.<kind>.<index>[.<site>]`` and never depend on diffusers'
attribute names; :meth:`NameMap.module_path` maps each back to the module behind it:

==========================  ======================================================
hook point                  diffusers module (``unet.get_submodule(path)``)
==========================  ======================================================
``time_emb``                ``time_embedding`` (before any class embedding is added)
``conv_in``                 ``conv_in``
``down.{b}.resnet.{i}``     ``down_blocks.{b}.resnets.{i}``
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

Attention sites, computed by the recording processor: ``<attn>.q``, ``.k``, ``.v``
([batch, heads, tokens, head_dim]), ``.pattern`` (softmax probabilities, [batch, heads,
queries, keys]) and ``.z`` (``pattern @ v``, the per-head outputs before ``to_out``,
[batch, heads, queries, head_dim]). ``<attn>.out`` is accepted everywhere as an alias of
``<attn>``, the module's output (``to_out`` + residual, divided by its rescale factor).

Layer groups (the paper's seven): the down blocks are split into three consecutive runs
by ``numpy.array_split(range(n), 3)`` -> encoder_early / encoder_middle / encoder_late
(3 blocks: one each; 2 blocks: early, middle and no late; 4 blocks: 2, 1, 1; 5: 2, 2, 1);
the up blocks likewise -> decoder_early (lowest resolution) / middle / late; the mid
block is ``middle``; ``conv_in`` is encoder_early and ``conv_out`` decoder_late; a
``skip.k`` and an attention site belong to the group of the module producing them.
``time_emb`` belongs to no group.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

__all__ = [
    "ATTENTION_SITES",
    "LAYER_GROUPS",
    "HookPoint",
    "NameMap",
    "NamesFilter",
    "build_name_map",
]

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

NamesFilter = str | Sequence[str] | Callable[[str], bool] | None


@dataclass(eq=False)
class HookPoint:
    """Where one named tensor lives.

    ``kind`` says how it is reached: ``"module"`` (a module's output), ``"block"`` (the
    first element of a block's output tuple), ``"skip"`` (entry ``position`` of the skip
    tuple handed to up block ``consumer``) or ``"site"`` (computed inside attention
    ``attention``). ``module`` is the module whose hook sees it.
    """

    name: str
    kind: str
    path: str
    group: str | None
    module: nn.Module
    attention: str | None = None
    site: str | None = None
    source: str | None = None
    consumer: int | None = None
    position: int | None = None


@dataclass
class NameMap:
    """Every hook point of one UNet, in forward order."""

    points: dict[str, HookPoint] = field(default_factory=dict)
    attention_heads: dict[str, int] = field(default_factory=dict)

    @property
    def hook_points(self) -> list[str]:
        return list(self.points)

    @property
    def modules(self) -> dict[str, nn.Module]:
        """Hook points that are a module's (or block's) output -> that module."""
        return {n: p.module for n, p in self.points.items() if p.kind in ("module", "block")}

    @property
    def skip_sources(self) -> list[str]:
        """``skip_sources[k]`` is the hook point whose output is ``skip.k``."""
        return [p.source for p in self.points.values() if p.kind == "skip"]

    def layer_groups(self) -> dict[str, list[str]]:
        return {g: [n for n, p in self.points.items() if p.group == g] for g in LAYER_GROUPS}

    def canonical(self, name: str) -> str:
        """``name`` itself, ``<attn>.out`` -> ``<attn>``; unknown -> ValueError."""
        if name.endswith(".out") and name[: -len(".out")] in self.attention_heads:
            return name[: -len(".out")]
        if name in self.points:
            return name
        close = difflib.get_close_matches(name, self.points, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown hook point {name!r}{hint}")

    def module_path(self, name: str) -> str:
        """Dotted path (for ``unet.get_submodule``) of the module producing ``name``."""
        return self.points[self.canonical(name)].path

    def resolve(self, names: NamesFilter = None) -> list[str]:
        """Hook points selected by None (all), a name, a glob, a list of those or a predicate.

        Returned in forward order, without duplicates.
        """
        if names is None:
            return self.hook_points
        if callable(names):
            return [n for n in self.points if names(n)]
        patterns = [names] if isinstance(names, str) else list(names)
        selected: set[str] = set()
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise ValueError(f"hook names must be strings, got {pattern!r}")
            if any(ch in pattern for ch in "*?["):
                matches = fnmatch.filter(self.points, pattern)
                if not matches:
                    raise ValueError(f"no hook point matches {pattern!r}")
                selected.update(matches)
            else:
                selected.add(self.canonical(pattern))
        return [n for n in self.points if n in selected]


def _thirds(n: int) -> list[int]:
    """Group index (0, 1, 2) of each of ``n`` consecutive blocks (``np.array_split``)."""
    index = np.zeros(n, dtype=int)
    for group, members in enumerate(np.array_split(np.arange(n), 3)):
        index[members] = group
    return index.tolist()


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


def build_name_map(unet: nn.Module) -> NameMap:
    """Walk ``unet`` once and name every hook point, in forward order.

    Examples
    --------
    >>> from diffusers import UNet2DModel
    >>> unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
    ...                    layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
    ...                    up_block_types=("UpBlock2D",) * 2, attention_head_dim=4)
    >>> names = build_name_map(unet)
    >>> names.hook_points[:6]
    ['time_emb', 'conv_in', 'skip.0', 'down.0.resnet.0', 'skip.1', 'down.0.downsample']
    >>> names.attention_heads, names.module_path("mid.attn.0.pattern")
    ({'mid.attn.0': 2}, 'mid_block.attentions.0')
    >>> names.layer_groups()["encoder_middle"]
    ['down.1.resnet.0', 'skip.3']
    """
    missing = [
        a for a in ("conv_in", "down_blocks", "up_blocks", "conv_out") if not hasattr(unet, a)
    ]
    if missing:
        raise ValueError(
            f"Probe needs a diffusers UNet2DModel; {type(unet).__name__} has no {', '.join(missing)}"
        )
    names = NameMap()
    points = names.points

    def add(name, module, path, group, kind="module") -> None:
        points[name] = HookPoint(name, kind, path, group, module)

    def add_attention(name, module, path, group) -> None:
        add(name, module, path, group)
        names.attention_heads[name] = module.heads
        for site in ATTENTION_SITES:
            points[f"{name}.{site}"] = HookPoint(
                f"{name}.{site}", "site", path, group, module, attention=name, site=site
            )

    skips: list[HookPoint] = []

    def add_skip(source: str) -> None:
        k = len(skips)
        producer = points[source]
        point = HookPoint(f"skip.{k}", "skip", producer.path, producer.group, unet, source=source)
        points[point.name] = point
        skips.append(point)

    if getattr(unet, "time_embedding", None) is not None:
        add("time_emb", unet.time_embedding, "time_embedding", None)
    add("conv_in", unet.conv_in, "conv_in", LAYER_GROUPS[0])
    add_skip("conv_in")
    encoder = _thirds(len(unet.down_blocks))
    for b, block in enumerate(unet.down_blocks):
        group = LAYER_GROUPS[encoder[b]]
        for kind, i, module in _interleaved(block):
            path = f"down_blocks.{b}.{'resnets' if kind == 'resnet' else 'attentions'}.{i}"
            if kind == "resnet":
                add(f"down.{b}.resnet.{i}", module, path, group)
            else:
                add_attention(f"down.{b}.attn.{i}", module, path, group)
            # every resnet's output (after its attention, if any) is handed on as a skip
            if kind == "attn" or not _has_attention(block, i):
                add_skip(f"down.{b}.{kind}.{i}")
        if getattr(block, "resnet_down", None) is not None:  # Skip*DownBlock2D
            add(f"down.{b}.downsample", block, f"down_blocks.{b}", group, kind="block")
            add_skip(f"down.{b}.downsample")
        elif getattr(block, "downsamplers", None):
            add(
                f"down.{b}.downsample",
                block.downsamplers[0],
                f"down_blocks.{b}.downsamplers.0",
                group,
            )
            add_skip(f"down.{b}.downsample")
    mid = getattr(unet, "mid_block", None)
    if mid is not None:
        resnets = list(mid.resnets)
        attentions = list(getattr(mid, "attentions", None) or [])
        add("mid.resnet.0", resnets[0], "mid_block.resnets.0", "middle")
        for i, resnet in enumerate(resnets[1:]):
            if i < len(attentions) and attentions[i] is not None:
                add_attention(f"mid.attn.{i}", attentions[i], f"mid_block.attentions.{i}", "middle")
            add(f"mid.resnet.{i + 1}", resnet, f"mid_block.resnets.{i + 1}", "middle")
        add("mid", mid, "mid_block", "middle")
    decoder = _thirds(len(unet.up_blocks))
    remaining = len(skips)
    for b, block in enumerate(unet.up_blocks):
        group = LAYER_GROUPS[4 + decoder[b]]
        # up block b receives the last len(resnets) unconsumed skips, in skip order
        remaining -= len(block.resnets)
        for j in range(len(block.resnets)):
            if 0 <= remaining + j < len(skips):
                skips[remaining + j].consumer, skips[remaining + j].position = b, j
        for kind, i, module in _interleaved(block):
            path = f"up_blocks.{b}.{'resnets' if kind == 'resnet' else 'attentions'}.{i}"
            if kind == "resnet":
                add(f"up.{b}.resnet.{i}", module, path, group)
            else:
                add_attention(f"up.{b}.attn.{i}", module, path, group)
        if getattr(block, "resnet_up", None) is not None:  # Skip*UpBlock2D
            add(f"up.{b}.upsample", block.resnet_up, f"up_blocks.{b}.resnet_up", group)
        elif getattr(block, "upsamplers", None):
            add(f"up.{b}.upsample", block.upsamplers[0], f"up_blocks.{b}.upsamplers.0", group)
    add("conv_out", unet.conv_out, "conv_out", LAYER_GROUPS[-1])
    for skip in skips:
        if skip.consumer is None:
            raise ValueError(
                f"{skip.name} is consumed by no up block: the UNet's down and up blocks do not match"
            )
        skip.module = unet.up_blocks[skip.consumer]
    return names


def _has_attention(block: nn.Module, i: int) -> bool:
    attentions = list(getattr(block, "attentions", None) or [])
    return len(attentions) == len(block.resnets) and attentions[i] is not None
