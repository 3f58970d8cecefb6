"""Intervention impact (paper eq. 5) and circuit complexity as a participation ratio.

``I = (MSE_int - MSE_base) / MSE_base``: the relative increase of the noise-prediction
error caused by an intervention, per image, both runs sharing the same x_t and noise.
Circuit complexity (undefined in the paper; decided in design.md) is the participation
ratio of the K component impacts, clipped at 0: the fraction of components in use.
"""

from __future__ import annotations

import torch

__all__ = ["impact", "participation_ratio"]


def impact(mse_intervened: torch.Tensor, mse_baseline: torch.Tensor) -> torch.Tensor:
    """Relative change of the error: ``(MSE_int - MSE_base) / MSE_base``, elementwise.

    Parameters
    ----------
    mse_intervened, mse_baseline : torch.Tensor
        Per-image errors of the intervened and clean runs (broadcastable shapes).

    Returns
    -------
    torch.Tensor
        float64, the broadcast shape; metric name ``impact``. 0 for an intervention that
        changes nothing, 1.0 for one that doubles the error, negative when it helps.

    Raises
    ------
    ValueError
        If any baseline error is not > 0 (the ratio is undefined).

    Examples
    --------
    >>> impact(torch.tensor([0.2, 0.1, 0.05]), torch.tensor([0.1, 0.1, 0.1])).tolist()
    [1.0, 0.0, -0.5]
    """
    base = torch.as_tensor(mse_baseline).double()
    if not (base > 0).all():
        raise ValueError(f"mse_baseline must be > 0 everywhere; smallest is {base.min().item()!r}")
    return (torch.as_tensor(mse_intervened).double() - base) / base


def participation_ratio(impacts: torch.Tensor) -> torch.Tensor:
    """Participation ratio ``(sum I)^2 / (K sum I^2)`` of each row of impacts [B, K].

    Parameters
    ----------
    impacts : torch.Tensor
        [B, K]: for each image, the impact of ablating each of K components. Negative
        impacts (ablations that help) are clipped to 0 first.

    Returns
    -------
    torch.Tensor
        float64 [B] in [1/K, 1]; metric name ``circuit_complexity``. 1 when all K
        components matter equally, 1/K when one carries everything. NaN for an image
        where no component has a positive impact (nothing to share out), and wherever a
        row contains NaN.

    Examples
    --------
    >>> participation_ratio(torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, -1.0]])).tolist()
    [1.0, 0.25]
    """
    if impacts.ndim != 2 or impacts.shape[1] < 1:
        raise ValueError(f"impacts must be [B, K] with K >= 1, got shape {tuple(impacts.shape)}")
    x = impacts.double().clamp_min(0.0)  # clamp keeps NaN as NaN
    k = x.shape[1]
    total, squares = x.sum(dim=1), x.pow(2).sum(dim=1)
    ratio = total.pow(2) / (k * squares)
    return torch.where(squares > 0, ratio, torch.nan)
