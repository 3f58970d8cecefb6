"""Noise-prediction accuracy (paper 4.1): R^2 of the predicted noise, per image.

``accuracy = 1 - MSE(eps_hat, eps) / Var(eps)``, MSE and Var both over one image's
elements (channels x pixels), Var the population variance. It is 1 for a perfect
prediction, 0 for predicting the image's mean noise value everywhere and negative for
anything worse. The report prints it in percent.

Two no-learning predictors give the floor a trained model must clear at every timestep:
the identity predictor ``x_t / sqrt(1 - alpha_bar_t)`` and the per-pixel Gaussian
(Wiener) predictor built from the training images' mean and variance.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "noise_mse",
    "noise_prediction_accuracy",
    "identity_noise_predictor",
    "gaussian_noise_predictor",
]


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


def identity_noise_predictor(x_t: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """No-learning baseline ``eps_hat = x_t / sqrt(1 - alpha_bar_t)``.

    It is E[eps | x_t] when the clean image is 0, and its R^2 tends to 1 as t -> T: at
    high noise, beating it is the least a model must do.

    Examples
    --------
    >>> identity_noise_predictor(torch.tensor([[0.5, -1.0]]), 0.75).tolist()
    [[1.0, -2.0]]
    """
    return x_t / math.sqrt(1.0 - alpha_bar)


def gaussian_noise_predictor(
    x_t: torch.Tensor, alpha_bar: float, mean: torch.Tensor, variance: torch.Tensor
) -> torch.Tensor:
    """No-learning baseline: the Wiener (posterior-mean) predictor of a per-pixel Gaussian.

    With ``x0 ~ N(mean, variance)`` independently per pixel and
    ``x_t = a x0 + b eps`` (``a = sqrt(alpha_bar)``, ``b = sqrt(1 - alpha_bar)``),
    ``E[eps | x_t] = b (x_t - a mean) / (a^2 variance + b^2)``: the best prediction from
    the data's first two moments alone, at every noise level.

    Parameters
    ----------
    x_t : torch.Tensor
        [B, C, H, W] noised images.
    alpha_bar : float
        Cumulative alpha of the timestep.
    mean, variance : torch.Tensor
        [C, H, W] per-pixel mean and population variance of the training images.

    Examples
    --------
    With zero data variance it predicts the exact noise:

    >>> x0, eps = torch.full((1, 1, 1, 2), 0.5), torch.tensor([[[[1.0, -1.0]]]])
    >>> x_t = 0.6 * x0 + 0.8 * eps
    >>> gaussian_noise_predictor(x_t, 0.36, x0[0], torch.zeros(1, 1, 2)).round(decimals=5).tolist()
    [[[[1.0, -1.0]]]]
    """
    a, b = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
    return b * (x_t - a * mean) / (a * a * variance + b * b)
