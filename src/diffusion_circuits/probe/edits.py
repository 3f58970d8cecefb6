"""Turning interventions and plain hook functions into registry entries.

An intervention is an :class:`~diffusion_circuits.probe.protocol.InterventionLike`:
``.name`` + ``__call__(tensor, name) -> tensor``, and optionally ``.site`` (attention
sites), ``.head``, ``uses_timestep`` (called with the forward's per-item timesteps as
``timestep=``, so "only when t > 500" needs no loop) and ``active_at(timesteps) ->
bool`` (False: the edit is off for that forward, and the attention keeps its fused
kernel, bit-identical outside a window). Objects without the optional attributes get
the Protocol's defaults (``protocol.optional``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffusion_circuits.probe.cache import guidance_half
from diffusion_circuits.probe.hooks import Entry, HookRegistry
from diffusion_circuits.probe.names import NameMap
from diffusion_circuits.probe.protocol import optional

__all__ = ["HookContext", "HookFn", "intervention_entry", "hook_entry"]


@dataclass(frozen=True)
class HookContext:
    """What a plain hook function receives as ``hook=``: the hook point's name and the
    per-item timesteps of the running forward (None when the call gave none)."""

    name: str
    timestep: torch.Tensor | None


HookFn = Callable[..., torch.Tensor | None]


def _checked(out, tensor: torch.Tensor, who: str, key: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.shape != tensor.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{who} returned {got} at {key}; expected shape {tuple(tensor.shape)}")
    return out


def _on_half(
    fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    registry: HookRegistry,
    guidance: str | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``fn(tensor, timesteps)`` applied to the whole batch or one CFG half of it."""

    def edit(tensor: torch.Tensor) -> torch.Tensor:
        t = registry.timesteps
        if t is not None and len(t) != len(tensor):
            t = None  # a tensor without the batch axis first: no per-item timesteps
        if guidance is None:
            return fn(tensor, t)
        half = guidance_half(tensor, guidance)
        out = tensor.clone()
        out[half] = fn(tensor[half], None if t is None else t[half])
        return out

    return edit


def intervention_entry(
    names: NameMap, registry: HookRegistry, intervention, guidance: str | None = None
) -> Entry:
    """The registry entry applying ``intervention`` (validated against ``names``)."""
    name = getattr(intervention, "name", None)
    if not isinstance(name, str) or not callable(intervention):
        raise ValueError(
            f"an intervention needs a .name (hook point) and __call__(tensor, name); got {intervention!r}"
        )
    name = names.canonical(name)
    site = optional(intervention, "site")
    if site is None:
        key = name
    elif name in names.attention_heads:
        key = f"{name}.{site}"
        head = optional(intervention, "head")
        if head is not None and head >= names.attention_heads[name]:
            raise ValueError(
                f"{intervention!r}: head {head} out of range, {name} has "
                f"{names.attention_heads[name]} heads"
            )
    else:
        raise ValueError(
            f"{intervention!r} needs an attention hook point, one of {list(names.attention_heads)}"
        )
    # logits are no hook point, but live in the same attention processor
    point = names.points[f"{name}.pattern" if site == "logits" else key]
    uses_timestep = optional(intervention, "uses_timestep")

    def apply(tensor: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        out = intervention(tensor, key, timestep=t) if uses_timestep else intervention(tensor, key)
        return _checked(out, tensor, repr(intervention), key)

    active_at = optional(intervention, "active_at")
    active = None if active_at is None else lambda: bool(active_at(registry.timesteps))
    return Entry(key, point, _on_half(apply, registry, guidance), edit=True, active=active)


def hook_entry(
    names: NameMap, registry: HookRegistry, name: str, fn: HookFn, guidance: str | None = None
) -> Entry:
    """Entry calling a TransformerLens-style ``fn(tensor, hook=HookContext) -> tensor | None``.

    None (or the tensor itself) leaves the activation as it is.
    """

    def apply(tensor: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        out = fn(tensor, hook=HookContext(name, t))
        return tensor if out is None else _checked(out, tensor, f"hook {fn!r}", name)

    return Entry(name, names.points[name], _on_half(apply, registry, guidance), edit=True)
