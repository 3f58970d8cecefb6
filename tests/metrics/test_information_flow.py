"""Information-flow efficiency and its parts: bins, plug-in MI, principal component."""

import importlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_mutual_info_score, mutual_info_score

from diffusion_circuits.metrics import binned_information
from diffusion_circuits.metrics.binned_information import (
    effective_bins,
    equal_frequency_bins,
    expected_mutual_information,
    plugin_entropy,
    plugin_mutual_information,
)
from diffusion_circuits.metrics.information_flow import (
    first_principal_component,
    information_flow,
    information_flow_efficiency,
)

GEN = torch.Generator().manual_seed(0)


def test_equal_frequency_bins_by_rank():
    assert equal_frequency_bins(torch.tensor([[5.0, 1.0, 3.0, 2.0]]), 4).tolist() == [[3, 0, 2, 1]]
    x = torch.randn(3, 64, generator=GEN)
    counts = [torch.bincount(row, minlength=8).tolist() for row in equal_frequency_bins(x, 8)]
    assert counts == [[8] * 8] * 3
    # 10 values in 4 bins: floor(rank * 4 / 10) gives sizes 3, 2, 3, 2.
    assert torch.bincount(equal_frequency_bins(torch.arange(10.0)[None], 4)[0]).tolist() == [
        3,
        2,
        3,
        2,
    ]


def test_ties_share_a_bin_whatever_the_order():
    assert equal_frequency_bins(torch.tensor([[7.0, 7.0, 7.0, 9.0]]), 4).tolist() == [[0, 0, 0, 3]]
    assert equal_frequency_bins(torch.full((1, 6), 2.5), 3).tolist() == [[0] * 6]
    x = torch.tensor([[1.0, 2.0, 2.0, 2.0, 3.0, 4.0, 4.0, 0.0]])
    perm = torch.randperm(8, generator=GEN)
    assert torch.equal(equal_frequency_bins(x[:, perm], 4), equal_frequency_bins(x, 4)[:, perm])


def test_plugin_mi_on_a_2x2_table_by_hand():
    # p(0,0) = p(0,1) = 1/4, p(1,1) = 1/2: H(X) = 1, H(Y) = H(1/4, 3/4) = 0.811278,
    # H(X,Y) = 1.5, so MI = 1 + 0.811278 - 1.5 = 0.311278 bits.
    x, y = torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 1, 1, 1]])
    assert plugin_mutual_information(x, y, 2).item() == pytest.approx(0.311278, abs=1e-6)
    assert plugin_entropy(y, 2).item() == pytest.approx(0.811278, abs=1e-6)
    assert plugin_mutual_information(x, x, 2).item() == pytest.approx(1.0)


def test_plugin_mi_matches_sklearn_in_bits():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(3, 400))
    y = (x + rng.integers(0, 3, size=(3, 400))) % 5
    mi = plugin_mutual_information(torch.from_numpy(x), torch.from_numpy(y), 5)
    for row in range(3):
        assert mi[row].item() == pytest.approx(mutual_info_score(x[row], y[row]) / math.log(2))


def test_first_principal_component_matches_sklearn_pca_up_to_sign():
    f = torch.randn(2, 6, 5, 4, generator=GEN, dtype=torch.float64)
    f[:, 0] *= 4  # a clear leading axis
    scores = first_principal_component(f)
    for i in range(2):
        expected = PCA(n_components=1).fit_transform(f[i].flatten(1).T.numpy())[:, 0]
        sign = np.sign(expected @ scores[i].numpy())
        assert np.allclose(scores[i].numpy(), sign * expected)


def test_ife_of_a_map_with_itself_is_one():
    f = torch.randn(4, 8, 16, 16, generator=GEN)
    assert torch.allclose(
        information_flow_efficiency(f, f, bins=8), torch.ones(4, dtype=torch.float64)
    )


def test_ife_of_independent_noise_is_near_zero():
    a = torch.randn(3, 4, 64, 64, generator=GEN)
    b = torch.randn(3, 4, 64, 64, generator=GEN)
    ife = information_flow_efficiency(a, b, bins=8)
    assert (ife.abs() < 0.01).all()
    assert (information_flow_efficiency(a, b, bins=8, adjusted=False) < 0.05).all()


@pytest.mark.parametrize("side", [4, 8, 16, 32])
def test_adjusted_ife_of_independent_maps_is_zero_on_every_grid(side):
    # The raw plug-in ratio has a floor that grows as the grid shrinks (0.5 on 8x8 with
    # 16 bins before the bins were capped); the adjusted value is centred on 0.
    n = 300
    a = torch.randn(n, 4, side, side, generator=GEN)
    b = torch.randn(n, 4, side, side, generator=GEN)
    flow = information_flow(a, b, bins=16)
    assert flow.bins == min(16, side)
    standard_error = flow.adjusted.std().item() / math.sqrt(n)
    assert abs(flow.adjusted.mean().item()) < 4 * standard_error + 1e-3
    assert flow.raw.mean().item() == pytest.approx(flow.null.mean().item(), abs=0.01)
    if side <= 8:
        assert flow.raw.mean().item() > 0.1  # the bias the correction removes


def test_adjusted_ife_equals_sklearn_adjusted_mutual_information():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=(4, 90))
    y = (x + rng.integers(0, 4, size=(4, 90))) % 6
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mi, h_x, h_y = (
        plugin_mutual_information(xt, yt, 6),
        plugin_entropy(xt, 6),
        plugin_entropy(yt, 6),
    )
    expected = expected_mutual_information(xt, yt, 6)
    adjusted = (mi - expected) / (torch.maximum(h_x, h_y) - expected)
    for row in range(4):
        reference = adjusted_mutual_info_score(x[row], y[row], average_method="max")
        assert adjusted[row].item() == pytest.approx(reference, abs=1e-9)


def test_expected_mi_by_hand_and_by_enumeration():
    # [0, 0, 1, 1] against a shuffle of itself: of the 6 placements of y's two 0s, 2 give
    # a perfect (or perfectly inverted) match (1 bit), 4 give independence (0 bits).
    x = torch.tensor([[0, 0, 1, 1]])
    assert expected_mutual_information(x, x, 2).item() == pytest.approx(1 / 3)
    # Enumerate every permutation of 6 positions.
    import itertools

    a = torch.tensor([0, 0, 1, 1, 2, 2])
    b = torch.tensor([0, 1, 1, 1, 0, 2])
    perms = torch.tensor(list(itertools.permutations(range(6))))
    mean_mi = plugin_mutual_information(a.expand(len(perms), 6), b[perms], 3).mean().item()
    assert expected_mutual_information(a[None], b[None], 3).item() == pytest.approx(mean_mi)


def test_bins_are_capped_at_the_square_root_of_the_positions():
    assert [effective_bins(p, 16) for p in (4, 16, 63, 64, 1024)] == [2, 4, 7, 8, 16]
    assert effective_bins(1024, 8) == 8
    f = torch.randn(2, 3, 4, 4, generator=GEN)
    assert information_flow(f, f, bins=16).bins == 4
    assert effective_bins(1, 16) == 2  # a 1x1 map is constant: its IFE is NaN anyway
    with pytest.raises(ValueError, match="1 position"):
        effective_bins(0, 4)


def test_ife_is_invariant_to_monotone_and_affine_transforms():
    a = torch.randn(2, 1, 16, 16, generator=GEN)
    b = a + 0.7 * torch.randn(2, 1, 16, 16, generator=GEN)
    reference = information_flow_efficiency(a, b, bins=8)
    assert reference.min() > 0.1 and reference.max() < 0.9
    # One channel: the component is the map itself, so any monotone map keeps the ranks.
    assert torch.equal(information_flow_efficiency(a, torch.exp(3 * b), bins=8), reference)
    # A decreasing map reverses the bins: the same histogram up to summation order.
    assert torch.allclose(
        information_flow_efficiency(a, -(b**3), bins=8), reference, rtol=0, atol=1e-12
    )
    multi_a = torch.randn(2, 5, 16, 16, generator=GEN)
    multi_b = multi_a[:, :3] + 0.5 * torch.randn(2, 3, 16, 16, generator=GEN)
    expected = information_flow_efficiency(multi_a, multi_b, bins=8)
    assert torch.allclose(
        information_flow_efficiency(multi_a, 2.0 * multi_b - 1.0, bins=8), expected
    )


def test_maps_of_different_sizes_meet_on_the_smaller_grid():
    coarse = torch.randn(2, 3, 8, 8, generator=GEN)
    fine = F.interpolate(coarse, scale_factor=2, mode="nearest")  # area-pools back exactly
    assert torch.allclose(
        information_flow_efficiency(fine, coarse, bins=8), torch.ones(2, dtype=torch.float64)
    )
    # Shrinking is area averaging: a random fine map meets its own 2x2 block means.
    rough = torch.randn(2, 3, 16, 16, generator=GEN, dtype=torch.float64)
    pooled = F.avg_pool2d(rough, 2)
    assert torch.allclose(
        information_flow_efficiency(rough, pooled, bins=8), torch.ones(2, dtype=torch.float64)
    )
    # An explicit grid finer than one map is reached by bilinear upsampling of that map.
    smooth = F.interpolate(coarse.double(), size=(16, 16), mode="bilinear", align_corners=False)
    ife = information_flow_efficiency(smooth, coarse, bins=8, grid=(16, 16))
    assert torch.allclose(ife, torch.ones(2, dtype=torch.float64))
    assert information_flow_efficiency(fine, coarse, bins=8, grid=(16, 16)).max() < 0.9


def test_constant_maps_give_nan_or_zero():
    constant = torch.full((2, 3, 4, 4), 0.1)
    assert torch.isnan(information_flow_efficiency(constant, constant, bins=4)).all()
    varying = torch.randn(2, 3, 4, 4, generator=GEN)
    assert information_flow_efficiency(constant, varying, bins=4).tolist() == [0.0, 0.0]


def test_bad_input_is_rejected():
    f = torch.randn(2, 3, 4, 4, generator=GEN)
    with pytest.raises(ValueError, match="2 images but f_b has 3"):
        information_flow_efficiency(f, torch.randn(3, 3, 4, 4), bins=4)
    with pytest.raises(ValueError, match="bins"):
        information_flow_efficiency(f, f, bins=1)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        information_flow_efficiency(f.flatten(2), f, bins=4)
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        plugin_mutual_information(torch.tensor([[0, 2]]), torch.tensor([[0, 1]]), 2)


def test_the_estimators_keep_their_old_import_path():
    # The package re-exports the function information_flow under the module's name.
    flow_module = importlib.import_module("diffusion_circuits.metrics.information_flow")
    for name in binned_information.__all__:
        if name in ("check_bins", "plugin_information"):
            continue  # new with the split: never importable from information_flow
        assert getattr(flow_module, name) is getattr(binned_information, name)
        assert name in flow_module.__all__
