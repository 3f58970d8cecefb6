"""Structural queries on a model's hook points: what is where, without parsing names.

:class:`ModelStructure` answers from the name map its adapter built (roles, main path,
skip edges, layer groups, heads, token layouts); :class:`~diffusion_circuits.probe.Probe`
is one. Every answer is in forward order and holds canonical hook-point names.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from diffusion_circuits.probe.names import Head, NameMap, NamesFilter, SkipEdge

__all__ = ["ModelStructure"]


class ModelStructure:
    """Read-only structure of one model's name map (``self._map``)."""

    _map: NameMap

    # ---- every hook point ----------------------------------------------------------
    @property
    def hook_points(self) -> list[str]:
        """Every canonical hook-point name, in forward order."""
        return self._map.hook_points

    def points(
        self,
        kind: str | None = None,
        role: str | None = None,
        group: str | None = None,
        main: bool | None = None,
    ) -> list[str]:
        """Hook points matching every criterion given (None: any), in forward order.

        Parameters
        ----------
        kind : how the tensor is reached, one of ``probe.names.POINT_KINDS``:
            ``"module"`` (a module's output), ``"block"`` (a down block's first output),
            ``"skip"`` (an encoder -> decoder skip) or ``"site"`` (inside an attention).
        role : what it is, one of ``probe.names.ROLES`` (``"resnet"``, ``"residual"``,
            ``"attention"``, ``"site"``, ``"sampler"``, ``"bottleneck"``, ``"skip"``,
            ``"input"``, ``"output"``, ``"embedding"``, ``"block"``, ``"ff"``, ...).
        group : one of the seven layer groups.
        main : True: only the main path; False: only points off it.
        """
        return self._map.select(kind, role, group, main)

    def resolve(self, names: NamesFilter = None) -> list[str]:
        """Hook points selected by None (all), a name, a glob, a list or a predicate."""
        return self._map.resolve(names)

    def canonical(self, name: str) -> str:
        """The canonical form of a hook-point name (``<attn>.out`` -> ``<attn>``);
        ValueError with the closest names for an unknown one."""
        return self._map.canonical(name)

    def module_path(self, name: str) -> str:
        """Dotted path of the module producing ``name`` (``model.get_submodule``)."""
        return self._map.module_path(name)

    def role_of(self, name: str) -> str:
        """Role of a hook point (see :meth:`points`)."""
        return self._map.points[self._map.canonical(name)].role

    def group_of(self, name: str) -> str | None:
        """Layer group of a hook point (None for ``time_emb``)."""
        return self._map.points[self._map.canonical(name)].group

    # ---- paths and edges -----------------------------------------------------------
    @property
    def main_path(self) -> list[str]:
        """The hook points an image passes through, in order: input, the blocks, output.

        U-Nets: ``conv_in``, every resnet, attention (or spatial transformer) and
        sampler of the down blocks, mid block and up blocks, ``conv_out``; transformers:
        ``patch_embed``, every block's output (image stream), ``proj_out``. Skips, the
        time embedding, residual branches, attention sites and the parts inside a
        transformer block are off it; empty for the generic adapter.
        """
        return self._map.select(main=True)

    @property
    def input_point(self) -> str | None:
        """The first map into the main path (``conv_in``, ``patch_embed``), or None."""
        return next(iter(self._map.select(role="input")), None)

    @property
    def output_point(self) -> str | None:
        """The prediction's hook point (``conv_out``, ``proj_out``), or None."""
        return next(iter(self._map.select(role="output")), None)

    @property
    def bottleneck(self) -> str | None:
        """The U-Net mid block's output (``mid``); None for models without one."""
        return next(iter(self._map.select(role="bottleneck")), None)

    @property
    def skips(self) -> list[str]:
        """The skip hook points ``skip.0, skip.1, ...`` (empty for a transformer)."""
        return self._map.select(kind="skip")

    @property
    def skip_edges(self) -> list[SkipEdge]:
        """Every encoder -> decoder skip as ``SkipEdge(name, index, source, consumer,
        position)``: ``skip.<index>`` is hook point ``source``'s output, consumed as
        entry ``position`` of up block ``consumer``'s skips."""
        return self._map.skip_edges()

    def skip_source(self, name: str) -> str:
        """The hook point whose output is skip ``name`` (e.g. ``skip.0`` -> ``conv_in``)."""
        return self._map.points[self._map.canonical(name)].source

    # ---- components ----------------------------------------------------------------
    @property
    def resnets(self) -> list[str]:
        """The ResNet-block output hook points (``*.resnet.<i>``, not their branches)."""
        return self._map.select(role="resnet")

    @property
    def residuals(self) -> list[str]:
        """The ResNet residual-branch hook points (``<resnet>.residual``: ``conv2``'s output).

        Editing one replaces only the branch: the block then returns
        ``(shortcut(input) + edited) / output_scale_factor``.
        """
        return self._map.select(role="residual")

    @property
    def attentions(self) -> list[str]:
        """Every diffusers attention module's output hook point, in forward order.

        Those with per-head sites are :attr:`attention_heads`' keys; the others are named
        for their output only (:attr:`output_only_attentions` says why). A joint
        attention's text output (``<attn>.text``) is listed too.
        """
        return self._map.select(role="attention")

    @property
    def output_only_attentions(self) -> dict[str, str]:
        """Attention hook points without sites -> why (their processor is not reproduced)."""
        return dict(self._map.output_only)

    @property
    def attention_heads(self) -> dict[str, int]:
        """Attention hook point (with sites) -> number of heads."""
        return dict(self._map.attention_heads)

    @property
    def heads(self) -> list[Head]:
        """Every head, ``Head(attention, index)``, attention by attention in forward order.

        ``Head.name`` is the table label ``"<attention>.head.<index>"`` and
        ``Head.from_name`` parses it back.
        """
        return self._map.heads()

    def sites(self, attention: str) -> list[str]:
        """The site hook points (``.q .k .v .pattern .z``) of one attention."""
        attention = self._map.canonical(attention)
        return [n for n, p in self._map.points.items() if p.attention == attention]

    @property
    def attention_keys(self) -> dict[str, str]:
        """Attention hook point -> where its keys come from.

        ``"self"``; ``"encoder"`` (cross-attention: keys and values from
        ``encoder_hidden_states``, e.g. text tokens; pattern [batch, heads, queries,
        tokens]); ``"joint"`` (one sequence of image and text tokens, SD3 / FLUX); or
        ``"encoder+self"`` (added key/value projections: keys ``[text; own tokens]``).
        """
        return dict(self._map.attention_keys)

    # ---- layer groups --------------------------------------------------------------
    @property
    def group_order(self) -> tuple[str, ...]:
        """This model's layer groups in forward order: the paper's seven for a U-Net,
        ``early_blocks, middle_blocks, late_blocks`` for a transformer."""
        return self._map.group_order

    @property
    def layer_groups(self) -> dict[str, list[str]]:
        """Each of :attr:`group_order` -> its hook points (forward order)."""
        return self._map.layer_groups()

    def grouped(self, names: Iterable[str]) -> dict[str, list[str]]:
        """``names`` by layer group, non-empty groups only, in group then input order.

        E.g. ``probe.grouped(probe.main_path)``: the blocks of each group.
        """
        names = [self._map.canonical(n) for n in names]
        by_group = {
            g: [n for n in names if self._map.points[n].group == g] for g in self.group_order
        }
        return {g: members for g, members in by_group.items() if members}

    # ---- token layouts -------------------------------------------------------------
    def token_slices(
        self, attention: str, axis: str, n: int, text_tokens: int = 0
    ) -> dict[str, slice]:
        """``{"image": slice, "text": slice}`` (those present) along a pattern axis.

        ``axis`` is ``"queries"`` or ``"keys"``, ``n`` its length and ``text_tokens``
        the number of text tokens (``encoder_hidden_states.shape[1]``) where the axis
        holds both.
        """
        return self._map.token_slices(attention, axis, n, text_tokens)

    def quadrant(
        self,
        pattern: torch.Tensor,
        attention: str,
        queries: str = "image",
        keys: str = "text",
        text_tokens: int = 0,
    ) -> torch.Tensor:
        """The ``queries -> keys`` block of an attention pattern [..., queries, keys].

        For a joint attention (SD3, FLUX) the four quadrants are image->image,
        image->text, text->image and text->text; ``text_tokens`` is the number of text
        tokens. Rows of a quadrant do not sum to 1: the softmax runs over all keys.
        """
        rows = self.token_slices(attention, "queries", pattern.shape[-2], text_tokens)
        cols = self.token_slices(attention, "keys", pattern.shape[-1], text_tokens)
        for segment, segments, axis in ((queries, rows, "queries"), (keys, cols, "keys")):
            if segment not in segments:
                raise ValueError(
                    f"{attention} has no {segment!r} tokens on its {axis} axis; it has {list(segments)}"
                )
        return pattern[..., rows[queries], cols[keys]]
