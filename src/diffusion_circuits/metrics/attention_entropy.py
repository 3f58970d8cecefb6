"""Attention entropy, specialisation and key saliency per head (paper 3.2.1, eqs. 1-2).

``H = mean_i ( -sum_j A_ij log2 A_ij )`` in bits (``0 log 0 = 0``): the entropy of each
query's attention row, averaged over queries. ``S = (H_max - H) / H_max`` with
``H_max = log2(number of keys)``: 0 for uniform attention, 1 for one-hot rows.
"""

from __future__ import annotations

import math

import torch

__all__ = ["head_entropy", "max_entropy", "specialisation", "key_saliency"]

# Rows of probabilities stored in half precision sum to 1 only to about 1e-3 per 256
# keys; a looser bound still catches logits or unnormalised weights.
_ROW_SUM_TOLERANCE = 1e-2
# Largest block converted to float64 at once (128 MiB), bounding peak memory.
_CHUNK_ELEMENTS = 2**24


def _check_pattern(pattern: torch.Tensor) -> None:
    if pattern.ndim < 2:
        raise ValueError(
            f"pattern must be [..., queries, keys] (usually [B, heads, queries, keys]), "
            f"got {pattern.ndim} dim(s)"
        )
    if pattern.shape[-1] < 2:
        raise ValueError(f"pattern has {pattern.shape[-1]} key(s); entropy needs at least 2")
    if not torch.isfinite(pattern).all() or (pattern < 0).any():
        raise ValueError("pattern must hold finite probabilities >= 0 (softmax output)")
    row_sums = pattern.sum(dim=-1, dtype=torch.float64)
    worst = (row_sums - 1.0).abs().max().item()
    if worst > _ROW_SUM_TOLERANCE:
        raise ValueError(f"attention rows must sum to 1 over keys; worst row is off by {worst:.3g}")


def _mean_row_entropy_nats(p: torch.Tensor) -> torch.Tensor:
    # 0.0 - x rather than -x: one-hot rows give 0.0, not -0.0.
    return 0.0 - torch.special.xlogy(p, p).sum(dim=-1).mean(dim=-1)


def head_entropy(pattern: torch.Tensor) -> torch.Tensor:
    """Mean row entropy in bits per image and head.

    Parameters
    ----------
    pattern : torch.Tensor
        Attention probabilities [B, heads, queries, keys] (any leading axes work); each
        row over keys sums to 1.

    Returns
    -------
    torch.Tensor
        float64 [B, heads] (the leading axes of ``pattern``); metric name ``entropy``.
        Lies in [0, log2(keys)].

    Notes
    -----
    Computed in float64 over chunks of at most ``2**24`` elements, so a large float32
    pattern never gets a whole float64 copy.

    Examples
    --------
    >>> head_entropy(torch.full((1, 1, 2, 4), 0.25)).item()
    2.0
    >>> round(head_entropy(torch.tensor([[[[0.25, 0.75]]]])).item(), 6)
    0.811278
    """
    _check_pattern(pattern)
    *lead, queries, keys = pattern.shape
    rows = pattern.reshape(-1, queries, keys)
    step = max(1, _CHUNK_ELEMENTS // (queries * keys))
    nats = torch.cat([_mean_row_entropy_nats(chunk.double()) for chunk in rows.split(step)])
    return (nats / math.log(2.0)).reshape(lead)


def max_entropy(n_keys: int) -> float:
    """``log2(n_keys)``: the entropy of uniform attention over ``n_keys`` keys, in bits.

    Examples
    --------
    >>> max_entropy(256)
    8.0
    """
    if int(n_keys) != n_keys or n_keys < 2:
        raise ValueError(f"n_keys must be an integer >= 2, got {n_keys!r}")
    return math.log2(n_keys)


def specialisation(entropy: torch.Tensor, n_keys: int) -> torch.Tensor:
    """``S = (H_max - H) / H_max``: 0 for uniform attention, 1 for one-hot attention.

    Parameters
    ----------
    entropy : torch.Tensor
        Head entropies in bits, any shape (from :func:`head_entropy`).
    n_keys : int
        Number of keys the heads attend over (>= 2).

    Returns
    -------
    torch.Tensor
        Same shape as ``entropy``, in [0, 1]; metric name ``specialisation``.

    Examples
    --------
    >>> specialisation(torch.tensor([0.0, 1.0, 2.0]), 4).tolist()
    [1.0, 0.5, 0.0]
    """
    h_max = max_entropy(n_keys)
    return (h_max - entropy) / h_max


def key_saliency(pattern: torch.Tensor) -> torch.Tensor:
    """Attention received by each key position, averaged over queries.

    Parameters
    ----------
    pattern : torch.Tensor
        Attention probabilities [B, heads, queries, keys].

    Returns
    -------
    torch.Tensor
        float64 [B, heads, keys]; each row sums to 1 (it is a distribution over keys).

    Examples
    --------
    >>> key_saliency(torch.tensor([[[[0.5, 0.5], [0.25, 0.75]]]])).tolist()
    [[[0.375, 0.625]]]
    """
    _check_pattern(pattern)
    return pattern.sum(dim=-2, dtype=torch.float64) / pattern.shape[-2]
