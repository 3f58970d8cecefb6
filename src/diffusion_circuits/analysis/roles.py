"""Head roles from data (paper 4.3, Table 2): what each head's attention lands on.

Each head's key saliency (attention received per position) is correlated with an edge
map, a texture map and the part masks of the probe images; near-uniform heads are
"global". The scores behind each label are kept beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from diffusion_circuits.data.faceset import PART_LABELS
from diffusion_circuits.metrics.head_roles import assign_roles, edge_map, role_scores, texture_map

__all__ = ["head_roles"]


def head_roles(
    saliency: dict[str, np.ndarray],
    images: np.ndarray,
    masks: np.ndarray | None,
    attention: pd.DataFrame,
    global_threshold: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image role scores and the role of each head.

    Parameters
    ----------
    saliency : ``"<hook>@t<t>" -> [N, heads, keys]`` from the cache stage.
    images : uint8 [N, H, W, 3] probe images, same order as the saliency rows.
    masks : uint8 [N, H, W] part labels or None (semantic scores are then NaN).
    attention : tidy attention table (metric ``specialisation`` is used).

    Returns
    -------
    ``(scores, roles)``: scores has ``hook, timestep, image_id, head, edge_score,
    texture_score, semantic_score, semantic_part``; roles has one row per (hook, head)
    with the mean scores, mean specialisation and ``role``.
    """
    grey = images.astype(np.float64).mean(axis=-1) / 255.0
    edges, texture = edge_map(grey), texture_map(grey)
    frames = []
    for key, values in saliency.items():
        hook, _, t = key.rpartition("@t")
        scores = role_scores(
            torch.from_numpy(values.astype(np.float32)), edges, texture, masks, PART_LABELS
        )
        scores.insert(0, "hook", hook)
        scores.insert(1, "timestep", int(t))
        frames.append(scores)
    scores = pd.concat(frames, ignore_index=True)
    specialisation = (
        attention[attention["metric"] == "specialisation"]
        .groupby(["hook", "head"], as_index=False)["value"]
        .mean()
        .rename(columns={"value": "specialisation"})
    )
    roles = assign_roles(scores, specialisation, global_threshold)
    return scores, roles
