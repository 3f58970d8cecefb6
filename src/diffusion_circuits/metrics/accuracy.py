"""Noise-prediction accuracy (paper 4.1): R^2 of the predicted noise, per image.

``accuracy = 1 - MSE(eps_hat, eps) / Var(eps)``, MSE and Var both over one image's
elements (channels x pixels), Var the population variance. It is 1 for a perfect
prediction, 0 for predicting the image's mean noise value everywhere and negative for
anything worse. The report prints it in percent.
"""

from __future__ import annotations

import torch

__all__ = ["noise_mse", "noise_prediction_accuracy"]


def _check_pair(eps_hat: torch.Tensor, eps: torch.Tensor) -> None:
    if eps_hat.shape != eps.shape:
        raise ValueError(
            f"eps_hat has shape {tuple(eps_hat.shape)} but eps has {tuple(eps.shape)}; "
            "they must match exactly"
        )
    if eps.ndim < 2:
        raise ValueError(f"expected [B, ...] tensors with an image axis, got {eps.ndim} dim(s)")


def noise_mse(eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the predicted noise, per image.

    Parameters
    ----------
    eps_hat, eps : torch.Tensor
        Predicted and true noise, same shape [B, ...]; the first axis is the image.

    Returns
    -------
    torch.Tensor
        float64 [B]: ``mean((eps_hat - eps)^2)`` over each image's elements.

    Examples
    --------
    >>> eps = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    >>> noise_mse(eps + torch.tensor([[1.0, 1.0], [0.0, 2.0]]), eps).tolist()
    [1.0, 2.0]
    """
    _check_pair(eps_hat, eps)
    diff = eps_hat.double() - eps.double()
    return diff.pow(2).flatten(1).mean(dim=1)


def noise_prediction_accuracy(eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """R^2 of the noise prediction per image: ``1 - MSE(eps_hat, eps) / Var(eps)``.

    Parameters
    ----------
    eps_hat, eps : torch.Tensor
        Predicted and true noise, same shape [B, ...].

    Returns
    -------
    torch.Tensor
        float64 [B], in (-inf, 1]; metric name ``accuracy``.

    Raises
    ------
    ValueError
        If shapes differ or an image's true noise has zero variance (R^2 undefined).

    Notes
    -----
    ``Var(eps) = mean((eps - mean(eps))^2)`` over the image's elements (population
    variance, the same normalisation as the MSE).

    Examples
    --------
    >>> eps = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    >>> noise_prediction_accuracy(eps, eps).item(), noise_prediction_accuracy(0 * eps, eps).item()
    (1.0, 0.0)
    """
    _check_pair(eps_hat, eps)
    variance = eps.double().flatten(1).var(dim=1, unbiased=False)
    if (variance <= 0).any():
        bad = torch.nonzero(variance <= 0).flatten().tolist()
        raise ValueError(f"eps has zero variance in image(s) {bad}; R^2 is undefined there")
    return 1.0 - noise_mse(eps_hat, eps) / variance
