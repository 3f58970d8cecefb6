"""Forward-process noising with explicit generators (common random numbers).

Clean and intervened runs must see the same ``x_t`` and the same ``eps``; drawing the
noise from a seeded generator keyed by (seed, timestep) makes that the default path.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler

from diffusion_circuits.model.forward import denoise

__all__ = [
    "images_to_tensor",
    "noise_like",
    "add_noise",
    "check_timesteps",
    "training_target",
    "noise_from_output",
    "predict_noise",
]


def images_to_tensor(images: np.ndarray, channels: int | None = None) -> torch.Tensor:
    """uint8 [N, H, W, C] -> float32 [N, channels, H, W] in [-1, 1].

    ``channels=1`` averages the stored channels (exact for grey images, whose three stored
    channels are equal): grey data trains 1-channel models. ``None`` keeps all C.

    Examples
    --------
    >>> grey = np.full((1, 2, 2, 3), 255, np.uint8)
    >>> images_to_tensor(grey).shape, images_to_tensor(grey, channels=1).shape
    (torch.Size([1, 3, 2, 2]), torch.Size([1, 1, 2, 2]))
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images [N, H, W, C], got {images.dtype} {images.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if channels is not None and channels != tensor.shape[1]:
        if channels != 1:
            raise ValueError(f"cannot turn {tensor.shape[1]}-channel images into {channels}")
        tensor = tensor.mean(dim=1, keepdim=True)
    return tensor.div(127.5).sub(1.0)


def noise_like(x0: torch.Tensor, seed: int, timestep: int) -> torch.Tensor:
    """Gaussian noise for ``x0`` from a generator keyed by (seed, timestep)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + timestep)
    return torch.randn(x0.shape, generator=generator, dtype=x0.dtype)


def check_timesteps(timesteps, scheduler: DDPMScheduler) -> None:
    t_max = scheduler.config.num_train_timesteps
    bad = [int(t) for t in torch.as_tensor(timesteps).flatten() if not 0 <= int(t) < t_max]
    if bad:
        raise ValueError(f"timesteps {bad} outside [0, {t_max})")


def add_noise(
    scheduler: DDPMScheduler, x0: torch.Tensor, timestep: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(x_t, eps, t)`` for one timestep applied to the whole batch."""
    check_timesteps([timestep], scheduler)
    eps = noise_like(x0, seed, timestep)
    t = torch.full((x0.shape[0],), timestep, dtype=torch.long)
    return scheduler.add_noise(x0, eps, t), eps, t


def _signal_and_noise_scales(scheduler: DDPMScheduler, t: torch.Tensor, like: torch.Tensor):
    alpha_bar = scheduler.alphas_cumprod.to(like.device, torch.float32)[t.to(like.device)]
    shape = (-1,) + (1,) * (like.ndim - 1)
    return alpha_bar.sqrt().view(shape), (1.0 - alpha_bar).sqrt().view(shape)


def training_target(
    scheduler: DDPMScheduler, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """What the network learns to output: ``eps``, or ``v = sqrt(abar) eps - sqrt(1-abar) x0``."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return eps
    if kind == "v_prediction":
        return scheduler.get_velocity(x0, eps, t)
    raise ValueError(f"scheduler.prediction_type {kind!r} is not epsilon or v_prediction")


def noise_from_output(
    scheduler: DDPMScheduler, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The noise estimate a network output implies, in float32.

    Every accuracy and impact is measured on the predicted noise, whatever the network is
    trained to output: a v-prediction gives ``eps_hat = sqrt(1-abar) x_t + sqrt(abar) v_hat``
    (since ``x_t = sqrt(abar) x0 + sqrt(1-abar) eps``).

    Examples
    --------
    >>> s = DDPMScheduler(num_train_timesteps=10, prediction_type="v_prediction")
    >>> x0, eps, t = torch.ones(1, 1, 1, 1), torch.full((1, 1, 1, 1), 2.0), torch.tensor([4])
    >>> x_t = s.add_noise(x0, eps, t)
    >>> v = training_target(s, x0, eps, t)
    >>> round(noise_from_output(s, v, x_t, t).item(), 5)
    2.0
    """
    output = output.float()
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return output
    if kind == "v_prediction":
        signal, noise = _signal_and_noise_scales(scheduler, t, x_t)
        return noise * x_t.float() + signal * output
    raise ValueError(f"scheduler.prediction_type {kind!r} is not epsilon or v_prediction")


def predict_noise(
    unet, scheduler: DDPMScheduler, x_t: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Run the network on its own device and return its noise estimate (see
    :func:`noise_from_output`) as float32 on the CPU, where every metric is computed."""
    return predict_noise_and_output(unet, scheduler, x_t, t)[0]


def predict_noise_and_output(
    unet, scheduler: DDPMScheduler, x_t: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(noise estimate, network output)``, both on the CPU: the output is what becomes
    input-independent when an intervention cuts the path from x_t (under v-prediction the
    noise estimate still holds ``sqrt(1 - abar) x_t``)."""
    device = unet.device
    x_t, t = x_t.to(device), t.to(device)
    output = denoise(unet, x_t, t)
    return noise_from_output(scheduler, output, x_t, t).cpu(), output.detach().cpu()
