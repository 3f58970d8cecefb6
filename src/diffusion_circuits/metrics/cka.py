"""Linear centred kernel alignment (Kornblith et al. 2019): representation similarity."""

from __future__ import annotations

import pandas as pd
import torch

__all__ = ["linear_cka", "cka_by_layer"]


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between ``x`` [n, d1] and ``y`` [n, d2] (rows are the same inputs).

    Computed in the n x n Gram form, which is cheap when features outnumber inputs:
    ``CKA = <Kc, Lc>_F / (||Kc||_F ||Lc||_F)`` with ``K = X X^T`` and centring ``H K H``.
    It equals 1 for a representation and any orthogonal transform or isotropic scaling of it.

    Examples
    --------
    >>> x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    >>> round(linear_cka(x, 3 * x + 1), 6)
    1.0
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
    x = x.double().flatten(1)
    y = y.double().flatten(1)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    gram_x, gram_y = x @ x.T, y @ y.T
    numerator = (gram_x * gram_y).sum()
    denominator = gram_x.norm() * gram_y.norm()
    return float(numerator / denominator) if denominator > 0 else float("nan")


def cka_by_layer(acts_a: dict[str, torch.Tensor], acts_b: dict[str, torch.Tensor]) -> pd.DataFrame:
    """CKA per hook point present in both: columns ``hook, metric, value``."""
    rows = [
        (hook, "cka", linear_cka(acts_a[hook], acts_b[hook])) for hook in acts_a if hook in acts_b
    ]
    return pd.DataFrame(rows, columns=["hook", "metric", "value"])
