"""Fallback adapter for any other ``nn.Module``: every submodule, named by its path.

A model no family adapter knows is still probed: each submodule's output is a hook
point named by its dotted path (``model.get_submodule(name)``), so capture, ablation
and patching work by module path. A diffusers attention module among them gets its
sites too when its processor is one the probe reproduces, else its output only. There
is no main path, no skips and no layer groups, and the names follow registration order
(``named_modules``), which a forward need not follow, so replay is refused.
"""

from __future__ import annotations

from torch import nn

from diffusion_circuits.probe.adapters.builder import NameMapBuilder, is_attention
from diffusion_circuits.probe.names import NameMap

__all__ = ["GenericAdapter"]


class GenericAdapter:
    """Names every submodule of any model by its module path (see the module docstring)."""

    model_class = nn.Module

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        return isinstance(model, nn.Module) and any(True for _ in model.children())

    def build(self, model: nn.Module) -> NameMap:
        names = NameMapBuilder()
        for path, module in model.named_modules():
            if not path:
                continue  # the model itself: its output is the forward's result
            if is_attention(module):
                names.attention(path, module, path, None)
            else:
                names.add(path, module, path, None)
        names.map.forward_ordered = False
        return names.done()
