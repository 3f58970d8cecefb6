"""Intervention impact and participation ratio against values worked out by hand."""

import pytest
import torch

from diffusion_circuits.metrics.impact import impact, participation_ratio


def test_impact_of_identity_is_zero_and_doubling_is_one():
    base = torch.tensor([0.3, 0.5, 0.2])
    assert torch.equal(impact(base, base), torch.zeros(3, dtype=torch.float64))
    assert impact(torch.tensor([0.6, 0.75, 0.1]), base).tolist() == pytest.approx([1.0, 0.5, -0.5])


def test_impact_broadcasts_one_baseline_over_components():
    base = torch.tensor([[0.1], [0.2]])  # [B, 1]
    intervened = torch.tensor([[0.1, 0.2], [0.3, 0.2]])  # [B, K]
    expected = torch.tensor([[0.0, 1.0], [0.5, 0.0]], dtype=torch.float64)
    assert torch.allclose(impact(intervened, base), expected)


def test_impact_needs_a_positive_baseline():
    with pytest.raises(ValueError, match="mse_baseline must be > 0"):
        impact(torch.tensor([0.1]), torch.tensor([0.0]))


def test_participation_ratio_by_hand():
    pr = participation_ratio(
        torch.tensor(
            [
                [0.2] * 5,  # equal: 1
                [0.0, 0.0, 0.7, 0.0, 0.0],  # one of K: 1/K
                [1.0, -3.0, 1.0, 0.0, 0.0],  # clipped to [1, 0, 1, 0, 0]: 4 / (5 * 2)
                [1.0, 2.0, 3.0, 0.0, 0.0],  # 36 / (5 * 14)
            ]
        )
    )
    assert pr.tolist() == pytest.approx([1.0, 1 / 5, 0.4, 36 / 70])


def test_participation_ratio_undefined_cases_are_nan():
    pr = participation_ratio(
        torch.tensor([[0.0, 0.0, 0.0], [-1.0, -2.0, 0.0], [1.0, float("nan"), 1.0]])
    )
    assert torch.isnan(pr).all()
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        participation_ratio(torch.ones(3))


def test_participation_ratio_is_scale_invariant():
    impacts = torch.rand(4, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(participation_ratio(impacts), participation_ratio(10 * impacts))
