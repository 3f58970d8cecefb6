"""Each metric against a case worked by hand or an independent implementation."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mutual_info_score

from diffusion_circuits.data.faceset import PART_LABELS
from diffusion_circuits.metrics.accuracy import noise_mse, noise_prediction_accuracy
from diffusion_circuits.metrics.attention_entropy import head_entropy, key_saliency, specialisation
from diffusion_circuits.metrics.cka import cka_by_layer, linear_cka
from diffusion_circuits.metrics.feature_complexity import feature_complexity, hoyer_sparsity
from diffusion_circuits.metrics.head_roles import assign_roles, role_scores
from diffusion_circuits.metrics.impact import impact, participation_ratio
from diffusion_circuits.metrics.information_flow import (
    equal_frequency_bins,
    information_flow_efficiency,
    plugin_mutual_information,
)

GEN = torch.Generator().manual_seed(0)


def test_entropy_and_specialisation_worked_by_hand():
    n = 16
    uniform = torch.full((2, 3, 5, n), 1.0 / n)
    assert torch.allclose(head_entropy(uniform), torch.full((2, 3), 4.0, dtype=torch.float64))
    assert torch.allclose(
        specialisation(head_entropy(uniform), n), torch.zeros(2, 3, dtype=torch.float64)
    )
    one_hot = torch.zeros(1, 1, 4, n)
    one_hot[..., 3] = 1.0
    assert head_entropy(one_hot).item() == 0.0
    assert specialisation(head_entropy(one_hot), n).item() == 1.0
    rows = torch.tensor([[[[0.5, 0.5], [0.25, 0.75]]]])
    expected = (1.0 + (-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)))) / 2
    assert head_entropy(rows).item() == pytest.approx(expected)
    assert expected == pytest.approx((1 + 0.811278) / 2, abs=1e-6)
    assert key_saliency(rows)[0, 0].tolist() == [0.375, 0.625]


def test_accuracy_worked_by_hand():
    eps = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    assert noise_prediction_accuracy(eps, eps).item() == 1.0
    variance = np.var([1, 2, 3, 6])
    assert noise_prediction_accuracy(torch.zeros_like(eps), eps).item() == pytest.approx(
        1 - np.mean(np.square([1, 2, 3, 6])) / variance
    )
    assert noise_mse(eps + 1, eps).item() == 1.0


def test_feature_complexity_worked_by_hand():
    x = torch.tensor([[0.0, 0.0, 0.0, 4.0]])
    assert hoyer_sparsity(x).item() == pytest.approx(1.0)
    assert feature_complexity(x).item() == pytest.approx(np.std([0, 0, 0, 4]) * 4 * 1.0)
    assert hoyer_sparsity(torch.tensor([[2.0, -2.0, 2.0, 2.0]])).item() == pytest.approx(0.0)
    assert hoyer_sparsity(torch.zeros(1, 8)).item() == 0.0
    half = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # ||x||1/||x||2 = sqrt(2)
    assert hoyer_sparsity(half).item() == pytest.approx((2 - math.sqrt(2)) / (2 - 1))


def test_plugin_mi_matches_sklearn_and_a_2x2_table():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(3, 500))
    y = (x + rng.integers(0, 2, size=(3, 500))) % 4
    mi, h_x, _ = plugin_mutual_information(torch.from_numpy(x), torch.from_numpy(y), 4)
    for row in range(3):
        assert mi[row].item() == pytest.approx(mutual_info_score(x[row], y[row]) / math.log(2))
    # Perfectly dependent binary variables: MI = H = 1 bit.
    a = torch.tensor([[0, 0, 1, 1]])
    mi, h_x, h_y = plugin_mutual_information(a, a, 2)
    assert (mi.item(), h_x.item(), h_y.item()) == (1.0, 1.0, 1.0)
    assert equal_frequency_bins(torch.tensor([[5.0, 1.0, 3.0, 2.0]]), 4).tolist() == [[3, 0, 2, 1]]


def test_information_flow_efficiency_properties():
    f = torch.randn(4, 8, 16, 16, generator=GEN)
    assert torch.allclose(
        information_flow_efficiency(f, f, bins=8), torch.ones(4, dtype=torch.float64)
    )
    monotone = torch.exp(f)  # a monotone transform of every channel keeps MI
    assert information_flow_efficiency(f[:, :1], monotone[:, :1], bins=8).min() > 0.99
    independent = torch.randn(4, 8, 32, 32, generator=GEN)
    other = torch.randn(4, 8, 32, 32, generator=GEN)
    assert information_flow_efficiency(independent, other, bins=8).max() < 0.05
    constant = torch.zeros(2, 3, 4, 4)
    assert torch.isnan(information_flow_efficiency(constant, constant, bins=4)).all()


def test_impact_and_participation_ratio():
    base = torch.tensor([0.3, 0.5])
    assert torch.equal(impact(base, base), torch.zeros(2, dtype=torch.float64))
    pr = participation_ratio(
        torch.tensor([[0.2] * 5, [0.0, 0.0, 0.7, 0.0, 0.0], [1.0, -3.0, 1.0, 0, 0]])
    )
    assert pr[0].item() == pytest.approx(1.0)
    assert pr[1].item() == pytest.approx(1 / 5)
    assert pr[2].item() == pytest.approx(4 / (5 * 2))  # negatives clipped
    assert torch.isnan(participation_ratio(torch.zeros(1, 3))).all()


def test_cka_invariances():
    x = torch.randn(50, 10, generator=GEN, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=GEN, dtype=torch.float64))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x @ q) == pytest.approx(1.0)
    assert linear_cka(x, 2.5 * x + 3.0) == pytest.approx(1.0)
    assert linear_cka(x, torch.randn(50, 10, generator=GEN, dtype=torch.float64)) < 0.4
    table = cka_by_layer({"a": x, "b": x}, {"a": x @ q})
    assert table["hook"].tolist() == ["a"] and table["value"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rows"):
        linear_cka(x, x[:3])


def test_head_roles_from_hand_made_maps():
    rng = np.random.default_rng(0)
    edge = rng.random((2, 8, 8))
    texture = rng.random((2, 8, 8))
    masks = np.zeros((2, 8, 8), dtype=np.uint8)
    masks[:, 2:4, 1:7] = PART_LABELS["eyes"]
    saliency = torch.stack(
        [
            torch.from_numpy(edge.reshape(2, 64)),
            torch.from_numpy((masks == PART_LABELS["eyes"]).reshape(2, 64).astype(float)),
            torch.full((2, 64), 1 / 64, dtype=torch.float64),
        ],
        dim=1,
    )
    scores = role_scores(saliency, edge, texture, masks, PART_LABELS)
    head0 = scores[scores["head"] == 0]
    assert np.allclose(head0["edge_score"], 1.0)
    head1 = scores[scores["head"] == 1]
    assert np.allclose(head1["semantic_score"], 1.0) and set(head1["semantic_part"]) == {"eyes"}
    assert scores.loc[scores["head"] == 2, "edge_score"].isna().all()  # constant saliency
    scores["hook"] = "mid.attn.0"
    spec = pd.DataFrame(
        {"hook": "mid.attn.0", "head": [0, 1, 2], "specialisation": [0.3, 0.3, 0.0]}
    )
    roles = assign_roles(scores, spec, global_threshold=0.05)
    assert roles["role"].tolist() == ["edge", "semantic", "global"]
    assert roles.loc[1, "semantic_part"] == "eyes"
