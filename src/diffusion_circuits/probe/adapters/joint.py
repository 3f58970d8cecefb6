"""Adapters for joint-attention transformers: ``SD3Transformer2DModel``, ``FluxTransformer2DModel``.

Both keep two token streams, image patches and text, that meet in one attention over
the concatenated sequence (SD3: ``[image; text]``, FLUX: ``[text; image]``); FLUX then
merges them into one stream for its single-stream blocks.

==========================  ======================================================
hook point                  diffusers module
==========================  ======================================================
``patch_embed``             SD3 ``pos_embed``, FLUX ``x_embedder``: image tokens
``time_emb``                ``time_text_embed`` (timestep + pooled text [+ guidance])
``text_embed``              ``context_embedder``: the text tokens
``block.{i}.joint``         ``transformer_blocks.{i}.attn``: joint attention, image
                            output; sites ``.q .k .v .pattern .z`` over the joint
                            sequence (pattern [batch, heads, image+text, image+text])
``block.{i}.joint.text``    the same attention's text output (not on SD3's last
                            block, whose text stream ends there)
``block.{i}.self``          SD3.5: ``....attn2``, image-only self-attention
``block.{i}.ff``            ``....ff``: image feed-forward (before its gate)
``block.{i}.ff_text``       ``....ff_context``: text feed-forward
``block.{i}``               the block's image stream; ``block.{i}.text`` its text
                            stream (the block returns ``(text, image)``)
``single.{i}.joint``        FLUX ``single_transformer_blocks.{i}.attn``: attention
                            over ``[text; image]``, output before ``proj_out``
``single.{i}``              the single block's image part; ``single.{i}.text`` its
                            text part
``proj_out``                ``proj_out``: per-patch outputs before unpatchifying
==========================  ======================================================

``Probe.quadrant(pattern, attn, queries, keys, text_tokens)`` cuts a joint pattern into
image->image, image->text, text->image and text->text. Layer groups: the blocks (FLUX:
dual then single) split by depth as for DiT (``numpy.array_split`` into early_blocks,
middle_blocks and late_blocks); ``patch_embed`` and ``text_embed`` are early_blocks,
``proj_out`` late_blocks,
``time_emb`` no group.
"""

from __future__ import annotations

from diffusers import FluxTransformer2DModel, SD3Transformer2DModel
from torch import nn

from diffusion_circuits.probe.adapters.builder import NameMapBuilder, depth_groups
from diffusion_circuits.probe.names import TRANSFORMER_LAYER_GROUPS, NameMap

__all__ = ["SD3Adapter", "FluxAdapter"]


def dual_stream_block(names: NameMapBuilder, name: str, block: nn.Module, path: str, group):
    """A ``JointTransformerBlock`` / ``FluxTransformerBlock``: both streams, one attention."""
    # SD3's last block is context_pre_only: its text stream ends in the attention
    text = getattr(block, "context_pre_only", None) is not True
    names.attention(
        f"{name}.joint",
        block.attn,
        f"{path}.attn",
        group,
        text_output=f"{name}.joint.text" if text else None,
    )
    if getattr(block, "attn2", None) is not None:
        names.attention(f"{name}.self", block.attn2, f"{path}.attn2", group)
    names.add(f"{name}.ff", block.ff, f"{path}.ff", group, role="ff")
    if getattr(block, "ff_context", None) is not None:
        names.add(f"{name}.ff_text", block.ff_context, f"{path}.ff_context", group, role="ff")
    names.add(name, block, path, group, role="block", main=True, output_index=1)
    if text:
        names.add(f"{name}.text", block, path, group, role="block", output_index=0)


def single_stream_block(names: NameMapBuilder, name: str, block: nn.Module, path: str, group):
    """A ``FluxSingleTransformerBlock``: attention and MLP in parallel on [text; image]."""
    names.attention(f"{name}.joint", block.attn, f"{path}.attn", group)
    names.add(name, block, path, group, role="block", main=True, output_index=1)
    names.add(f"{name}.text", block, path, group, role="block", output_index=0)


class SD3Adapter:
    """Names the hook points of an ``SD3Transformer2DModel`` (see the module docstring)."""

    model_class: type = SD3Transformer2DModel
    patch_embedding = "pos_embed"

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return isinstance(model, cls.model_class)

    def blocks(self, model: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """(hook name, module path, block) of every block, in forward order."""
        return [
            (f"block.{i}", f"transformer_blocks.{i}", b)
            for i, b in enumerate(model.transformer_blocks)
        ]

    def build(self, model: nn.Module) -> NameMap:
        names = NameMapBuilder(TRANSFORMER_LAYER_GROUPS)
        patch = getattr(model, self.patch_embedding)
        first, last = TRANSFORMER_LAYER_GROUPS[0], TRANSFORMER_LAYER_GROUPS[-1]
        names.add("patch_embed", patch, self.patch_embedding, first, role="input", main=True)
        names.add("time_emb", model.time_text_embed, "time_text_embed", None, role="embedding")
        names.add("text_embed", model.context_embedder, "context_embedder", first, role="embedding")
        blocks = self.blocks(model)
        for (name, path, block), group in zip(
            blocks, depth_groups(len(blocks), TRANSFORMER_LAYER_GROUPS), strict=True
        ):
            walk = single_stream_block if name.startswith("single.") else dual_stream_block
            walk(names, name, block, path, group)
        names.add("proj_out", model.proj_out, "proj_out", last, role="output", main=True)
        return names.done()


class FluxAdapter(SD3Adapter):
    """Names the hook points of a ``FluxTransformer2DModel`` (see the module docstring)."""

    model_class = FluxTransformer2DModel
    patch_embedding = "x_embedder"

    def blocks(self, model: nn.Module) -> list[tuple[str, str, nn.Module]]:
        singles = model.single_transformer_blocks
        return super().blocks(model) + [
            (f"single.{i}", f"single_transformer_blocks.{i}", b) for i, b in enumerate(singles)
        ]
