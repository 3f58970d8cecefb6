"""Hoyer sparsity and feature complexity against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from diffusion_circuits.metrics.feature_complexity import feature_complexity, hoyer_sparsity


def test_hoyer_extremes_and_a_middle_value():
    assert hoyer_sparsity(torch.tensor([[0.0, 0.0, 0.0, 4.0]])).item() == pytest.approx(1.0)
    assert hoyer_sparsity(torch.tensor([[2.0, -2.0, 2.0, 2.0]])).item() == pytest.approx(0.0)
    assert hoyer_sparsity(torch.zeros(1, 8)).item() == 0.0  # defined as 0
    # [1, 1, 0, 0]: ||x||1 / ||x||2 = 2 / sqrt(2) = sqrt(2); n = 4, sqrt(n) = 2.
    half = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert hoyer_sparsity(half).item() == pytest.approx(2 - math.sqrt(2))


def test_feature_complexity_by_hand():
    # [0, 0, 0, 4]: mean 1, population var 16/4 - 1 = 3, range 4, Hoyer 1.
    assert feature_complexity(torch.tensor([[0.0, 0.0, 0.0, 4.0]])).item() == pytest.approx(
        math.sqrt(3) * 4
    )
    # [1, 1, 0, 0]: std 0.5, range 1, Hoyer 2 - sqrt(2).
    assert feature_complexity(torch.tensor([[1.0, 1.0, 0.0, 0.0]])).item() == pytest.approx(
        0.5 * 1 * (2 - math.sqrt(2))
    )
    # Constant magnitude: Hoyer 0, so complexity 0 although std and range are not.
    assert feature_complexity(torch.tensor([[2.0, -2.0, 2.0, 2.0]])).item() == pytest.approx(0.0)


def test_batched_4d_matches_a_per_image_numpy_reference():
    f = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0)) ** 3
    for i, image in enumerate(f.numpy().reshape(3, -1).astype(np.float64)):
        n = image.size
        hoyer = (math.sqrt(n) - np.abs(image).sum() / np.linalg.norm(image)) / (math.sqrt(n) - 1)
        expected = image.std() * (image.max() - image.min()) * hoyer
        assert feature_complexity(f)[i].item() == pytest.approx(expected)
        assert hoyer_sparsity(f)[i].item() == pytest.approx(hoyer)


def test_scaling_the_map_scales_complexity_quadratically():
    f = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(hoyer_sparsity(5 * f), hoyer_sparsity(f))
    assert torch.allclose(feature_complexity(5 * f), 25 * feature_complexity(f))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="at least 2"):
        hoyer_sparsity(torch.ones(3, 1))
    with pytest.raises(ValueError, match="NaN"):
        feature_complexity(torch.tensor([[1.0, float("nan")]]))
