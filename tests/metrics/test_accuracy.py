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
