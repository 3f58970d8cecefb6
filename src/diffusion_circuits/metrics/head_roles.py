"""Head roles from data (paper 4.3, Table 2): edge, texture, semantic or global.

A head's key saliency (attention received per key position, mean over queries) is a
map on the attention grid. For each image it is correlated across positions (Pearson)
with maps of the clean image x0, each area-averaged down to the attention grid:

- edge: Sobel gradient magnitude (``skimage.filters.sobel``);
- texture: local variance in a 3x3 window;
- semantic: the indicator of each part mask (every label but ``background``); the
  best part gives the semantic score.

This module gives the per-image scores; the labels, each tested against a permutation
null, come from :mod:`diffusion_circuits.metrics.role_significance`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.filters import sobel

__all__ = ["edge_map", "texture_map", "attention_grid", "pool_to_grid", "role_scores"]

PART_PREFIX = "part_"
BACKGROUND = "background"


def _greyscale_stack(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"images must be greyscale [B, H, W], got shape {x.shape}")
    return x


def edge_map(images: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of each greyscale image.

    Parameters
    ----------
    images : numpy.ndarray
        Greyscale float images [B, H, W].

    Returns
    -------
    numpy.ndarray
        float64 [B, H, W], ``skimage.filters.sobel`` of each image.

    Examples
    --------
    >>> step = np.zeros((1, 4, 4)); step[:, :, 2:] = 1.0
    >>> bool(edge_map(step)[0, :, 1:3].min() > 0), float(edge_map(step)[0, :, 0].max())
    (True, 0.0)
    """
    x = _greyscale_stack(images)
    # One image at a time: on a stack, skimage would also smooth across the batch axis.
    return np.stack([sobel(image) for image in x]) if len(x) else x.copy()


def texture_map(images: np.ndarray) -> np.ndarray:
    """Local variance in a 3x3 window (edges mirrored) of each greyscale image.

    Parameters
    ----------
    images : numpy.ndarray
        Greyscale float images [B, H, W].

    Returns
    -------
    numpy.ndarray
        float64 [B, H, W]: ``mean(x^2) - mean(x)^2`` over each pixel's 3x3 window,
        the population variance; borders use ``scipy.ndimage``'s "reflect" mode.

    Examples
    --------
    >>> texture_map(np.ones((1, 3, 3))).max()
    np.float64(0.0)
    """
    x = _greyscale_stack(images)
    window = (1, 3, 3)  # never mixes images
    mean = ndimage.uniform_filter(x, size=window, mode="reflect")
    mean_sq = ndimage.uniform_filter(x * x, size=window, mode="reflect")
    return np.maximum(mean_sq - mean**2, 0.0)


def attention_grid(n_keys: int, image_shape: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) attention grid with ``h * w == n_keys`` and the image's aspect ratio.

    Examples
    --------
    >>> attention_grid(64, (32, 32)), attention_grid(32, (16, 32))
    ((8, 8), (4, 8))
    """
    height, width = image_shape
    h = round(math.sqrt(n_keys * height / width))
    w = n_keys // h if h else 0
    if h * w != n_keys or h * width != w * height:
        raise ValueError(
            f"{n_keys} keys is no grid with the aspect ratio of {height}x{width} images; pass grid="
        )
    return h, w


def pool_to_grid(maps: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """Area-average image maps [B, H, W] down to the attention grid: float64 [B, h*w].

    Examples
    --------
    >>> pool_to_grid(np.arange(16.0).reshape(1, 4, 4), (2, 2)).tolist()
    [[2.5, 4.5, 10.5, 12.5]]
    """
    tensor = torch.as_tensor(np.asarray(maps, dtype=np.float64))[:, None]
    if tensor.shape[-2] < grid[0] or tensor.shape[-1] < grid[1]:
        raise ValueError(
            f"maps of {tuple(tensor.shape[-2:])} are smaller than the attention grid {grid}"
        )
    return F.interpolate(tensor, size=grid, mode="area")[:, 0].flatten(1)  # [B, h*w]


def _pearson(saliency: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Correlation across positions of [B, heads, P] with [B, P] -> [B, heads]; NaN if constant."""
    s = saliency - saliency.mean(dim=-1, keepdim=True)
    m = (maps - maps.mean(dim=-1, keepdim=True))[:, None, :]
    denominator = torch.linalg.vector_norm(s, dim=-1) * torch.linalg.vector_norm(m, dim=-1)
    values = (s * m).sum(dim=-1) / denominator.clamp_min(torch.finfo(torch.float64).tiny)
    # Relative cutoff: a map constant up to rounding has no direction to correlate with.
    scale = saliency.abs().amax(dim=-1) * maps.abs().amax(dim=-1)[:, None] * s.shape[-1]
    return torch.where(denominator > 1e-12 * scale, values.clamp(-1.0, 1.0), torch.nan)


def role_scores(
    saliency: torch.Tensor,
    edge_map: np.ndarray,
    texture_map: np.ndarray,
    part_masks: np.ndarray | None,
    part_labels: dict[str, int],
    grid: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Per image and head, the correlation of key saliency with edge, texture and parts.

    Parameters
    ----------
    saliency : torch.Tensor
        [B, heads, keys] from :func:`~diffusion_circuits.metrics.key_saliency`; keys are
        the attention grid's positions in row-major order (diffusers' flattening).
    edge_map, texture_map : numpy.ndarray
        [B, H, W] maps of the same images (:func:`edge_map`, :func:`texture_map`).
    part_masks : numpy.ndarray or None
        Integer part label per pixel [B, H, W], or None when the source has none (the
        semantic scores are then NaN).
    part_labels : dict[str, int]
        Part name -> label; ``background`` is skipped.
    grid : (int, int), optional
        Attention grid (h, w); default: inferred from the number of keys and the image
        aspect ratio (:func:`attention_grid`).

    Returns
    -------
    pandas.DataFrame
        One row per (image, head): ``image_id`` (row index in the batch), ``head``,
        ``edge_score``, ``texture_score``, ``semantic_score`` (best part of this image),
        ``semantic_part`` (its name; None if no part scored), then one ``part_<name>``
        column per part. Scores are Pearson r in [-1, 1]; NaN when either map is
        constant on the grid (e.g. a part absent from the image).

    Notes
    -----
    The image maps are area-averaged down to the attention grid rather than the
    saliency upsampled: upsampling would invent detail the head never saw and inflate
    the number of positions without adding independent samples. An averaged part mask
    is the fraction of each cell covered by the part.

    Examples
    --------
    >>> edges = np.arange(16.0).reshape(1, 4, 4)
    >>> sal = torch.tensor([[[0.0, 1.0, 4.0, 5.0], [2.5, 2.5, 2.5, 2.5]]]) / 10  # 2 heads, 2x2 grid
    >>> role_scores(sal, edges, edges**2, None, {})[["head", "edge_score"]].to_dict("list")
    {'head': [0, 1], 'edge_score': [1.0, nan]}
    """
    if saliency.ndim != 3:
        raise ValueError(f"saliency must be [B, heads, keys], got shape {tuple(saliency.shape)}")
    batch, heads, keys = saliency.shape
    maps = {"edge_map": np.asarray(edge_map), "texture_map": np.asarray(texture_map)}
    if part_masks is not None:
        maps["part_masks"] = np.asarray(part_masks)
    for name, value in maps.items():
        if value.ndim != 3 or value.shape[0] != batch:
            raise ValueError(f"{name} must be [B={batch}, H, W], got shape {value.shape}")
    image_shape = maps["edge_map"].shape[1:]
    if any(value.shape[1:] != image_shape for value in maps.values()):
        raise ValueError(
            f"edge_map, texture_map and part_masks must share H, W; got {[v.shape for v in maps.values()]}"
        )
    grid = attention_grid(keys, image_shape) if grid is None else tuple(grid)
    if grid[0] * grid[1] != keys:
        raise ValueError(
            f"grid {grid} has {grid[0] * grid[1]} positions but saliency has {keys} keys"
        )

    s = saliency.double()
    columns = {
        "edge_score": _pearson(s, pool_to_grid(maps["edge_map"], grid)),
        "texture_score": _pearson(s, pool_to_grid(maps["texture_map"], grid)),
    }
    parts = [name for name in part_labels if name != BACKGROUND] if part_masks is not None else []
    if parts:
        per_part = torch.stack(
            [_pearson(s, pool_to_grid(maps["part_masks"] == part_labels[p], grid)) for p in parts],
            dim=-1,
        )  # [B, heads, parts]
        filled = torch.nan_to_num(per_part, nan=-torch.inf)
        best = filled.argmax(dim=-1)
        has_any = ~torch.isnan(per_part).all(dim=-1)
        columns["semantic_score"] = torch.where(
            has_any, filled.gather(-1, best[..., None])[..., 0], torch.nan
        )
        names = np.array(parts, dtype=object)[best.numpy()]
        semantic_part = np.where(has_any.numpy(), names, None)
    else:
        columns["semantic_score"] = torch.full((batch, heads), torch.nan, dtype=torch.float64)
        semantic_part = np.full((batch, heads), None, dtype=object)
    frame = pd.DataFrame(
        {
            "image_id": np.repeat(np.arange(batch), heads),
            "head": np.tile(np.arange(heads), batch),
            **{name: value.flatten().numpy() for name, value in columns.items()},
            "semantic_part": pd.Series(semantic_part.flatten(), dtype=object),
        }
    )
    for index, part in enumerate(parts):
        frame[f"{PART_PREFIX}{part}"] = per_part[..., index].flatten().numpy()
    return frame
