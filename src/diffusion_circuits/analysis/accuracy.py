"""Noise-prediction accuracy(t) of a model on a set of clean images (paper 4.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler, UNet2DModel

from diffusion_circuits.metrics.accuracy import noise_mse, noise_prediction_accuracy
from diffusion_circuits.model.noise import add_noise

__all__ = ["accuracy_table"]


@torch.no_grad()
def accuracy_table(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    image_ids: Sequence[int],
    timesteps: Sequence[int],
    seed: int,
    batch_size: int = 50,
) -> pd.DataFrame:
    """Per image and timestep: ``accuracy`` (R^2 of the noise prediction) and ``noise_mse``.

    The noise for timestep t comes from a generator keyed by (seed, t), so two models
    evaluated with the same seed see exactly the same ``x_t`` (common random numbers).

    Returns
    -------
    DataFrame with columns ``image_id, timestep, metric, value``.
    """
    unet.eval()
    rows = []
    ids = np.asarray(image_ids)
    for timestep in timesteps:
        x_t, eps, t = add_noise(scheduler, x0, int(timestep), seed)
        for start in range(0, len(x0), batch_size):
            chunk = slice(start, start + batch_size)
            eps_hat = unet(x_t[chunk], t[chunk]).sample
            for metric, values in (
                ("accuracy", noise_prediction_accuracy(eps_hat, eps[chunk])),
                ("noise_mse", noise_mse(eps_hat, eps[chunk])),
            ):
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
