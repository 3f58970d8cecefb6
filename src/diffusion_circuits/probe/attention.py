"""A recording attention processor, swapped in only while probing.

Without an edit it returns exactly what the processor it replaces returns (it calls it),
so probing is bit-for-bit transparent; the requested sites (q, k, v, pattern, z) are
computed beside it, for recording only. With an edit (a pattern perturbation or a head
ablation) it takes the explicit path of diffusers' ``AttnProcessor``, step for step,
applying the edits to the logits / probabilities / per-head outputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["RecordingAttnProcessor"]

Store = Callable[[str, torch.Tensor], None]


class RecordingAttnProcessor:
    """Processor for one ``Attention`` module named ``name``.

    Parameters
    ----------
    original : the processor it replaces (called for the output when nothing is edited).
    name : the module's hook name, e.g. ``"mid.attn.0"``.
    recorders : list of ``(sites, store)``; ``store(f"{name}.{site}", tensor)`` receives each
        recorded tensor whose site is in ``sites`` (subset of q, k, v, pattern, z).
    logit_edits, pattern_edits, z_edits : callables ``tensor -> tensor`` applied to the
        logits [B, heads, q, k], the probabilities [B, heads, q, k] and the per-head
        outputs [B, heads, q, head_dim].
    """

    def __init__(self, original, name: str):
        self.original = original
        self.name = name
        self.recorders: list[tuple[set[str], Store]] = []
        self.logit_edits: list = []
        self.pattern_edits: list = []
        self.z_edits: list = []

    @property
    def sites(self) -> set[str]:
        return set().union(*(sites for sites, _ in self.recorders))

    @property
    def active(self) -> bool:
        return bool(self.recorders) or self.edits

    @property
    def edits(self) -> bool:
        return bool(self.logit_edits or self.pattern_edits or self.z_edits)

    def __call__(
        self,
        attn,
        hidden_states,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        *args,
        **kwargs,
    ):
        if not self.edits:
            output = self.original(
                attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs
            )
            if self.sites:
                with torch.no_grad():
                    self._explicit(
                        attn,
                        hidden_states,
                        encoder_hidden_states,
                        attention_mask,
                        temb,
                        record_only=True,
                    )
            return output
        return self._explicit(attn, hidden_states, encoder_hidden_states, attention_mask, temb)

    def _record(self, site: str, tensor: torch.Tensor) -> None:
        for sites, store in self.recorders:
            if site in sites:
                store(f"{self.name}.{site}", tensor)

    def _explicit(
        self,
        attn,
        hidden_states,
        encoder_hidden_states,
        attention_mask,
        temb,
        record_only: bool = False,
    ):
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
        query, key, value = (attn.head_to_batch_dim(x) for x in (query, key, value))
        heads = attn.heads

        def per_head(x: torch.Tensor) -> torch.Tensor:  # [B*heads, n, d] -> [B, heads, n, d]
            return x.view(batch, heads, *x.shape[1:])

        self._record("q", per_head(query))
        self._record("k", per_head(key))
        self._record("v", per_head(value))
        if self.logit_edits:
            logits = attn.scale * per_head(query).float() @ per_head(key).float().transpose(-1, -2)
            if attention_mask is not None:
                logits = logits + per_head(attention_mask).float()
            for edit in self.logit_edits:
                logits = edit(logits)
            probs = logits.softmax(dim=-1).to(value.dtype)
        elif record_only and not self.sites & {"pattern", "z"}:
            return None
        else:
            probs = per_head(attn.get_attention_scores(query, key, attention_mask))
        for edit in self.pattern_edits:
            probs = edit(probs)
        self._record("pattern", probs)
        z = probs @ per_head(value)
        for edit in self.z_edits:
            z = edit(z)
        self._record("z", z)
        if record_only:
            return None
        hidden_states = attn.batch_to_head_dim(z.reshape(batch * heads, *z.shape[2:]))
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor
