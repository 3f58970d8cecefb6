"""Head entropy, specialisation and key saliency against cases worked by hand."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy as scipy_entropy

from diffusion_circuits.metrics import attention_entropy
from diffusion_circuits.metrics.attention_entropy import (
    head_entropy,
    key_saliency,
    max_entropy,
    specialisation,
)


def test_uniform_attention_has_maximal_entropy_and_no_specialisation():
    n = 16
    uniform = torch.full((2, 3, 5, n), 1.0 / n)
    entropy = head_entropy(uniform)
    assert entropy.shape == (2, 3)
    assert torch.allclose(entropy, torch.full((2, 3), 4.0, dtype=torch.float64))
    assert max_entropy(n) == 4.0
    assert torch.allclose(specialisation(entropy, n), torch.zeros(2, 3, dtype=torch.float64))


def test_one_hot_attention_has_zero_entropy_and_full_specialisation():
    one_hot = torch.zeros(1, 2, 4, 8)
    one_hot[..., 3] = 1.0
    entropy = head_entropy(one_hot)
    assert entropy.tolist() == [[0.0, 0.0]]
    assert specialisation(entropy, 8).tolist() == [[1.0, 1.0]]


def test_two_key_rows_by_hand():
    half = torch.tensor([[[[0.5, 0.5]]]])
    skewed = torch.tensor([[[[0.25, 0.75]]]])
    assert head_entropy(half).item() == pytest.approx(1.0)
    # -(0.25 log2 0.25 + 0.75 log2 0.75) = 0.5 + 0.311278 = 0.811278 bits
    assert head_entropy(skewed).item() == pytest.approx(0.811278, abs=1e-6)
    both = torch.tensor([[[[0.5, 0.5], [0.25, 0.75]]]])  # mean over the two queries
    assert head_entropy(both).item() == pytest.approx((1.0 + 0.811278) / 2, abs=1e-6)
    assert specialisation(head_entropy(skewed), 2).item() == pytest.approx(1 - 0.811278, abs=1e-6)


def test_matches_scipy_on_random_rows_and_heads_stay_apart():
    rng = np.random.default_rng(0)
    pattern = rng.dirichlet(np.ones(10) * 0.3, size=(2, 3, 7))  # [B, heads, queries, keys]
    expected = scipy_entropy(pattern, base=2, axis=-1).mean(axis=-1)
    assert np.allclose(head_entropy(torch.from_numpy(pattern)).numpy(), expected)


def test_chunked_computation_equals_one_block(monkeypatch):
    rng = np.random.default_rng(1)
    pattern = torch.from_numpy(rng.dirichlet(np.ones(6), size=(3, 4, 5))).float()
    whole = head_entropy(pattern)
    monkeypatch.setattr(attention_entropy, "_CHUNK_ELEMENTS", 31)  # one head per chunk
    assert torch.allclose(head_entropy(pattern), whole, rtol=0, atol=1e-12)


def test_key_saliency_is_mean_attention_received():
    pattern = torch.tensor([[[[0.5, 0.5], [0.25, 0.75]], [[1.0, 0.0], [1.0, 0.0]]]])
    assert key_saliency(pattern).tolist() == [[[0.375, 0.625], [1.0, 0.0]]]


def test_bad_patterns_are_rejected():
    with pytest.raises(ValueError, match=">= 0"):
        head_entropy(torch.tensor([[[[1.5, -0.5]]]]))
    with pytest.raises(ValueError, match="sum to 1"):
        head_entropy(torch.tensor([[[[2.0, 3.0]]]]))  # logits, not probabilities
    with pytest.raises(ValueError, match="at least 2"):
        head_entropy(torch.ones(1, 1, 3, 1))
    with pytest.raises(ValueError, match="n_keys"):
        specialisation(torch.zeros(1), 1)
    assert math.isclose(max_entropy(256), 8.0)
