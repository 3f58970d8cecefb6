"""Adapters for diffusion transformers: ``DiTTransformer2DModel``, ``PixArtTransformer2DModel``.

Both are a patch embedding, a stack of diffusers ``BasicTransformerBlock`` s and a final
projection; they differ in conditioning. DiT (adaLN-Zero, class labels) computes each
block's modulation in the block; PixArt-alpha (adaLN-single, text) computes one
modulation for all blocks and cross-attends to the projected caption.

==========================  ======================================================
hook point                  diffusers module
==========================  ======================================================
``patch_embed``             ``pos_embed``: patch tokens + position embedding
                            [batch, tokens, dim]
``time_emb``                PixArt: ``adaln_single.emb`` (timestep embedding)
``adaln``                   PixArt: ``adaln_single.linear``, the six shared
                            modulation vectors [batch, 6 * dim]
``text_proj``               PixArt: ``caption_projection`` (the text tokens every
                            cross-attention reads)
``block.{i}.adaln``         DiT: ``transformer_blocks.{i}.norm1.linear``, the
                            block's adaLN-Zero modulation [batch, 6 * dim] (shift,
                            scale, gate for attention, then for the MLP)
``block.{i}.self``          ``transformer_blocks.{i}.attn1``: self-attention output
                            (before its gate), with sites ``.q .k .v .pattern .z``
``block.{i}.cross``         PixArt: ``transformer_blocks.{i}.attn2``, cross-attention
                            to the text tokens (pattern [batch, heads, patches, tokens])
``block.{i}.ff``            ``transformer_blocks.{i}.ff``: feed-forward output (before
                            its gate)
``block.{i}``               ``transformer_blocks.{i}``: the block's output (residual
                            stream)
``proj_out``                DiT ``proj_out_2``, PixArt ``proj_out``: per-patch
                            outputs [batch, tokens, patch**2 * channels] before
                            unpatchifying
==========================  ======================================================

Layer groups: a transformer has no encoder, bottleneck or decoder, so its blocks are
split by depth, ``numpy.array_split(range(n), 3)``, into early_blocks, middle_blocks and
late_blocks (28 blocks of DiT-XL/2: 10, 9, 9; 6 blocks: two each). ``patch_embed`` (and
PixArt's ``text_proj``) is early_blocks, ``proj_out`` late_blocks; the shared
conditioning (``time_emb``, ``adaln``) belongs to no group.
"""

from __future__ import annotations

from diffusers import DiTTransformer2DModel, PixArtTransformer2DModel
from torch import nn

from diffusion_circuits.probe.adapters.builder import NameMapBuilder, depth_groups
from diffusion_circuits.probe.names import TRANSFORMER_LAYER_GROUPS, NameMap

EARLY, LATE = TRANSFORMER_LAYER_GROUPS[0], TRANSFORMER_LAYER_GROUPS[-1]

__all__ = ["DiTAdapter", "PixArtAdapter"]


class DiTAdapter:
    """Names the hook points of a ``DiTTransformer2DModel`` (see the module docstring)."""

    model_class: type = DiTTransformer2DModel
    out_projection = "proj_out_2"

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return isinstance(model, cls.model_class)

    def add_conditioning(self, names: NameMapBuilder, model: nn.Module) -> None:
        """Hook points computed once per forward, between the patch embedding and block 0."""

    def build(self, model: nn.Module) -> NameMap:
        names = NameMapBuilder(TRANSFORMER_LAYER_GROUPS)
        names.add("patch_embed", model.pos_embed, "pos_embed", EARLY, role="input", main=True)
        self.add_conditioning(names, model)
        blocks = model.transformer_blocks
        for i, (block, group) in enumerate(
            zip(blocks, depth_groups(len(blocks), TRANSFORMER_LAYER_GROUPS), strict=True)
        ):
            # DiT blocks modulate themselves (adaLN-Zero); PixArt's norm1 has no linear
            names.transformer_block(
                f"block.{i}", block, f"transformer_blocks.{i}", group, adaln=True, main=True
            )
        projection = getattr(model, self.out_projection)
        names.add("proj_out", projection, self.out_projection, LATE, role="output", main=True)
        return names.done()


class PixArtAdapter(DiTAdapter):
    """Names the hook points of a ``PixArtTransformer2DModel`` (see the module docstring)."""

    model_class = PixArtTransformer2DModel
    out_projection = "proj_out"

    def add_conditioning(self, names: NameMapBuilder, model: nn.Module) -> None:
        names.add("time_emb", model.adaln_single.emb, "adaln_single.emb", None, role="embedding")
        names.add("adaln", model.adaln_single.linear, "adaln_single.linear", None, role="embedding")
        if getattr(model, "caption_projection", None) is not None:
            path = "caption_projection"
            names.add("text_proj", model.caption_projection, path, EARLY, role="embedding")
