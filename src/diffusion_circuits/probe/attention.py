"""A recording attention processor, swapped in only while probing.

With no edit on its attention it returns exactly what the processor it replaces returns,
because it calls that processor (usually diffusers' fused ``AttnProcessor2_0``): probing
is bit-for-bit transparent. The requested sites are then computed beside it, for
recording only: q, k, v through ``attn.to_q / to_k / to_v`` on the same normalised input,
the pattern with ``attn.get_attention_scores`` (softmax(q k^T * scale), upcast as the
module asks) and z = pattern @ v.

Only when an intervention edits a site of this attention (q, k, v, logits, pattern or z)
does it take the explicit path, step for step diffusers' ``AttnProcessor``: spatial norm,
the 4-d -> tokens reshape, group norm, projections, per-head split, scores, softmax,
pattern @ v, head merge, ``to_out``, residual connection and rescale.
"""

from __future__ import annotations

import inspect
from typing import Protocol

import torch

__all__ = ["RecordingAttnProcessor", "SITE_ORDER"]

# logits are an edit point only (AttentionPerturbation), never recorded
SITE_ORDER = ("q", "k", "v", "logits", "pattern", "z")


class _Hub(Protocol):
    def has(self, key: str, edit: bool | None = None) -> bool: ...

    def apply(self, key: str, value: torch.Tensor) -> torch.Tensor: ...


class RecordingAttnProcessor:
    """Processor for the ``Attention`` module named ``name``.

    Parameters
    ----------
    original : the processor it replaces; restored by the registry afterwards.
    name : the module's hook name, e.g. ``"mid.attn.0"``.
    hub : answers ``has(f"{name}.{site}", edit)`` and applies a site's edits and
        recorders with ``apply(f"{name}.{site}", tensor)``.
    """

    def __init__(self, original, name: str, hub: _Hub):
        self.original = original
        self.name = name
        self.hub = hub
        self._accepts = set(inspect.signature(original.__call__).parameters)

    def _key(self, site: str) -> str:
        return f"{self.name}.{site}"

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        if any(self.hub.has(self._key(site), edit=True) for site in SITE_ORDER):
            return self.explicit(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        # called the way Attention.forward calls a processor, keywords filtered alike
        if "temb" in self._accepts:
            kwargs["temb"] = temb
        kwargs = {k: v for k, v in kwargs.items() if k in self._accepts}
        wanted = {s for s in SITE_ORDER if self.hub.has(self._key(s), edit=False)}
        if not wanted:
            return self.original(
                attn,
                hidden_states,
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=attention_mask,
                **kwargs,
            )
        # The projections the processor computes are the ones to record: take them as
        # they pass instead of computing them a second time.
        taken: dict[str, list[torch.Tensor]] = {"q": [], "k": [], "v": []}
        handles = [
            module.register_forward_hook(lambda _m, _a, out, site=site: taken[site].append(out))
            for site in taken
            if isinstance(module := getattr(attn, f"to_{site}", None), torch.nn.Module)
        ]
        try:
            output = self.original(
                attn,
                hidden_states,
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=attention_mask,
                **kwargs,
            )
        finally:
            for handle in handles:
                handle.remove()
        once = all(len(values) == 1 for values in taken.values())
        with torch.no_grad():
            self.explicit(
                attn,
                hidden_states,
                encoder_hidden_states,
                attention_mask,
                temb,
                record_only=wanted,
                projections=tuple(taken[s][0] for s in ("q", "k", "v")) if once else None,
            )
        return output

    def explicit(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        record_only: set[str] | None = None,
        projections: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | None:
        """diffusers' ``AttnProcessor`` with every site passed through the hub.

        With ``record_only`` (a set of sites) it stops after the last site needed and
        returns None; ``projections`` are the outputs of ``to_q, to_k, to_v`` when the
        processor has already computed them (recording only).
        """
        if projections is not None:
            query, key, value = projections
            mask = attn.prepare_attention_mask(attention_mask, key.shape[1], query.shape[0])
            self._sites(attn, query, key, value, mask, record_only)
            return None
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, tokens, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, tokens, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        z = self._sites(attn, query, key, value, attention_mask, record_only)
        if record_only is not None:
            return None
        hidden_states = attn.batch_to_head_dim(_merged(z))
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _sites(
        self,
        attn,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        record_only: set[str] | None,
    ) -> torch.Tensor | None:
        """Heads split, then q, k, v, logits, pattern and z through the hub, in order.

        Returns z [B, heads, queries, d], or None once the ``record_only`` sites are done.
        """
        batch, heads = query.shape[0], attn.heads
        query, key, value = (_split(x, heads) for x in (query, key, value))
        # AttnProcessor2_0 (the default) applies these; they are None in UNet2DModel
        if getattr(attn, "norm_q", None) is not None:
            query = attn.norm_q(query)
        if getattr(attn, "norm_k", None) is not None:
            key = attn.norm_k(key)
        query = self.hub.apply(self._key("q"), query)
        key = self.hub.apply(self._key("k"), key)
        value = self.hub.apply(self._key("v"), value)
        if record_only is not None and not record_only & {"pattern", "z"}:
            return None
        if self.hub.has(self._key("logits"), edit=True):
            q, k = (query.float(), key.float()) if attn.upcast_attention else (query, key)
            logits = attn.scale * (q @ k.transpose(-1, -2))
            if attention_mask is not None:
                logits = logits + attention_mask.view(batch, heads, *attention_mask.shape[1:])
            if attn.upcast_softmax:
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


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, n, heads*d] -> [B, heads, n, d]"""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _merged(x: torch.Tensor) -> torch.Tensor:
    """[B, heads, n, d] -> [B*heads, n, d]"""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
