"""A recording attention processor, swapped in only while probing.

With no edit on its attention it returns exactly what the processor it replaces returns,
because it calls that processor (usually diffusers' fused ``AttnProcessor2_0``): probing
is bit-for-bit transparent. The requested sites are then computed beside it, for
recording only, by the attention's recipe (``probe.attention_recipes``): q, k, v from
the processor's own projections (taken as they pass, not computed twice; split from the
fused layer after ``fuse_qkv_projections()``), the pattern
with ``attn.get_attention_scores`` (softmax(q k^T * scale), upcast as the module asks;
``scale * q k^T`` softmaxed for modules without it, e.g. FLUX) and z = pattern @ v.

Only when an intervention edits a site of this attention (q, k, v, logits, pattern or z)
does it take the explicit path: the recipe's steps of the replaced processor, with every
site passed through the hub.
"""

from __future__ import annotations

import inspect
from typing import Protocol

import torch

from diffusion_circuits.probe.attention_recipes import AttentionCall, recipe_for
from diffusion_circuits.probe.projections import projection_layers, projector

__all__ = ["RecordingAttnProcessor", "SITE_ORDER"]

# logits are an edit point only (AttentionPerturbation), never recorded
SITE_ORDER = ("q", "k", "v", "logits", "pattern", "z")


class _Hub(Protocol):
    def has(self, key: str, edit: bool | None = None) -> bool: ...

    def apply(self, key: str, value: torch.Tensor) -> torch.Tensor: ...


class RecordingAttnProcessor:
    """Processor for the attention module named ``name``.

    Parameters
    ----------
    original : the processor it replaces; restored by the registry afterwards.
    name : the module's hook name, e.g. ``"mid.attn.0"``.
    hub : answers ``has(f"{name}.{site}", edit)`` and applies a site's edits and
        recorders with ``apply(f"{name}.{site}", tensor)``.
    recipe : how ``original`` computes (``probe.attention_recipes``); by default the
        one :func:`~diffusion_circuits.probe.attention_recipes.recipe_for` finds.
    """

    def __init__(self, original, name: str, hub: _Hub, recipe=None):
        self.original = original
        self.name = name
        self.hub = hub
        self.recipe = recipe
        self._accepts = set(inspect.signature(original.__call__).parameters)

    def _key(self, site: str) -> str:
        return f"{self.name}.{site}"

    def _recipe(self, attn, call: AttentionCall):
        if self.recipe is None:
            self.recipe, why = recipe_for(attn)
            if self.recipe is None:
                raise ValueError(f"{self.name}: {why}")
        if call.attention_mask is not None and not self.recipe.masks:
            raise ValueError(
                f"{self.name}: attention sites of {type(self.recipe).__name__} with an "
                "attention_mask are not reproduced; capture or edit its output, or drop the mask"
            )
        return self.recipe

    # FLUX's attention passes image_rotary_emb as the fifth positional argument
    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb=None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ):
        call = AttentionCall(
            hidden_states, encoder_hidden_states, attention_mask, temb, image_rotary_emb
        )
        if any(self.hub.has(self._key(site), edit=True) for site in SITE_ORDER):
            return self.explicit(attn, *call)
        # called the way the module calls a processor, keywords filtered alike
        for keyword in ("temb", "image_rotary_emb"):
            if keyword in self._accepts:
                kwargs[keyword] = getattr(call, keyword)
        kwargs = {k: v for k, v in kwargs.items() if k in self._accepts}
        wanted = {s for s in SITE_ORDER if self.hub.has(self._key(s), edit=False)}

        def original() -> object:
            return self.original(
                attn,
                hidden_states,
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=attention_mask,
                **kwargs,
            )

        if not wanted:
            return original()
        recipe = self._recipe(attn, call)
        # The projections the processor computes are the ones to record: take them as
        # they pass instead of computing them a second time.
        taken: dict[str, list[torch.Tensor]] = {n: [] for n in projection_layers(recipe, attn)}
        handles = [
            module.register_forward_hook(lambda _m, _a, out, name=name: taken[name].append(out))
            for name in taken
            if isinstance(module := getattr(attn, name, None), torch.nn.Module)
        ]
        try:
            output = original()
        finally:
            for handle in handles:
                handle.remove()

        with torch.no_grad():
            prepared = recipe.prepare(attn, call, projector(recipe, attn, taken))
            self._sites(attn, prepared, record_only=wanted)
        return output

    def explicit(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        image_rotary_emb=None,
    ):
        """The replaced processor's computation, step for step, with every site passed
        through the hub (``recipe.prepare``, the sites, ``recipe.output``)."""
        call = AttentionCall(
            hidden_states, encoder_hidden_states, attention_mask, temb, image_rotary_emb
        )
        recipe = self._recipe(attn, call)
        prepared = recipe.prepare(attn, call, projector(recipe, attn))
        z = self._sites(attn, prepared)
        return recipe.output(attn, z, prepared.state)

    def _sites(self, attn, prepared, record_only: set[str] | None = None) -> torch.Tensor | None:
        """q, k, v, logits, pattern and z through the hub, in order.

        Returns z [B, heads, queries, d], or None once the ``record_only`` sites are done.
        """
        query, key, value, attention_mask, _ = prepared
        batch, heads = query.shape[:2]
        query = self.hub.apply(self._key("q"), query)
        key = self.hub.apply(self._key("k"), key)
        value = self.hub.apply(self._key("v"), value)
        if record_only is not None and not record_only & {"pattern", "z"}:
            return None
        scale = getattr(attn, "scale", query.shape[-1] ** -0.5)
        upcast = getattr(attn, "upcast_attention", False), getattr(attn, "upcast_softmax", False)
        if self.hub.has(self._key("logits"), edit=True) or not hasattr(attn, "scale"):
            q, k = (query.float(), key.float()) if upcast[0] else (query, key)
            logits = scale * (q @ k.transpose(-1, -2))
            if attention_mask is not None:
                logits = logits + attention_mask.view(batch, heads, *attention_mask.shape[1:])
            if upcast[1]:
                logits = logits.float()
            logits = self.hub.apply(self._key("logits"), logits)
            probs = logits.softmax(dim=-1).to(query.dtype)
        else:
            scores = attn.get_attention_scores(_merged(query), _merged(key), attention_mask)
            probs = scores.view(batch, heads, *scores.shape[1:])
        probs = self.hub.apply(self._key("pattern"), probs)
        if record_only is not None and "z" not in record_only:
            return None
        z = torch.bmm(_merged(probs), _merged(value)).view(batch, heads, probs.shape[2], -1)
        return self.hub.apply(self._key("z"), z)


def _merged(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, n, d] -> [B*heads, n, d]"""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
