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
        output = self.original(
            attn,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            **{k: v for k, v in kwargs.items() if k in self._accepts},
        )
        wanted = {s for s in SITE_ORDER if self.hub.has(self._key(s), edit=False)}
        if wanted:
            with torch.no_grad():
                self.explicit(
                    attn,
                    hidden_states,
                    encoder_hidden_states,
                    attention_mask,
                    temb,
                    record_only=wanted,
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
    ) -> torch.Tensor | None:
        """diffusers' ``AttnProcessor`` with every site passed through the hub.

        With ``record_only`` (a set of sites) it stops after the last site needed and
        returns None.
        """
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
        heads = attn.heads

        def split(x: torch.Tensor) -> torch.Tensor:  # [B, n, heads*d] -> [B, heads, n, d]
            return x.view(batch, x.shape[1], heads, -1).transpose(1, 2)

        query, key, value = split(query), split(key), split(value)
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

        def merged(x: torch.Tensor) -> torch.Tensor:  # [B, heads, n, d] -> [B*heads, n, d]
            return x.reshape(batch * heads, *x.shape[2:])

        mask = (
            None
            if attention_mask is None
            else attention_mask.view(batch, heads, *attention_mask.shape[1:])
        )
        if self.hub.has(self._key("logits"), edit=True):
            q, k = (query.float(), key.float()) if attn.upcast_attention else (query, key)
            logits = attn.scale * (q @ k.transpose(-1, -2))
            if mask is not None:
                logits = logits + mask
            if attn.upcast_softmax:
                logits = logits.float()
            logits = self.hub.apply(self._key("logits"), logits)
            probs = logits.softmax(dim=-1).to(query.dtype)
        else:
            scores = attn.get_attention_scores(merged(query), merged(key), attention_mask)
            probs = scores.view(batch, heads, *scores.shape[1:])
        probs = self.hub.apply(self._key("pattern"), probs)
        if record_only is not None and "z" not in record_only:
            return None
        z = torch.bmm(merged(probs), merged(value)).view(batch, heads, probs.shape[2], -1)
        z = self.hub.apply(self._key("z"), z)
        if record_only is not None:
            return None
        hidden_states = attn.batch_to_head_dim(merged(z))
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor
