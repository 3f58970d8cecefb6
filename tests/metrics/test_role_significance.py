"""Head roles against their permutation null: real roles found, random saliency at alpha."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binom

from diffusion_circuits.metrics.head_roles import edge_map, pool_to_grid, texture_map
from diffusion_circuits.metrics.role_significance import (
    assign_roles,
    max_score_test,
    score_matrix,
)

GEN = torch.Generator().manual_seed(0)


def _maps(
    n_images: int, side: int = 16, grid: int = 8, template: float = 0.0
) -> dict[str, torch.Tensor]:
    """Edge and texture maps of random smooth images (plus an aligned disk), on the grid."""
    images = torch.nn.functional.avg_pool2d(
        torch.rand(n_images, 1, side * 2, side * 2, generator=GEN, dtype=torch.float64), 2
    )[:, 0].numpy()
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    images = images + template * (np.hypot(yy, xx) < side / 3)
    return {
        "edge": pool_to_grid(edge_map(images), (grid, grid)),
        "texture": pool_to_grid(texture_map(images), (grid, grid)),
    }


def test_score_matrix_pairs_every_saliency_with_every_image():
    maps = _maps(3)
    saliency = torch.rand(2, 3, 4, 64, generator=GEN, dtype=torch.float64)
    scores = score_matrix(saliency, torch.stack([maps["edge"], maps["texture"]], dim=1))
    assert scores.shape == (2, 3, 3, 4, 2)
    expected = np.corrcoef(saliency[1, 2, 3].numpy(), maps["texture"][0].numpy())[0, 1]
    assert scores[1, 2, 0, 3, 1].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="disagree"):
        score_matrix(saliency, torch.stack([maps["edge"]] * 2, dim=1)[:2])


def test_a_head_copying_each_images_edges_is_significant():
    maps = _maps(40)
    noise = torch.rand(40, 64, generator=GEN, dtype=torch.float64)
    saliency = torch.stack([maps["edge"] + 0.5 * noise * maps["edge"].std(), noise], dim=1)[None]
    out = max_score_test(saliency, maps, n_permutations=199, alpha=0.05, seed=1)
    assert out.loc[0, "best"] == "edge" and out.loc[0, "p_value"] == pytest.approx(1 / 200)
    assert out.loc[0, "score"] > out.loc[0, "null_threshold"]
    assert out.loc[1, "score"] < out.loc[0, "score"]
    assert out.loc[0, "edge"] == out.loc[0, "score"]  # the mean of the winning column
    assert set(out.columns) >= {"texture", "n_images", "n_permutations"}


def test_a_fixed_positional_pattern_is_not_a_role():
    # The same saliency for every image correlates with the average edge map, but no more
    # with an image's own edges than with another image's: the permutation null absorbs it.
    maps = _maps(30, template=2.0)  # every image has a disk at the same place
    fixed = maps["edge"].mean(dim=0).expand(30, 64)[:, None]
    out = max_score_test(fixed[None], maps, n_permutations=199, alpha=0.05, seed=2)
    assert out.loc[0, "score"] > 0.5 and out.loc[0, "p_value"] > 0.05


def test_random_saliency_gets_a_role_at_the_nominal_rate():
    n_heads, n_images, alpha = 600, 25, 0.05
    maps = _maps(n_images)
    saliency = torch.distributions.Dirichlet(torch.ones(64, dtype=torch.float64)).sample(
        (2, n_images, n_heads)
    )  # 2 timesteps, independent of the images
    tests = max_score_test(saliency, maps, n_permutations=199, alpha=alpha, seed=3)
    tests["hook"] = "mid.attn.0"
    spec = pd.DataFrame({"hook": "mid.attn.0", "head": range(n_heads), "specialisation": 0.5})
    roles = assign_roles(tests, spec, global_threshold=0.05, alpha=alpha)
    n_roles = int(roles["role"].isin(["edge", "texture"]).sum())
    low, high = binom.interval(0.999, n_heads, alpha)
    assert low <= n_roles <= high, n_roles
    assert set(roles["role"]) <= {"edge", "texture", "none"}
    # The p-values are about uniform: a fifth of them below 0.2.
    assert (tests["p_value"] < 0.2).mean() == pytest.approx(0.2, abs=0.06)


def test_assign_roles_needs_positive_significant_specialised_heads():
    tests = pd.DataFrame(
        {
            "hook": "up.0.attn.0",
            "head": [0, 1, 2, 3, 4],
            "best": ["edge", "texture", "edge", "texture", None],
            "score": [0.4, 0.3, -0.05, 0.3, np.nan],
            "p_value": [0.001, 0.2, 0.001, 0.001, np.nan],
        }
    )
    spec = pd.DataFrame(
        {
            "hook": "up.0.attn.0",
            "head": [0, 1, 2, 3, 4],
            "specialisation": [0.3, 0.3, 0.3, 0.01, 0.3],
        }
    )
    roles = assign_roles(tests, spec, global_threshold=0.05, alpha=0.05)
    assert roles["role"].tolist() == ["edge", "none", "none", "global", "undetermined"]
    assert set(assign_roles(tests, spec, 0.5, 0.05)["role"]) == {"global"}
    with pytest.raises(ValueError, match="no specialisation"):
        assign_roles(tests, spec.head(2), 0.05, 0.05)
    with pytest.raises(ValueError, match="global_threshold"):
        assign_roles(tests, spec, 2.0, 0.05)
