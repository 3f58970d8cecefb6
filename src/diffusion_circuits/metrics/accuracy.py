"""Noise-prediction accuracy (paper 4.1): R^2 of the predicted noise, per image."""

from __future__ import annotations

import torch

__all__ = ["noise_mse", "noise_prediction_accuracy"]


def noise_mse(eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (first axis)."""
    diff = eps_hat.double() - eps.double()
    return diff.pow(2).flatten(1).mean(dim=1)


def noise_prediction_accuracy(eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``1 - MSE(eps_hat, eps) / Var(eps)`` per image, Var over that image's elements.

    Examples
    --------
    >>> eps = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    >>> noise_prediction_accuracy(eps, eps).item(), noise_prediction_accuracy(0 * eps, eps).item()
    (1.0, 0.0)
    """
    variance = eps.double().flatten(1).var(dim=1, unbiased=False)
    return 1.0 - noise_mse(eps_hat, eps) / variance
