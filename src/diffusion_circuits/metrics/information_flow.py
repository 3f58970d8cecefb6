"""Information-flow efficiency between consecutive layers (paper 3.2.3, eq. 4).

``IFE(l -> l+1) = MI(F_l, F_l+1) / max(H(F_l), H(F_l+1))`` per image. Both maps are
average-pooled to a common grid (the smaller of the two), each is reduced to its first
principal component over spatial positions (positions are samples, channels features),
and both are cut into equal-frequency bins; MI and H are plug-in estimates in bits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "equal_frequency_bins",
    "plugin_mutual_information",
    "first_principal_component",
    "information_flow_efficiency",
]


def equal_frequency_bins(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin index per element of each row of ``x`` [B, P] at the row's quantiles.

    Equal values always share a bin, so a constant map has zero entropy instead of
    information invented by the order of its positions.

    Examples
    --------
    >>> equal_frequency_bins(torch.tensor([[0.3, 0.1, 0.2, 0.4]]), 2).tolist()
    [[1, 0, 0, 1]]
    """
    ordered = torch.sort(x, dim=1).values
    cuts = (torch.arange(1, bins) * x.shape[1]) // bins
    edges = ordered[:, cuts].contiguous()
    return torch.searchsorted(edges, x.contiguous(), right=True)


def _entropy_bits(p: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    terms = torch.where(p > 0, p * torch.log2(p.clamp_min(1e-300)), torch.zeros_like(p))
    return -terms.sum(dim=dims)


def plugin_mutual_information(
    x_bins: torch.Tensor, y_bins: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plug-in ``(MI(X;Y), H(X), H(Y))`` in bits per row of two bin-index tensors [B, P]."""
    batch, n = x_bins.shape
    joint = torch.zeros(batch, bins * bins, dtype=torch.float64)
    joint.scatter_add_(1, x_bins * bins + y_bins, torch.ones(batch, n, dtype=torch.float64))
    joint = (joint / n).view(batch, bins, bins)
    h_x = _entropy_bits(joint.sum(dim=2), (1,))
    h_y = _entropy_bits(joint.sum(dim=1), (1,))
    h_xy = _entropy_bits(joint, (1, 2))
    return h_x + h_y - h_xy, h_x, h_y


def first_principal_component(features: torch.Tensor) -> torch.Tensor:
    """Projection of each position on the top principal axis of its image: [B, H*W]."""
    x = features.double().flatten(2).transpose(1, 2)  # [B, P, C]
    x = x - x.mean(dim=1, keepdim=True)
    covariance = x.transpose(1, 2) @ x
    _, vectors = torch.linalg.eigh(covariance)
    return (x @ vectors[:, :, -1:]).squeeze(-1)


def information_flow_efficiency(
    f_a: torch.Tensor, f_b: torch.Tensor, bins: int = 16, grid: int | None = None
) -> torch.Tensor:
    """IFE per image for two maps [B, C, H, W]; NaN where both entropies are 0."""
    if f_a.shape[0] != f_b.shape[0]:
        raise ValueError(f"batch sizes differ: {f_a.shape[0]} and {f_b.shape[0]}")
    size = grid or min(f_a.shape[-1], f_b.shape[-1], f_a.shape[-2], f_b.shape[-2])
    pooled = [F.adaptive_avg_pool2d(f.double(), size) for f in (f_a, f_b)]
    x_bins, y_bins = (equal_frequency_bins(first_principal_component(p), bins) for p in pooled)
    mi, h_x, h_y = plugin_mutual_information(x_bins, y_bins, bins)
    denominator = torch.maximum(h_x, h_y)
    return torch.where(
        denominator > 0, mi / denominator.clamp_min(1e-300), torch.full_like(mi, float("nan"))
    )
