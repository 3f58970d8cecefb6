"""The projections an attention processor computes, as it computes them.

A recipe (``probe.attention_recipes``) asks ``project(name, x)`` for each projection
(``to_q``, ``add_k_proj``, ...). After diffusers' ``fuse_qkv_projections()`` a processor
may compute several of them with one ``Linear`` and split its output; :func:`projector`
then returns the very split the processor uses, not the unfused layer's (float-close,
not equal) output. Whether a processor fuses is the recipe's ``fused(attn)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["FUSED_LAYERS", "Project", "processor_name", "projection_layers", "projector"]

# project(module name, input) -> the module's output (taken from the processor's own
# call when recording, computed otherwise)
Project = Callable[[str, torch.Tensor], torch.Tensor]

# fused layer -> the projections it computes, in the order its output splits into
FUSED_LAYERS = {
    "to_qkv": ("to_q", "to_k", "to_v"),
    "to_kv": ("to_k", "to_v"),
    "to_added_qkv": ("add_q_proj", "add_k_proj", "add_v_proj"),
}


def processor_name(attn) -> str:
    """The class name of ``attn``'s processor (what a Probe's recording processor wraps)."""
    processor = attn.processor
    return type(getattr(processor, "original", processor)).__name__


def _fused_parts(recipe, attn) -> dict[str, tuple[str, int, int]]:
    """Projection -> (fused layer, index, parts) for those the processor takes fused."""
    if not recipe.fused(attn):
        return {}
    return {
        name: (layer, index, len(names))
        for layer, names in FUSED_LAYERS.items()
        if isinstance(getattr(attn, layer, None), torch.nn.Module)
        for index, name in enumerate(names)
    }


def projection_layers(recipe, attn) -> list[str]:
    """The layers ``attn``'s processor runs for the recipe's projections (fused or not)."""
    fused = _fused_parts(recipe, attn)
    return list(dict.fromkeys(fused.get(n, (n,))[0] for n in recipe.projections))


def projector(recipe, attn, taken: dict[str, list[torch.Tensor]] | None = None) -> Project:
    """``project(name, x)`` as ``attn``'s processor computes projection ``name``.

    From the fused layer's split where the processor fuses it; a layer's output in
    ``taken`` (recorded as the processor ran, exactly once) is used instead of running
    it again. Each layer sees one input per call, so a fused layer runs once for its
    two or three projections.
    """
    fused = _fused_parts(recipe, attn)
    outputs = {layer: values[0] for layer, values in (taken or {}).items() if len(values) == 1}

    def project(name: str, x: torch.Tensor) -> torch.Tensor:
        layer, index, parts = fused.get(name, (name, 0, 1))
        if layer not in outputs:
            outputs[layer] = getattr(attn, layer)(x)
        return outputs[layer] if parts == 1 else outputs[layer].chunk(parts, dim=-1)[index]

    return project
