"""Head roles over a probe set: tested labels, the same label set with or without masks."""

import numpy as np
import pandas as pd

from diffusion_circuits.analysis.roles import head_roles
from diffusion_circuits.data.faceset import PART_LABELS
from diffusion_circuits.metrics.head_roles import edge_map, pool_to_grid

RNG = np.random.default_rng(0)


def _inputs(n: int = 24):
    images = RNG.integers(0, 256, size=(n, 16, 16, 1), dtype=np.uint8)
    masks = np.zeros((n, 16, 16), dtype=np.uint8)
    masks[:, 4:8] = PART_LABELS["eyes"]
    edges = pool_to_grid(edge_map(images[..., 0] / 255.0), (4, 4)).numpy()
    uniform = np.full((n, 16), 1 / 16)
    noise = RNG.dirichlet(np.ones(16), size=n)
    saliency = np.stack([edges / edges.sum(1, keepdims=True), uniform, noise], axis=1)
    attention = pd.DataFrame(
        {
            "hook": "mid.attn.0",
            "head": [0, 1, 2],
            "metric": "specialisation",
            "value": [0.3, 0.01, 0.3],
        }
    )
    return {"mid.attn.0@t100": saliency, "mid.attn.0@t900": saliency}, images, masks, attention


def test_roles_are_tested_and_the_label_set_does_not_depend_on_masks():
    saliency, images, masks, attention = _inputs()
    args = dict(global_threshold=0.05, alpha=0.05, n_permutations=99, seed=0)
    scores, roles = head_roles(saliency, images, masks, attention, **args)
    assert roles["role"].tolist()[:2] == ["edge", "global"]
    assert (
        roles.loc[0, "p_value"] == 0.01
        and roles.loc[0, "role_score"] > roles.loc[0, "null_threshold"]
    )
    assert roles.loc[2, "role"] in {"none", "edge", "texture"}
    assert roles["semantic_part"].notna().any() and roles["semantic_p_value"].notna().any()
    assert set(scores["timestep"]) == {100, 900} and len(scores) == 2 * 24 * 3
    _, without = head_roles(saliency, images, None, attention, **args)
    assert without["role"].tolist() == roles["role"].tolist()
    assert without["semantic_score"].isna().all() and without["semantic_part"].isna().all()
    assert "semantic" not in set(roles["role"]) | set(without["role"])
