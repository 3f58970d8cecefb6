"""Head roles from data (paper 4.3, Table 2): edge, texture, semantic or global.

Each head's key saliency (attention received per key position, a map on the attention
grid) is correlated across positions (Pearson) with three kinds of image maps, all
area-averaged down to the attention grid: the Sobel edge magnitude of the clean image,
its local variance in a 3x3 window (texture), and the indicator of each semantic part.
A head whose mean specialisation is below a threshold is "global" (it spreads its
attention); otherwise its role is the kind with the highest mean correlation.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.filters import sobel

__all__ = ["edge_map", "texture_map", "role_scores", "assign_roles"]


def edge_map(images: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of each greyscale image [B, H, W]."""
    return np.stack([sobel(np.asarray(image, dtype=np.float64)) for image in images])


def texture_map(images: np.ndarray) -> np.ndarray:
    """Local variance in a 3x3 window of each greyscale image [B, H, W]."""
    x = np.asarray(images, dtype=np.float64)
    mean = ndimage.uniform_filter(x, size=(1, 3, 3))
    return np.maximum(ndimage.uniform_filter(x * x, size=(1, 3, 3)) - mean**2, 0.0)


def _to_grid(maps: np.ndarray, side: int) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(maps, dtype=np.float64))[:, None]
    return F.adaptive_avg_pool2d(tensor, side)[:, 0].flatten(1)  # [B, side*side]


def _pearson(saliency: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Correlation across positions of [B, heads, P] with [B, P] -> [B, heads]."""
    s = saliency - saliency.mean(dim=-1, keepdim=True)
    m = (maps - maps.mean(dim=-1, keepdim=True))[:, None, :]
    denominator = s.norm(dim=-1) * m.norm(dim=-1)
    values = (s * m).sum(dim=-1) / denominator.clamp_min(1e-300)
    return torch.where(denominator > 0, values, torch.full_like(values, float("nan")))


def role_scores(
    saliency: torch.Tensor,
    edge: np.ndarray,
    texture: np.ndarray,
    part_masks: np.ndarray | None,
    part_labels: dict[str, int],
) -> pd.DataFrame:
    """Per image and head: ``edge_score``, ``texture_score``, ``semantic_score`` (best part).

    ``saliency`` is [B, heads, keys] with keys a square grid; maps are [B, H, W].
    Columns: ``image_id`` (row index), ``head``, the three scores, ``semantic_part``.
    """
    batch, heads, keys = saliency.shape
    side = math.isqrt(keys)
    if side * side != keys:
        raise ValueError(f"{keys} keys is not a square attention grid")
    s = saliency.double()
    scores = {
        "edge_score": _pearson(s, _to_grid(edge, side)),
        "texture_score": _pearson(s, _to_grid(texture, side)),
    }
    semantic = torch.full((batch, heads), float("nan"), dtype=torch.float64)
    best_part = np.full((batch, heads), None, dtype=object)
    if part_masks is not None:
        for part, label in part_labels.items():
            if part == "background":
                continue
            corr = _pearson(s, _to_grid(np.asarray(part_masks) == label, side))
            better = torch.nan_to_num(corr, nan=-2.0) > torch.nan_to_num(semantic, nan=-2.0)
            semantic = torch.where(better, corr, semantic)
            best_part[better.numpy()] = part
    scores["semantic_score"] = semantic
    frame = pd.DataFrame(
        {
            "image_id": np.repeat(np.arange(batch), heads),
            "head": np.tile(np.arange(heads), batch),
            **{name: value.flatten().numpy() for name, value in scores.items()},
            "semantic_part": best_part.flatten(),
        }
    )
    return frame


def assign_roles(
    scores: pd.DataFrame, specialisation: pd.DataFrame, global_threshold: float
) -> pd.DataFrame:
    """One role per (hook, head) from mean scores and mean specialisation.

    ``scores`` needs ``hook, head, edge_score, texture_score, semantic_score,
    semantic_part``; ``specialisation`` needs ``hook, head, specialisation``.
    Returns ``hook, head, specialisation, edge_score, texture_score, semantic_score,
    semantic_part, role``.
    """
    columns = ["edge_score", "texture_score", "semantic_score"]
    means = scores.groupby(["hook", "head"], as_index=False)[columns].mean()
    parts = (
        scores.dropna(subset=["semantic_part"])
        .groupby(["hook", "head"])["semantic_part"]
        .agg(lambda s: s.value_counts().index[0])
        .rename("semantic_part")
        .reset_index()
    )
    table = specialisation.merge(means, on=["hook", "head"]).merge(
        parts, on=["hook", "head"], how="left"
    )
    best = table[columns].fillna(-np.inf).to_numpy().argmax(axis=1)
    kinds = np.array(["edge", "texture", "semantic"])
    table["role"] = np.where(table["specialisation"] < global_threshold, "global", kinds[best])
    return table[["hook", "head", "specialisation", *columns, "semantic_part", "role"]]
