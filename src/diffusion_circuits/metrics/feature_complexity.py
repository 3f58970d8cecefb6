"""Feature complexity (paper 3.2.2, eq. 3): ``C = std(F) * range(F) * Hoyer(F)``.

``F`` is one image's layer output, all channels and positions flattened into ``n``
values. The paper leaves "sparsity" open; we use Hoyer's (2004) measure
``(sqrt(n) - ||x||_1 / ||x||_2) / (sqrt(n) - 1)``, which is scale-invariant and bounded:
0 when every element has the same magnitude, 1 for a single non-zero element.
"""

from __future__ import annotations

import math

import torch

__all__ = ["hoyer_sparsity", "feature_complexity"]


def _flat(features: torch.Tensor) -> torch.Tensor:
    if features.ndim < 2:
        raise ValueError(
            f"features must be [B, ...] with an image axis, got {features.ndim} dim(s)"
        )
    x = features.double().flatten(1)
    if x.shape[1] < 2:
        raise ValueError(f"each image needs at least 2 feature values, got {x.shape[1]}")
    if not torch.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    return x


def hoyer_sparsity(features: torch.Tensor) -> torch.Tensor:
    """Hoyer sparsity of each image's flattened features.

    Parameters
    ----------
    features : torch.Tensor
        [B, ...]; everything after the first axis is flattened into ``n >= 2`` values.

    Returns
    -------
    torch.Tensor
        float64 [B] in [0, 1]; metric name ``hoyer_sparsity``. An all-zero map gets 0
        (it has no non-zero element to concentrate on).

    Examples
    --------
    >>> hoyer_sparsity(torch.tensor([[0.0, 0.0, 0.0, 4.0], [1.0, -1.0, 1.0, -1.0]])).tolist()
    [1.0, 0.0]
    """
    x = _flat(features)
    root_n = math.sqrt(x.shape[1])
    l1 = x.abs().sum(dim=1)
    l2 = torch.linalg.vector_norm(x, dim=1)
    # An all-zero map is given ratio sqrt(n), i.e. sparsity 0.
    ratio = torch.where(l2 > 0, l1 / l2.clamp_min(torch.finfo(torch.float64).tiny), root_n)
    return ((root_n - ratio) / (root_n - 1)).clamp(0.0, 1.0)


def feature_complexity(features: torch.Tensor) -> torch.Tensor:
    """``C = std(F) * (max(F) - min(F)) * Hoyer(F)`` per image.

    Parameters
    ----------
    features : torch.Tensor
        One layer's output [B, C, H, W] (or any [B, ...]); flattened per image.

    Returns
    -------
    torch.Tensor
        float64 [B], >= 0, in activation units squared; metric name
        ``feature_complexity``.

    Notes
    -----
    ``std`` is the population standard deviation (ddof = 0) over the image's ``n``
    values; ``range`` is max minus min over the same values.

    Examples
    --------
    >>> round(feature_complexity(torch.tensor([[0.0, 0.0, 0.0, 4.0]])).item(), 6)  # sqrt(3)*4*1
    6.928203
    """
    x = _flat(features)
    spread = x.std(dim=1, unbiased=False)
    value_range = x.amax(dim=1) - x.amin(dim=1)
    return spread * value_range * hoyer_sparsity(x)
