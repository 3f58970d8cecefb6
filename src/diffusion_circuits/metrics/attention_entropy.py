"""Attention entropy and specialisation per head (paper 3.2.1, eqs. 1-2).

``H = mean_i ( -sum_j A_ij log2 A_ij )`` in bits: the entropy of each query's row,
averaged over queries (the paper sums over i and j; a row-mean keeps H within
[0, log2(keys)] whatever the number of queries). ``S = (H_max - H) / H_max`` with
``H_max = log2(keys)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["head_entropy", "max_entropy", "specialisation", "key_saliency"]


def head_entropy(pattern: torch.Tensor) -> torch.Tensor:
    """Entropy in bits per image and head for ``pattern`` [B, heads, queries, keys].

    Examples
    --------
    >>> head_entropy(torch.full((1, 1, 2, 4), 0.25)).item()
    2.0
    """
    p = pattern.double()
    terms = torch.where(p > 0, p * torch.log2(p.clamp_min(1e-300)), torch.zeros_like(p))
    return -terms.sum(dim=-1).mean(dim=-1)


def max_entropy(n_keys: int) -> float:
    return math.log2(n_keys)


def specialisation(entropy: torch.Tensor, n_keys: int) -> torch.Tensor:
    """``(H_max - H) / H_max``: 0 for uniform attention, 1 for one-hot attention."""
    h_max = max_entropy(n_keys)
    return (h_max - entropy) / h_max


def key_saliency(pattern: torch.Tensor) -> torch.Tensor:
    """Attention received by each key, averaged over queries: [B, heads, keys]."""
    return pattern.mean(dim=-2)
