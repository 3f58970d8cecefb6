"""Head roles from data (paper 4.3, Table 2): what each head's attention lands on.

Each head's key saliency (attention received per position) is correlated with an edge
map and a texture map of each probe image; the winning candidate is a role only when
it beats a permutation null over images (:mod:`diffusion_circuits.metrics.role_significance`).
Near-uniform heads are "global". The scores, the null threshold and the p-value are kept
beside each label.

Both datasets get the same label set (global, edge, texture, none, undetermined):
``semantic`` is never assigned. The natural faces (the LFW stand-in; CelebA as read
here) carry no part masks, and a template mask for the aligned crops would be the same
map for every image, which the permutation null cannot tell from a fixed positional
pattern. Where part masks exist (synthetic faces) the best part, its mean correlation
and its own permutation p-value (max over parts corrected) are reported as
``semantic_part``, ``semantic_score``, ``semantic_p_value``: descriptive, not a label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from diffusion_circuits.data.faceset import PART_LABELS
from diffusion_circuits.layout import split_saliency_key
from diffusion_circuits.metrics.head_roles import (
    attention_grid,
    edge_map,
    pool_to_grid,
    role_scores,
    texture_map,
)
from diffusion_circuits.metrics.role_significance import (
    ROLE_CANDIDATES,
    assign_roles,
    max_score_test,
)

__all__ = ["head_roles"]

BACKGROUND = "background"


def _by_hook(saliency: dict[str, np.ndarray]) -> dict[str, dict[int, np.ndarray]]:
    hooks: dict[str, dict[int, np.ndarray]] = {}
    for key, values in saliency.items():
        hook, t = split_saliency_key(key)
        hooks.setdefault(hook, {})[t] = values
    return hooks


def _part_maps(masks: np.ndarray, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    return {
        part: pool_to_grid(masks == label, grid)
        for part, label in PART_LABELS.items()
        if part != BACKGROUND
    }


def head_roles(
    saliency: dict[str, np.ndarray],
    images: np.ndarray,
    masks: np.ndarray | None,
    attention: pd.DataFrame,
    global_threshold: float,
    alpha: float,
    n_permutations: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image role scores and the tested role of each head.

    Parameters
    ----------
    saliency : dict[str, numpy.ndarray]
        ``"<hook>@t<t>" -> [N, heads, keys]`` from the cache stage.
    images : numpy.ndarray
        uint8 [N, H, W] or [N, H, W, C] probe images, same order as the saliency rows.
    masks : numpy.ndarray or None
        uint8 [N, H, W] part labels, or None (no semantic scores).
    attention : pandas.DataFrame
        Tidy attention table (metric ``specialisation`` is used).
    global_threshold, alpha : float
        Params ``analyze.global_threshold`` and ``analyze.role_alpha``.
    n_permutations, seed : int
        Permutations of the images for the null (param ``analyze.null_permutations``)
        and their seed.

    Returns
    -------
    (scores, roles) : tuple of pandas.DataFrame
        ``scores``: ``hook, timestep, image_id, head, edge_score, texture_score,
        semantic_score, semantic_part`` [, ``part_<name>``] per image (descriptive).
        ``roles``: one row per (hook, head): ``hook, head, specialisation,
        edge_score, texture_score`` (means over images and timesteps), ``role_candidate``
        (the better of edge and texture), ``role_score`` (its mean), ``null_threshold``
        (1 - alpha quantile of the null max), ``p_value``, ``semantic_score``,
        ``semantic_part``, ``semantic_p_value`` (NaN / None without masks),
        ``n_images``, ``n_permutations``, ``role``.
    """
    grey = images.astype(np.float64)
    grey = (grey.mean(axis=-1) if grey.ndim == 4 else grey) / 255.0
    edges, texture = edge_map(grey), texture_map(grey)
    score_frames, test_frames = [], []
    for hook, by_t in _by_hook(saliency).items():
        timesteps = sorted(by_t)
        stacked = torch.from_numpy(np.stack([by_t[t] for t in timesteps]).astype(np.float64))
        for t in timesteps:
            frame = role_scores(stacked[timesteps.index(t)], edges, texture, masks, PART_LABELS)
            score_frames.append(frame.assign(hook=hook, timestep=t))
        grid = attention_grid(stacked.shape[-1], grey.shape[1:])
        pooled = (pool_to_grid(edges, grid), pool_to_grid(texture, grid))
        candidates = dict(zip(ROLE_CANDIDATES, pooled, strict=True))
        tests = max_score_test(stacked, candidates, n_permutations, alpha, seed)
        tests = tests.rename(columns={"edge": "edge_score", "texture": "texture_score"})
        if masks is not None:
            parts = max_score_test(stacked, _part_maps(masks, grid), n_permutations, alpha, seed)
            tests["semantic_part"] = parts["best"]
            tests["semantic_score"] = parts["score"]
            tests["semantic_p_value"] = parts["p_value"]
        else:
            tests["semantic_part"] = None
            tests["semantic_score"] = np.nan
            tests["semantic_p_value"] = np.nan
        test_frames.append(tests.assign(hook=hook))
    scores = pd.concat(score_frames, ignore_index=True)
    leading = ["hook", "timestep", "image_id", "head"]
    scores = scores[leading + [c for c in scores.columns if c not in leading]]
    specialisation = (
        attention[attention["metric"] == "specialisation"]
        .groupby(["hook", "head"], as_index=False)["value"]
        .mean()
        .rename(columns={"value": "specialisation"})
    )
    tests = pd.concat(test_frames, ignore_index=True)
    roles = assign_roles(tests, specialisation, global_threshold, alpha).rename(
        columns={"best": "role_candidate", "score": "role_score"}
    )
    columns = [
        "hook", "head", "specialisation", "edge_score", "texture_score", "role_candidate",
        "role_score", "null_threshold", "p_value", "semantic_score", "semantic_part",
        "semantic_p_value", "n_images", "n_permutations", "role",
    ]  # fmt: skip
    roles["semantic_part"] = roles["semantic_part"].astype(object)
    return scores, roles[columns]
