"""Canonical hook-point names: the family-independent core of the name map.

A :class:`NameMap` lists a model's hook points in forward order, each a
:class:`HookPoint` saying where its tensor lives. Which hook points a model has is the
business of its family's adapter (``probe.adapters``: ``UNet2DModel``,
``UNet2DConditionModel``, ``DiTTransformer2DModel``, ``PixArtTransformer2DModel``);
everything here, and all of capture / intervene / replay, works on any of them.

Names follow ``<part>.<block>.<kind>.<index>[.<site>]`` and never depend on diffusers'
attribute names; :meth:`NameMap.module_path` maps each back to the module behind it.
Attention sites, computed by the recording processor: ``<attn>.q``, ``.k``, ``.v``
([batch, heads, tokens, head_dim]), ``.pattern`` (softmax probabilities, [batch, heads,
queries, keys]; for cross-attention the keys are the encoder tokens) and ``.z``
(``pattern @ v``, the per-head outputs before ``to_out``, [batch, heads, queries,
head_dim]). ``<attn>.out`` is accepted everywhere as an alias of ``<attn>``, the
module's output.

Layer groups are the paper's seven (:data:`LAYER_GROUPS`); each adapter documents how
its blocks map onto them.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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

    ``kind`` says how it is reached: ``"module"`` (a module's output, or the first
    element of its output tuple), ``"block"`` (the first element of a down block's
    ``(hidden, skips)`` output, also its last skip), ``"skip"`` (entry ``position`` of the skip
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
    # the model edits this tensor in place after the hook (UNet2DModel's conv_out): copy it
    copy: bool = False


@dataclass
class NameMap:
    """Every hook point of one UNet, in forward order."""

    points: dict[str, HookPoint] = field(default_factory=dict)
    attention_heads: dict[str, int] = field(default_factory=dict)
    # attention -> where its keys and values come from: "self" or "encoder" (cross)
    attention_keys: dict[str, str] = field(default_factory=dict)

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


def build_name_map(model: nn.Module) -> NameMap:
    """Name every hook point of ``model``, in forward order, with its family's adapter.

    Raises ValueError naming the model's class and the supported ones when no adapter
    fits (see ``probe.adapters``), and a one-line ValueError (never a raw AttributeError)
    when the adapter meets a configuration it does not know.

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
    from diffusion_circuits.probe.adapters import adapter_for  # adapters build NameMaps

    adapter = adapter_for(model)
    try:
        return adapter.build(model)
    except AttributeError as error:  # a config variant the adapter does not know
        raise ValueError(
            f"Probe cannot name the hook points of this {type(model).__name__} "
            f"({type(adapter).__name__}): {error}"
        ) from error
