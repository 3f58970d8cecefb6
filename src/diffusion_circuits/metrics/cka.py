"""Linear centred kernel alignment (Kornblith et al. 2019): representation similarity.

For activations X [n, d1] and Y [n, d2] of the same n images, column-centred,
``CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``, equivalently
``<K, L>_F / (||K||_F ||L||_F)`` with the n x n Gram matrices ``K = X X^T``,
``L = Y Y^T``. It lies in [0, 1] and is invariant to orthogonal transforms and
isotropic scaling of either representation (and to shifts, through the centring).

Bootstrap over images: CKA is not a mean of per-image values, so its interval comes
from recomputing it on resampled images. With ``K = X X^T`` (uncentred) a resample of
rows ``idx`` has Gram ``K[idx][:, idx]``, centred afterwards, so each resample costs
O(n^2) once the Gram matrices are known (:func:`gram`, :func:`resampled_cka`).
"""

from __future__ import annotations

import pandas as pd
import torch

__all__ = [
    "linear_cka",
    "cka_by_layer",
    "gram",
    "cka_from_grams",
    "bootstrap_indices",
    "resampled_cka",
]


def _centred_unit(x: torch.Tensor, name: str) -> torch.Tensor | None:
    x = x.double().flatten(1)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    scale = x.abs().max()
    x = x - x.mean(dim=0)
    peak = x.abs().max()
    # Relative test: the mean of equal values can differ from them by an ulp.
    if peak <= 1e-12 * scale or peak == 0:
        return None
    # CKA is scale-invariant; unit Frobenius norm keeps the 4th-power sums in range
    # (dividing by the peak first keeps the norm itself from overflowing).
    x = x / peak
    return x / torch.linalg.matrix_norm(x)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA between two representations of the same inputs.

    Parameters
    ----------
    x : torch.Tensor
        [n, d1] (or [n, ...], flattened): one row per image.
    y : torch.Tensor
        [n, d2] (or [n, ...]): the same n images, same order.

    Returns
    -------
    float
        In [0, 1]; metric name ``cka``. NaN if either representation is constant over
        the n images (nothing to compare).

    Notes
    -----
    Uses the feature form ``||Y^T X||^2 / (||X^T X|| ||Y^T Y||)`` when n exceeds both
    widths and the n x n Gram form otherwise, both in float64; the two are equal.

    Examples
    --------
    >>> x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    >>> round(linear_cka(x, 3 * x + 1), 6)
    1.0
    """
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"x and y must be [n, features], got {x.ndim} and {y.ndim} dim(s)")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x has {x.shape[0]} rows but y has {y.shape[0]}; rows must be the same images"
        )
    if x.shape[0] < 2:
        raise ValueError(f"CKA needs at least 2 images (rows), got {x.shape[0]}")
    xc, yc = _centred_unit(x, "x"), _centred_unit(y, "y")
    if xc is None or yc is None:
        return float("nan")
    n = xc.shape[0]
    if n > max(xc.shape[1], yc.shape[1]):
        numerator = torch.linalg.matrix_norm(yc.T @ xc).pow(2)
        denominator = torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)
    else:
        gram_x, gram_y = xc @ xc.T, yc @ yc.T
        numerator = (gram_x * gram_y).sum()
        denominator = torch.linalg.matrix_norm(gram_x) * torch.linalg.matrix_norm(gram_y)
    # Cauchy-Schwarz bounds it to [0, 1]; the clamp only absorbs rounding.
    return float((numerator / denominator).clamp(0.0, 1.0))


def cka_by_layer(acts_a: dict[str, torch.Tensor], acts_b: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Linear CKA per hook point between two models' activations on the same images.

    Parameters
    ----------
    acts_a, acts_b : dict[str, torch.Tensor]
        Hook name -> activations [n, ...] of model A and model B; both need the same
        hook names, and row i of every tensor is image i.

    Returns
    -------
    pandas.DataFrame
        One row per hook, in ``acts_a``'s order; columns ``hook``, ``metric``
        (always ``"cka"``), ``value``.

    Examples
    --------
    >>> x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    >>> cka_by_layer({"mid.attn.0": x}, {"mid.attn.0": -x}).round(6).to_dict("records")
    [{'hook': 'mid.attn.0', 'metric': 'cka', 'value': 1.0}]
    """
    if set(acts_a) != set(acts_b):
        only_a, only_b = sorted(set(acts_a) - set(acts_b)), sorted(set(acts_b) - set(acts_a))
        raise ValueError(
            f"acts_a and acts_b need the same hooks; only in a: {only_a}, only in b: {only_b}"
        )
    rows = [(hook, "cka", linear_cka(acts_a[hook], acts_b[hook])) for hook in acts_a]
    return pd.DataFrame(rows, columns=["hook", "metric", "value"])


def gram(x: torch.Tensor) -> torch.Tensor:
    """Linear-kernel Gram matrix [n, n] of the rows of ``x`` [n, ...] (float64, scaled).

    Rows are shifted by the column means and scaled to unit Frobenius norm first; CKA
    is invariant to both, and the centring keeps the Gram well conditioned. A resample
    of rows is ``gram[idx][:, idx]``, still to be centred (:func:`cka_from_grams` does).

    Examples
    --------
    >>> gram(torch.tensor([[1.0, 0.0], [0.0, 1.0]])).tolist()
    [[0.5, -0.5], [-0.5, 0.5]]
    """
    x = x.double().flatten(1)
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    x = x - x.mean(dim=0)
    norm = torch.linalg.matrix_norm(x)
    x = x / norm if norm > 0 else x
    return x @ x.T


def _centre(k: torch.Tensor) -> torch.Tensor:
    return (
        k
        - k.mean(dim=-1, keepdim=True)
        - k.mean(dim=-2, keepdim=True)
        + k.mean(dim=(-2, -1), keepdim=True)
    )


def cka_from_grams(k: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Linear CKA from (batches of) uncentred Gram matrices [..., n, n].

    Returns
    -------
    torch.Tensor
        float64 [...], in [0, 1]; NaN where one side is constant (a zero centred Gram).

    Examples
    --------
    >>> x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    >>> round(cka_from_grams(gram(x), gram(2 * x + 1)).item(), 6), round(linear_cka(x, x ** 2), 6) == round(cka_from_grams(gram(x), gram(x ** 2)).item(), 6)
    (1.0, True)
    """
    kc, lc = _centre(k.double()), _centre(m.double())
    numerator = (kc * lc).sum(dim=(-2, -1))
    denominator = torch.linalg.matrix_norm(kc) * torch.linalg.matrix_norm(lc)
    scale = torch.maximum(k.abs().amax(dim=(-2, -1)), m.abs().amax(dim=(-2, -1)))
    defined = denominator > 1e-20 * scale.clamp_min(1e-300) ** 2
    return torch.where(
        defined, (numerator / denominator.clamp_min(1e-300)).clamp(0.0, 1.0), torch.nan
    )


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> torch.Tensor:
    """int64 [n_resamples, n]: image indices drawn with replacement (seeded).

    Examples
    --------
    >>> bootstrap_indices(4, 2, seed=0).shape
    torch.Size([2, 4])
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(n, (n_resamples, n), generator=generator)


def resampled_cka(
    k: torch.Tensor, m: torch.Tensor, indices: torch.Tensor, chunk: int = 64
) -> torch.Tensor:
    """CKA recomputed on each row resample: float64 [n_resamples].

    Parameters
    ----------
    k, m : torch.Tensor
        Uncentred Gram matrices [n, n] of the two representations (:func:`gram`).
    indices : torch.Tensor
        [n_resamples, n] row indices (:func:`bootstrap_indices`).
    chunk : int
        Resamples evaluated at once (memory only).

    Examples
    --------
    >>> x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    >>> resampled_cka(gram(x), gram(-x), bootstrap_indices(10, 3, 0)).round(decimals=6).tolist()
    [1.0, 1.0, 1.0]
    """
    out = []
    for start in range(0, len(indices), chunk):
        idx = indices[start : start + chunk]
        rows = idx[:, :, None]
        cols = idx[:, None, :]
        out.append(cka_from_grams(k[rows, cols], m[rows, cols]))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)
