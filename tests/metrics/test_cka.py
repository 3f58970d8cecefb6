"""Linear CKA: invariances, a 1-D case worked by hand, both computation forms."""

import numpy as np
import pytest
import torch

from diffusion_circuits.metrics.cka import cka_by_layer, linear_cka

GEN = torch.Generator().manual_seed(0)


def _reference(x: np.ndarray, y: np.ndarray) -> float:
    """Feature-space formula straight from Kornblith et al. (2019), eq. in section 3."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_one_feature_cka_is_squared_pearson_by_hand():
    # Centred x = [-1.5, -0.5, 0.5, 1.5], y = [-1.5, 0.5, -0.5, 1.5]: r = 4 / 5, CKA = r^2.
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    y = torch.tensor([[1.0], [3.0], [2.0], [4.0]])
    assert linear_cka(x, y) == pytest.approx(0.64)


def test_invariances():
    x = torch.randn(50, 10, generator=GEN, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=GEN, dtype=torch.float64))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, x @ q) == pytest.approx(1.0)
    assert linear_cka(x, 2.5 * x + 3.0) == pytest.approx(1.0)
    assert linear_cka(x, 1e200 * x) == pytest.approx(1.0)  # no overflow in the 4th powers


def test_independent_representations_score_low():
    x = torch.randn(400, 4, generator=GEN, dtype=torch.float64)
    y = torch.randn(400, 4, generator=GEN, dtype=torch.float64)
    assert linear_cka(x, y) < 0.05


@pytest.mark.parametrize(("n", "d1", "d2"), [(60, 5, 8), (6, 40, 30)])
def test_gram_and_feature_forms_match_the_reference(n, d1, d2):
    x = torch.randn(n, d1, generator=GEN, dtype=torch.float64)
    y = x[:, :1] * torch.randn(1, d2, generator=GEN, dtype=torch.float64)
    y = y + torch.randn(n, d2, generator=GEN, dtype=torch.float64)
    assert linear_cka(x, y) == pytest.approx(_reference(x.numpy(), y.numpy()), rel=1e-10)


def test_multi_axis_activations_are_flattened():
    x = torch.randn(8, 2, 3, 3, generator=GEN)
    assert linear_cka(x, x.flatten(1)) == pytest.approx(1.0)


def test_constant_representation_is_nan_and_bad_shapes_raise():
    x = torch.randn(5, 3, generator=GEN)
    assert np.isnan(linear_cka(x, torch.ones(5, 3)))
    # Constant up to rounding: the column means of 0.3 and 0.7 are an ulp off.
    almost = torch.full((7, 3), 0.1, dtype=torch.float64) * torch.tensor([1.0, 3.0, 7.0])
    assert np.isnan(linear_cka(almost, torch.randn(7, 3, generator=GEN)))
    with pytest.raises(ValueError, match="rows"):
        linear_cka(x, x[:3])
    with pytest.raises(ValueError, match="at least 2"):
        linear_cka(x[:1], x[:1])


def test_cka_by_layer_is_tidy_and_strict_about_hooks():
    x = torch.randn(20, 6, generator=GEN, dtype=torch.float64)
    y = torch.randn(20, 6, generator=GEN, dtype=torch.float64)
    table = cka_by_layer(
        {"down.1.attn.0": x, "mid.attn.0": x}, {"mid.attn.0": y, "down.1.attn.0": -x}
    )
    assert list(table.columns) == ["hook", "metric", "value"]
    assert table["hook"].tolist() == ["down.1.attn.0", "mid.attn.0"]
    assert set(table["metric"]) == {"cka"}
    assert table["value"].iloc[0] == pytest.approx(1.0)
    assert table["value"].iloc[1] == pytest.approx(_reference(x.numpy(), y.numpy()))
    with pytest.raises(ValueError, match="only in a: \\['mid.attn.0'\\]"):
        cka_by_layer({"mid.attn.0": x}, {"up.1.attn.0": x})


def test_gram_form_equals_linear_cka_and_resamples_recompute_it():
    from diffusion_circuits.metrics.cka import (
        bootstrap_indices,
        cka_from_grams,
        gram,
        resampled_cka,
    )

    x = torch.randn(15, 40, generator=GEN, dtype=torch.float64)
    y = x[:, :10] @ torch.randn(10, 7, generator=GEN, dtype=torch.float64) + torch.randn(
        15, 7, generator=GEN, dtype=torch.float64
    )
    assert cka_from_grams(gram(x), gram(y)).item() == pytest.approx(linear_cka(x, y))
    indices = bootstrap_indices(15, 5, seed=1)
    values = resampled_cka(gram(x), gram(y), indices, chunk=2)
    expected = [linear_cka(x[i], y[i]) for i in indices]
    assert values.tolist() == pytest.approx(expected)
    assert torch.equal(bootstrap_indices(15, 5, seed=1), indices)
    assert torch.isnan(cka_from_grams(gram(torch.ones(4, 3)), gram(x[:4]))).item()
