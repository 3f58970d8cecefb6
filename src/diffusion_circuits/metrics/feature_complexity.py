"""Feature complexity (paper 3.2.2, eq. 3): ``C = std(F) * range(F) * Hoyer(F)``.

``F`` is one image's layer output, all channels and positions flattened. Hoyer's
sparsity (Hoyer 2004) is ``(sqrt(n) - ||x||_1 / ||x||_2) / (sqrt(n) - 1)``: 0 when
every element has the same magnitude, 1 for a single non-zero element.
"""

from __future__ import annotations

import math

import torch

__all__ = ["hoyer_sparsity", "feature_complexity"]


def hoyer_sparsity(features: torch.Tensor) -> torch.Tensor:
    """Hoyer sparsity per image (first axis); 0 for an all-zero map.

    Examples
    --------
    >>> hoyer_sparsity(torch.tensor([[0.0, 0.0, 0.0, 4.0], [1.0, -1.0, 1.0, -1.0]])).tolist()
    [1.0, 0.0]
    """
    x = features.double().flatten(1)
    n = x.shape[1]
    l1 = x.abs().sum(dim=1)
    l2 = x.pow(2).sum(dim=1).sqrt()
    ratio = torch.where(l2 > 0, l1 / l2.clamp_min(1e-300), torch.full_like(l1, math.sqrt(n)))
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


def feature_complexity(features: torch.Tensor) -> torch.Tensor:
    """``std * (max - min) * Hoyer`` per image (population std)."""
    x = features.double().flatten(1)
    spread = x.std(dim=1, unbiased=False)
    value_range = x.max(dim=1).values - x.min(dim=1).values
    return spread * value_range * hoyer_sparsity(x)
