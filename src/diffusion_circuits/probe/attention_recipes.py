"""How each diffusers attention processor computes its output, split at the sites.

The recording processor (``probe.attention``) is family-independent: a *recipe* gives it
the per-head ``q, k, v`` [batch, heads, tokens, head_dim] (and the attention mask) of
one call, and turns per-head ``z = pattern @ v`` back into the module's output, step for
step the processor it reproduces. One recipe per processor family:

- :class:`StandardRecipe`: ``AttnProcessor`` / ``AttnProcessor2_0`` (U-Nets, DiT, PixArt,
  GLIGEN's fuser), and ``FusedAttnProcessor2_0``: self- or cross-attention;
- :class:`AddedKVRecipe`: ``AttnAddedKVProcessor(2_0)`` (IF / ``SimpleCrossAttn`` blocks):
  keys ``[to the text tokens; own tokens]``;
- :class:`JointRecipe`: SD3's ``JointAttnProcessor2_0``: one sequence ``[image; text]``;
  :class:`FusedJointRecipe` its fused twin ``FusedJointAttnProcessor2_0``;
- :class:`FluxRecipe`: FLUX's ``FluxAttnProcessor``: ``[text; image]`` with rotary
  embeddings, dual-stream (two outputs) or single-stream.

An attention whose processor no recipe reproduces is named for its output only
(:func:`recipe_for` says why).

Fused projections (diffusers' ``fuse_qkv_projections()``): one ``Linear`` (``to_qkv``,
``to_kv`` or ``to_added_qkv``) computes several projections and the processor splits
its output; where a recipe's ``fused(attn)`` says the processor does so,
``probe.projections.projector`` takes q, k and v from those splits, the very tensors the processor uses. Attention masks
are reproduced by the recipes with ``masks = True`` (the standard and added-KV ones, as
diffusers' ``prepare_attention_mask`` shapes them); a joint attention called with a
mask has its sites refused (``probe.attention``), never computed without it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from diffusion_circuits.probe.names import TokenLayout
from diffusion_circuits.probe.projections import Project, processor_name

__all__ = [
    "AttentionCall",
    "Prepared",
    "StandardRecipe",
    "AddedKVRecipe",
    "JointRecipe",
    "FusedJointRecipe",
    "FluxRecipe",
    "RECIPES",
    "recipe_for",
]


class AttentionCall(NamedTuple):
    """The arguments an attention processor receives."""

    hidden_states: torch.Tensor
    encoder_hidden_states: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    temb: torch.Tensor | None = None
    image_rotary_emb: Any = None


class Prepared(NamedTuple):
    """Per-head q, k, v [B, heads, n, d]; mask [B * heads, queries | 1, keys] or None; and
    what :meth:`output` needs to finish (residual, shapes, segment sizes)."""

    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    mask: torch.Tensor | None
    state: dict


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, n, heads*d] -> [B, heads, n, d]"""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def merge_heads(z: torch.Tensor) -> torch.Tensor:
    """[B, heads, n, d] -> [B, n, heads*d]"""
    return z.transpose(1, 2).reshape(z.shape[0], z.shape[2], -1)


class StandardRecipe:
    """diffusers' ``AttnProcessor``: spatial norm, 4-d -> tokens, group norm, projections."""

    processors = (
        "AttnProcessor",
        "AttnProcessor2_0",
        "XFormersAttnProcessor",
        "SlicedAttnProcessor",
        "FusedAttnProcessor2_0",
    )
    projections = ("to_q", "to_k", "to_v")
    masks = True

    def applies(self, attn) -> bool:
        return attn.added_kv_proj_dim is None and getattr(attn, "add_q_proj", None) is None

    def fused(self, attn) -> bool:
        return processor_name(attn).startswith("Fused")

    def keys(self, attn) -> str:
        return "encoder" if getattr(attn, "is_cross_attention", False) else "self"

    def layout(self, attn) -> TokenLayout:
        return TokenLayout(("image",), ("text",) if self.keys(attn) == "encoder" else ("image",))

    def prepare(self, attn, call: AttentionCall, project: Project) -> Prepared:
        hidden, encoder = call.hidden_states, call.encoder_hidden_states
        state = {"residual": hidden}
        if attn.spatial_norm is not None:
            hidden = attn.spatial_norm(hidden, call.temb)
        state["shape"] = hidden.shape
        if hidden.ndim == 4:
            batch, channel, height, width = hidden.shape
            hidden = hidden.view(batch, channel, height * width).transpose(1, 2)
        batch, tokens, _ = hidden.shape if encoder is None else encoder.shape
        mask = attn.prepare_attention_mask(call.attention_mask, tokens, batch)
        if attn.group_norm is not None:
            hidden = attn.group_norm(hidden.transpose(1, 2)).transpose(1, 2)
        query = project("to_q", hidden)
        if encoder is None:
            encoder = hidden
        elif attn.norm_cross:
            encoder = attn.norm_encoder_hidden_states(encoder)
        query, key, value = (
            split_heads(x, attn.heads)
            for x in (query, project("to_k", encoder), project("to_v", encoder))
        )
        # AttnProcessor2_0 (the default) applies these; they are None in UNet2DModel
        if getattr(attn, "norm_q", None) is not None:
            query = attn.norm_q(query)
        if getattr(attn, "norm_k", None) is not None:
            key = attn.norm_k(key)
        return Prepared(query, key, value, mask, state)

    def output(self, attn, z: torch.Tensor, state: dict) -> torch.Tensor:
        hidden = attn.to_out[1](attn.to_out[0](merge_heads(z)))
        shape = state["shape"]
        if len(shape) == 4:
            hidden = hidden.transpose(-1, -2).reshape(shape)
        if attn.residual_connection:
            hidden = hidden + state["residual"]
        return hidden / attn.rescale_output_factor


class AddedKVRecipe:
    """``AttnAddedKVProcessor``: queries from the pixels, keys ``[add_k(text); to_k(pixels)]``."""

    processors = ("AttnAddedKVProcessor", "AttnAddedKVProcessor2_0")
    projections = ("to_q", "to_k", "to_v", "add_k_proj", "add_v_proj")
    masks = True

    def applies(self, attn) -> bool:
        return attn.added_kv_proj_dim is not None

    def fused(self, attn) -> bool:
        return False  # diffusers refuses to fuse added-KV attentions

    def keys(self, attn) -> str:
        return "encoder" if attn.only_cross_attention else "encoder+self"

    def layout(self, attn) -> TokenLayout:
        return TokenLayout(
            ("image",), ("text",) if attn.only_cross_attention else ("text", "image")
        )

    def prepare(self, attn, call: AttentionCall, project: Project) -> Prepared:
        residual = call.hidden_states
        hidden = residual.view(residual.shape[0], residual.shape[1], -1).transpose(1, 2)
        batch, tokens, _ = hidden.shape
        mask = attn.prepare_attention_mask(call.attention_mask, tokens, batch)
        encoder = call.encoder_hidden_states
        if encoder is None:
            encoder = hidden
        elif attn.norm_cross:
            encoder = attn.norm_encoder_hidden_states(encoder)
        hidden = attn.group_norm(hidden.transpose(1, 2)).transpose(1, 2)
        query = split_heads(project("to_q", hidden), attn.heads)
        key = split_heads(project("add_k_proj", encoder), attn.heads)
        value = split_heads(project("add_v_proj", encoder), attn.heads)
        if not attn.only_cross_attention:
            key = torch.cat([key, split_heads(project("to_k", hidden), attn.heads)], dim=2)
            value = torch.cat([value, split_heads(project("to_v", hidden), attn.heads)], dim=2)
        return Prepared(query, key, value, mask, {"residual": residual})

    def output(self, attn, z: torch.Tensor, state: dict) -> torch.Tensor:
        residual = state["residual"]
        hidden = attn.to_out[1](attn.to_out[0](merge_heads(z)))
        return hidden.transpose(-1, -2).reshape(residual.shape) + residual


class JointRecipe:
    """SD3's ``JointAttnProcessor2_0``: one softmax over ``[image; text]`` tokens.

    Returns ``(image, text)`` outputs with text tokens, the image output alone without
    (SD3.5's second, image-only attention).
    """

    processors = ("JointAttnProcessor2_0",)
    projections = ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj")
    first = "image"
    masks = False

    def applies(self, attn) -> bool:
        return True

    def fused(self, attn) -> bool:
        return False

    def joint(self, attn) -> bool:
        return getattr(attn, "add_q_proj", None) is not None

    def keys(self, attn) -> str:
        return "joint" if self.joint(attn) else "self"

    def layout(self, attn) -> TokenLayout:
        if not self.joint(attn):
            return TokenLayout(("image",), ("image",))
        order = (self.first, "text" if self.first == "image" else "image")
        return TokenLayout(order, order)

    def _streams(self, attn, call: AttentionCall, project: Project, names, norms):
        """Per-head (q, k, v) of the image stream, and of the text stream (or None)."""
        image = [split_heads(project(n, call.hidden_states), attn.heads) for n in names[:3]]
        text = None
        if call.encoder_hidden_states is not None and self.joint(attn):
            encoder = call.encoder_hidden_states
            text = [split_heads(project(n, encoder), attn.heads) for n in names[3:]]
        for stream, (norm_q, norm_k) in ((image, norms[:2]), (text, norms[2:])):
            if stream is not None:
                stream[0] = self.norm(attn, norm_q, stream[0])
                stream[1] = self.norm(attn, norm_k, stream[1])
        return image, text

    def norm(self, attn, name: str, x: torch.Tensor) -> torch.Tensor:
        norm = getattr(attn, name, None)
        return x if norm is None else norm(x)

    def prepare(self, attn, call: AttentionCall, project: Project) -> Prepared:
        norms = ("norm_q", "norm_k", "norm_added_q", "norm_added_k")
        image, text = self._streams(attn, call, project, self.projections, norms)
        state = {"text_tokens": 0 if text is None else text[0].shape[2], "dtype": image[0].dtype}
        if text is None:
            return Prepared(*image, None, state)
        pairs = zip(image, text, strict=True)
        joint = [torch.cat([i, t] if self.first == "image" else [t, i], dim=2) for i, t in pairs]
        return Prepared(*joint, None, state)

    def _split_output(self, hidden: torch.Tensor, text_tokens: int):
        n = hidden.shape[1]
        cut = n - text_tokens if self.first == "image" else text_tokens
        first, second = hidden[:, :cut], hidden[:, cut:]
        return (first, second) if self.first == "image" else (second, first)

    def output(self, attn, z: torch.Tensor, state: dict):
        hidden = merge_heads(z).to(state["dtype"])
        if not state["text_tokens"]:
            return attn.to_out[1](attn.to_out[0](hidden))
        image, text = self._split_output(hidden, state["text_tokens"])
        if not attn.context_pre_only:
            text = attn.to_add_out(text)
        return attn.to_out[1](attn.to_out[0](image)), text


class FusedJointRecipe(JointRecipe):
    """SD3's ``FusedJointAttnProcessor2_0`` (after ``fuse_qkv_projections()``): q, k, v
    from ``to_qkv`` and ``to_added_qkv``, and no q/k norm even where the module has one
    (that processor applies none, so a fused SD3.5 computes differently from the
    unfused one: the recipe follows the processor)."""

    processors = ("FusedJointAttnProcessor2_0",)

    def applies(self, attn) -> bool:
        return self.joint(attn)  # it needs the text stream (diffusers fails without)

    def fused(self, attn) -> bool:
        return True

    def norm(self, attn, name: str, x: torch.Tensor) -> torch.Tensor:
        return x


class FluxRecipe(JointRecipe):
    """FLUX's ``FluxAttnProcessor``: ``[text; image]``, per-head RMS norms, rotary.

    Dual-stream blocks (text through ``add_*_proj``) return ``(image, text)``; a
    single-stream block's attention gets the concatenated sequence as ``hidden_states``
    and returns it unprojected.
    """

    processors = ("FluxAttnProcessor", "FluxAttnProcessor2_0")
    first = "text"

    def joint(self, attn) -> bool:
        return True  # single-stream attentions see [text; image] as one input

    def fused(self, attn) -> bool:
        return getattr(attn, "fused_projections", False)  # the processor asks the same

    def prepare(self, attn, call: AttentionCall, project: Project) -> Prepared:
        from diffusers.models.embeddings import apply_rotary_emb

        norms = ("norm_q", "norm_k", "norm_added_q", "norm_added_k")
        dual = getattr(attn, "add_q_proj", None) is not None
        # FLUX's RMS norms act per head over head_dim: the same on [B, heads, n, d]
        single = call._replace(encoder_hidden_states=None)
        image, text = self._streams(
            attn, call if dual else single, project, self.projections, norms
        )
        state = {"text_tokens": 0 if text is None else text[0].shape[2], "dtype": image[0].dtype}
        streams = (
            image if text is None else [torch.cat(p, dim=2) for p in zip(text, image, strict=True)]
        )
        query, key, value = streams
        if call.image_rotary_emb is not None:
            query, key = (
                apply_rotary_emb(
                    x.transpose(1, 2), call.image_rotary_emb, sequence_dim=1
                ).transpose(1, 2)
                for x in (query, key)
            )
        return Prepared(query, key, value, None, state)

    def output(self, attn, z: torch.Tensor, state: dict):
        hidden = merge_heads(z).to(state["dtype"])
        if not state["text_tokens"]:
            return hidden
        image, text = self._split_output(hidden, state["text_tokens"])
        return attn.to_out[1](attn.to_out[0](image.contiguous())), attn.to_add_out(
            text.contiguous()
        )


RECIPES = (StandardRecipe(), AddedKVRecipe(), JointRecipe(), FusedJointRecipe(), FluxRecipe())


def recipe_for(attn) -> tuple[object | None, str]:
    """The recipe reproducing ``attn``'s processor, or None and why not."""
    name = processor_name(attn)
    for recipe in RECIPES:
        if name in recipe.processors and recipe.applies(attn):
            return recipe, ""
    return None, f"processor {name} is not reproduced by the probe: output only"
