"""Noise-prediction accuracy (R^2) and MSE against values worked out by hand."""

import numpy as np
import pytest
import torch

from diffusion_circuits.metrics.accuracy import noise_mse, noise_prediction_accuracy


def test_perfect_prediction_scores_one():
    eps = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noise_prediction_accuracy(eps, eps), torch.ones(3, dtype=torch.float64))


def test_zero_prediction_by_hand():
    # eps = [1, 2, 3, 6]: mean 3, var (4+1+0+9)/4 = 3.5, mean(eps^2) = 50/4 = 12.5,
    # so R^2 = 1 - 12.5 / 3.5 = -18/7.
    eps = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    assert noise_prediction_accuracy(torch.zeros_like(eps), eps).item() == pytest.approx(-18 / 7)


def test_predicting_the_image_mean_scores_zero_and_images_are_separate():
    eps = torch.tensor([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 10.0, -10.0]])
    mean_prediction = eps.mean(dim=1, keepdim=True).expand_as(eps)
    assert noise_prediction_accuracy(mean_prediction, eps).tolist() == pytest.approx([0.0, 0.0])
    # Image 2's error is divided by image 2's variance only (50), never a pooled one.
    off_by_one = eps + torch.tensor([[0.0] * 4, [1.0, 1.0, 1.0, 1.0]])
    assert noise_prediction_accuracy(off_by_one, eps).tolist() == pytest.approx([1.0, 1 - 1 / 50])


def test_mse_per_image_matches_numpy():
    gen = torch.Generator().manual_seed(1)
    eps, eps_hat = torch.randn(4, 3, 5, 5, generator=gen), torch.randn(4, 3, 5, 5, generator=gen)
    expected = ((eps_hat.numpy() - eps.numpy()) ** 2).reshape(4, -1).mean(axis=1)
    assert np.allclose(noise_mse(eps_hat, eps).numpy(), expected)
    assert noise_mse(eps + 1, eps).tolist() == pytest.approx([1.0] * 4)


def test_bad_input_is_rejected():
    eps = torch.ones(2, 4)
    with pytest.raises(ValueError, match="shape"):
        noise_mse(eps, torch.ones(2, 5))
    with pytest.raises(ValueError, match="zero variance in image"):
        noise_prediction_accuracy(eps, eps)


def test_identity_predictor_is_exact_for_a_zero_image():
    from diffusion_circuits.metrics.accuracy import identity_noise_predictor

    eps = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    alpha_bar = 0.3
    x_t = (1 - alpha_bar) ** 0.5 * eps  # x0 = 0
    assert torch.allclose(identity_noise_predictor(x_t, alpha_bar), eps)


def test_gaussian_predictor_is_the_posterior_mean_of_gaussian_data():
    """On data that is exactly per-pixel Gaussian, the Wiener predictor is the MSE-optimal
    no-learning predictor: it beats the identity predictor and matches the closed form
    R^2 = 1 - a^2 s^2 / (a^2 s^2 + b^2) for unit-variance noise."""
    from diffusion_circuits.metrics.accuracy import (
        gaussian_noise_predictor,
        identity_noise_predictor,
    )

    gen = torch.Generator().manual_seed(0)
    n, mean, std, alpha_bar = 20000, 0.3, 0.5, 0.6
    x0 = mean + std * torch.randn(n, 1, 2, 2, generator=gen)
    eps = torch.randn(n, 1, 2, 2, generator=gen)
    x_t = alpha_bar**0.5 * x0 + (1 - alpha_bar) ** 0.5 * eps
    wiener = gaussian_noise_predictor(
        x_t, alpha_bar, torch.full((1, 2, 2), mean), torch.full((1, 2, 2), std**2)
    )
    a2s2, b2 = alpha_bar * std**2, 1 - alpha_bar
    expected_mse = a2s2 / (a2s2 + b2)  # posterior variance of eps given x_t
    assert ((wiener - eps) ** 2).mean().item() == pytest.approx(expected_mse, rel=0.03)
    identity_mse = ((identity_noise_predictor(x_t, alpha_bar) - eps) ** 2).mean().item()
    assert identity_mse > expected_mse * 1.5


def test_accuracy_table_reports_baselines_and_margin():
    from diffusers import DDPMScheduler

    from diffusion_circuits.analysis.accuracy import accuracy_table, pixel_moments

    class Oracle(torch.nn.Module):
        """Returns the true noise of a zero image: R^2 = 1 exactly."""

        config = type("C", (), {})()
        device = torch.device("cpu")  # as every diffusers model has

        def forward(self, x_t, t):
            alpha_bar = scheduler.alphas_cumprod[t][:, None, None, None]
            return type("O", (), {"sample": x_t / (1 - alpha_bar).sqrt()})()

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    x0 = torch.zeros(3, 1, 4, 4)
    table = accuracy_table(
        Oracle(), scheduler, x0, [7, 8, 9], [100, 900], seed=0,
        moments=pixel_moments(torch.randn(10, 1, 4, 4, generator=torch.Generator().manual_seed(1))),
    )  # fmt: skip
    assert set(table.metric) == {
        "accuracy", "noise_mse", "accuracy_identity", "accuracy_gaussian", "accuracy_margin"
    }  # fmt: skip
    values = table.pivot_table(index=["image_id", "timestep"], columns="metric", values="value")
    assert np.allclose(values["accuracy"], 1.0)
    # x0 = 0: the identity predictor is exact too, so the margin is 0, never positive
    assert np.allclose(values["accuracy_identity"], 1.0)
    best = values[["accuracy_identity", "accuracy_gaussian"]].max(axis=1)
    assert np.allclose(values["accuracy_margin"], values["accuracy"] - best)
