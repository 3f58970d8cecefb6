"""Noise-prediction accuracy(t) of a model on held-out images, beside its no-learning floor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler

from diffusion_circuits.metrics.accuracy import (
    gaussian_noise_predictor,
    identity_noise_predictor,
    noise_mse,
    noise_prediction_accuracy,
)
from diffusion_circuits.model.factory import Denoiser
from diffusion_circuits.model.noise import add_noise, predict_noise

__all__ = ["BASELINES", "accuracy_table", "pixel_moments"]

# metric name of each no-learning predictor's R^2 in the accuracy table
BASELINES = ("accuracy_identity", "accuracy_gaussian")


def pixel_moments(x0_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel mean and population variance of the training images and their mirror images.

    Training draws horizontal flips with probability 1/2, so the Gaussian baseline sees the
    same distribution the model was trained on.
    """
    both = torch.cat([x0_train, x0_train.flip(-1)]).double()
    return both.mean(dim=0).float(), both.var(dim=0, unbiased=False).float()


@torch.no_grad()
def accuracy_table(
    unet: Denoiser,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    image_ids: Sequence[int],
    timesteps: Sequence[int],
    seed: int,
    batch_size: int = 50,
    moments: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> pd.DataFrame:
    """Per image and timestep: the model's ``accuracy`` (R^2) and ``noise_mse``, and the R^2
    of the no-learning predictors on the same ``(x_t, eps)``.

    The noise for timestep t comes from a generator keyed by (seed, t), so two models
    evaluated with the same seed see exactly the same ``x_t`` (common random numbers).
    ``accuracy_identity`` is always computed; ``accuracy_gaussian`` when ``moments``
    (per-pixel mean and variance of the training images, :func:`pixel_moments`) are given.
    ``accuracy_margin`` is the model's R^2 minus the better baseline's, per image.

    Returns
    -------
    DataFrame with columns ``image_id, timestep, metric, value``.
    """
    unet.eval()
    alphas = scheduler.alphas_cumprod
    rows = []
    ids = np.asarray(image_ids)
    for timestep in timesteps:
        x_t, eps, t = add_noise(scheduler, x0, int(timestep), seed)
        alpha_bar = float(alphas[int(timestep)])
        for start in range(0, len(x0), batch_size):
            chunk = slice(start, start + batch_size)
            eps_true = eps[chunk]
            eps_hat = predict_noise(unet, scheduler, x_t[chunk], t[chunk])
            scores = {
                "accuracy": noise_prediction_accuracy(eps_hat, eps_true),
                "noise_mse": noise_mse(eps_hat, eps_true),
            }
            scores["accuracy_identity"] = noise_prediction_accuracy(
                identity_noise_predictor(x_t[chunk], alpha_bar), eps_true
            )
            if moments is not None:
                scores["accuracy_gaussian"] = noise_prediction_accuracy(
                    gaussian_noise_predictor(x_t[chunk], alpha_bar, *moments), eps_true
                )
            best = torch.stack([scores[name] for name in BASELINES if name in scores]).amax(0)
            scores["accuracy_margin"] = scores["accuracy"] - best
            for metric, values in scores.items():
                rows.append(
                    pd.DataFrame(
                        {
                            "image_id": ids[chunk],
                            "timestep": int(timestep),
                            "metric": metric,
                            "value": values.double().numpy(),
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)
