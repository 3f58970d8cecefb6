"""Canonical hook-point names: the family-independent core of the name map.

A :class:`NameMap` lists a model's hook points in forward order, each a
:class:`HookPoint` saying where its tensor lives and what it is. Which hook points a
model has is the business of its family's adapter (``probe.adapters``, which also holds
:func:`~diffusion_circuits.probe.adapters.build_name_map`); everything here, and all of
capture / intervene / replay, works on any of them. This module imports no adapter.

Names follow ``<part>.<block>.<kind>.<index>[.<site>]`` and never depend on diffusers'
attribute names; :meth:`NameMap.module_path` maps each back to the module behind it.
Attention sites, computed by the recording processor: ``<attn>.q``, ``.k``, ``.v``
([batch, heads, tokens, head_dim]), ``.pattern`` (softmax probabilities, [batch, heads,
queries, keys]; for cross-attention the keys are the encoder tokens) and ``.z``
(``pattern @ v``, the per-head outputs before ``to_out``, [batch, heads, queries,
head_dim]). ``<attn>.out`` is accepted everywhere as an alias of ``<attn>``, the
module's output.

Every hook point has a ``kind`` (how the hooks reach it: :data:`POINT_KINDS`) and a
``role`` (what it is: :data:`ROLES`); structural queries (main path, skip edges, heads)
read those, so nobody parses names. Layer groups are the paper's seven for a U-Net
(:data:`LAYER_GROUPS`) and early / middle / late blocks for a transformer
(:data:`TRANSFORMER_LAYER_GROUPS`); each adapter documents how its blocks map onto them
and :attr:`NameMap.group_order` says which of the two a model has.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from torch import nn

from diffusion_circuits.vocabulary import LAYER_GROUPS, TRANSFORMER_LAYER_GROUPS

__all__ = [
    "ATTENTION_SITES",
    "LAYER_GROUPS",
    "TRANSFORMER_LAYER_GROUPS",
    "POINT_KINDS",
    "ROLES",
    "Head",
    "HookPoint",
    "NameMap",
    "NamesFilter",
    "SkipEdge",
    "TokenLayout",
]

ATTENTION_SITES = ("q", "k", "v", "pattern", "z")
# how a hook point's tensor is reached (see HookPoint)
POINT_KINDS = ("module", "block", "skip", "site")
ROLES = (
    "embedding",  # conditioning computed once per forward: time_emb, adaln, text_proj
    "input",  # the first map into the main path: conv_in, patch_embed
    "output",  # the prediction (before unpatchifying): conv_out, proj_out
    "resnet",  # a ResNet block's output
    "residual",  # a ResNet block's residual branch (conv2)
    "attention",  # a diffusers Attention module's output
    "site",  # q, k, v, pattern, z inside an attention
    "transformer",  # a spatial transformer (Transformer2DModel) inside a U-Net block
    "block",  # a transformer block's output (residual stream)
    "ff",  # a feed-forward output
    "modulation",  # adaLN modulation vectors of one block
    "gate",  # GLIGEN's gated fuser (grounding tokens)
    "sampler",  # a down- or upsampler
    "bottleneck",  # the U-Net mid block's output
    "skip",  # an entry of the encoder -> decoder skip tuple
    "module",  # a module named by its path (generic adapter)
)

NamesFilter = str | Sequence[str] | Callable[[str], bool] | None


@dataclass(eq=False)
class HookPoint:
    """Where one named tensor lives, and what it is.

    ``kind`` says how it is reached: ``"module"`` (a module's output, or element
    ``output_index`` of its output tuple), ``"block"`` (the first element of a down
    block's ``(hidden, skips)`` output, also its last skip), ``"skip"`` (entry
    ``position`` of the skip tuple handed to up block ``consumer``) or ``"site"``
    (computed inside attention ``attention``). ``module`` is the module whose hook sees
    it. ``role`` is one of :data:`ROLES`; ``main`` marks the main path (the blocks an
    image passes through, in order).
    """

    name: str
    kind: str
    path: str
    group: str | None
    module: nn.Module
    role: str = "module"
    main: bool = False
    attention: str | None = None
    site: str | None = None
    source: str | None = None
    consumer: int | None = None
    position: int | None = None
    # which element of a tuple output (FLUX / SD3 blocks return (text, image))
    output_index: int = 0
    # the model edits this tensor in place after the hook (UNet2DModel's conv_out): copy it
    copy: bool = False


class SkipEdge(NamedTuple):
    """Encoder -> decoder skip ``name`` (``skip.<index>``): produced by hook point
    ``source``, consumed as entry ``position`` of up block ``consumer``'s skips."""

    name: str
    index: int
    source: str
    consumer: int
    position: int


class Head(NamedTuple):
    """Head ``index`` of attention hook point ``attention``.

    ``name`` (``"<attention>.head.<index>"``) is a label for tables, not a hook point:
    a head is a slice of its attention's sites.

    >>> Head("mid.attn.0", 3).name
    'mid.attn.0.head.3'
    >>> Head.from_name("mid.attn.0.head.3"), Head.from_name("mid.attn.0")
    (Head(attention='mid.attn.0', index=3), None)
    """

    attention: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.attention}.head.{self.index}"

    @classmethod
    def from_name(cls, label: str) -> Head | None:
        """The head a ``"<attention>.head.<index>"`` label names; None for other labels."""
        attention, sep, index = label.rpartition(".head.")
        return cls(attention, int(index)) if sep and index.isdigit() else None


class TokenLayout(NamedTuple):
    """Token segments along an attention pattern's query and key axes, in order.

    ``("image",)`` for pixels or patches, ``("text",)`` for encoder tokens;
    joint attention over ``[image; text]`` (SD3) has ``("image", "text")`` on both axes,
    FLUX ``("text", "image")``; added key/value projections (``AttnAddedKVProcessor``)
    attend from ``("image",)`` to ``("text", "image")``.
    """

    queries: tuple[str, ...]
    keys: tuple[str, ...]


def _segment_slices(segments: tuple[str, ...], n: int, text_tokens: int) -> dict[str, slice]:
    if len(segments) == 1:
        return {segments[0]: slice(0, n)}
    if not 0 <= text_tokens <= n:
        raise ValueError(f"text_tokens must be in [0, {n}], got {text_tokens}")
    first = text_tokens if segments[0] == "text" else n - text_tokens
    return {segments[0]: slice(0, first), segments[1]: slice(first, n)}


@dataclass
class NameMap:
    """Every hook point of one model, in forward order, with its attentions' facts."""

    points: dict[str, HookPoint] = field(default_factory=dict)
    attention_heads: dict[str, int] = field(default_factory=dict)
    # attention -> where its keys and values come from: "self", "encoder" (cross),
    # "joint" (one sequence of image and text tokens) or "encoder+self" (added KV)
    attention_keys: dict[str, str] = field(default_factory=dict)
    attention_layout: dict[str, TokenLayout] = field(default_factory=dict)
    # attention hook points named for their output only -> why they have no sites
    output_only: dict[str, str] = field(default_factory=dict)
    # False when the adapter cannot promise forward order (generic): replay then refuses
    forward_ordered: bool = True
    # the layer groups this family's blocks fall into, in forward order
    group_order: tuple[str, ...] = LAYER_GROUPS

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

    def select(
        self,
        kind: str | None = None,
        role: str | None = None,
        group: str | None = None,
        main: bool | None = None,
    ) -> list[str]:
        """Hook points (forward order) matching every criterion given; None: any."""
        for value, allowed, what in ((kind, POINT_KINDS, "kind"), (role, ROLES, "role")):
            if value is not None and value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
        if group is not None and group not in self.group_order:
            raise ValueError(f"group must be one of {self.group_order}, got {group!r}")
        return [
            n
            for n, p in self.points.items()
            if (kind is None or p.kind == kind)
            and (role is None or p.role == role)
            and (group is None or p.group == group)
            and (main is None or p.main == main)
        ]

    def layer_groups(self) -> dict[str, list[str]]:
        return {g: [n for n, p in self.points.items() if p.group == g] for g in self.group_order}

    def skip_edges(self) -> list[SkipEdge]:
        return [
            SkipEdge(p.name, k, p.source, p.consumer, p.position)
            for k, p in enumerate(p for p in self.points.values() if p.kind == "skip")
        ]

    def heads(self) -> list[Head]:
        return [Head(a, h) for a, n in self.attention_heads.items() for h in range(n)]

    def token_slices(self, attention: str, axis: str, n: int, text_tokens: int = 0):
        """``{segment: slice}`` along ``axis`` (``"queries"`` or ``"keys"``) of length ``n``."""
        layout = self.attention_layout[self.canonical(attention)]
        if axis not in TokenLayout._fields:
            raise ValueError(f"axis must be 'queries' or 'keys', got {axis!r}")
        return _segment_slices(getattr(layout, axis), n, text_tokens)

    def canonical(self, name: str) -> str:
        """``name`` itself, ``<attn>.out`` -> ``<attn>``; unknown -> ValueError."""
        if name in self.points:
            return name
        base = name.removesuffix(".out")
        if base != name and base in self.points and self.points[base].role == "attention":
            return base
        close = difflib.get_close_matches(name, self.points, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown hook point {name!r}{hint}")

    def module_path(self, name: str) -> str:
        """Dotted path (for ``model.get_submodule``) of the module producing ``name``."""
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
