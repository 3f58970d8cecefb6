"""Intervention impact (paper eq. 5) and circuit complexity as a participation ratio."""

from __future__ import annotations

import torch

__all__ = ["impact", "participation_ratio"]


def impact(mse_intervened: torch.Tensor, mse_baseline: torch.Tensor) -> torch.Tensor:
    """``(MSE_int - MSE_base) / MSE_base``, elementwise.

    Examples
    --------
    >>> impact(torch.tensor([0.2, 0.1]), torch.tensor([0.1, 0.1])).tolist()
    [1.0, 0.0]
    """
    return (mse_intervened.double() - mse_baseline.double()) / mse_baseline.double()


def participation_ratio(impacts: torch.Tensor) -> torch.Tensor:
    """``(sum I)^2 / (K sum I^2)`` per row of ``impacts`` [B, K], impacts clipped at 0.

    The fraction of the K components effectively in use: 1 when all matter equally, 1/K
    when one carries everything. NaN when no component has a positive impact.

    Examples
    --------
    >>> participation_ratio(torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, -1.0]])).tolist()
    [1.0, 0.25]
    """
    x = impacts.double().clamp_min(0)
    k = x.shape[1]
    total, squares = x.sum(dim=1), x.pow(2).sum(dim=1)
    ratio = total.pow(2) / (k * squares)
    return torch.where(squares > 0, ratio, torch.full_like(ratio, float("nan")))
