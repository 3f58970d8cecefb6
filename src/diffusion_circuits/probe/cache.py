"""What a capture returns, and the halves of a classifier-free-guidance batch."""

from __future__ import annotations

import torch

__all__ = ["ActivationCache", "GUIDANCE_HALVES", "guidance_half"]

GUIDANCE_HALVES = ("uncond", "cond")


def guidance_half(tensor: torch.Tensor, half: str) -> slice:
    """Batch slice of one half of a classifier-free-guidance batch.

    diffusers pipelines stack ``[unconditional, conditional]`` along the batch: ``"uncond"``
    is the first half, ``"cond"`` the second.

    >>> guidance_half(torch.zeros(4, 3), "cond")
    slice(2, 4, None)
    """
    if half not in GUIDANCE_HALVES:
        raise ValueError(f"guidance must be None or one of {GUIDANCE_HALVES}, got {half!r}")
    if tensor.shape[0] % 2:
        raise ValueError(
            f"guidance={half!r} needs an even batch ([uncond, cond]); got {tensor.shape[0]} items"
        )
    n = tensor.shape[0] // 2
    return slice(0, n) if half == "uncond" else slice(n, 2 * n)


class ActivationCache(dict):
    """``hook name -> tensor`` (or its reduction); ``<attn>.out`` reads ``<attn>``.

    ``timesteps`` holds the timestep of each batch item of the last forward (a 1-d
    tensor), so cached activations keep their time.
    """

    timesteps: torch.Tensor | None = None

    @staticmethod
    def _alias(key):
        return key[: -len(".out")] if isinstance(key, str) and key.endswith(".out") else key

    def __missing__(self, key):
        alias = self._alias(key)
        if alias != key and dict.__contains__(self, alias):
            return self[alias]
        raise KeyError(key)

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or dict.__contains__(self, self._alias(key))

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default
