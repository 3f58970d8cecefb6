"""Plug-in information estimates on binned samples: the estimator half of IFE.

Each row of a ``[B, P]`` tensor holds the P paired samples of one image. Values are cut
into equal-frequency bins (:func:`equal_frequency_bins`, at most about sqrt(P) bins:
:func:`effective_bins`), entropies and mutual information are plug-in estimates in bits
from the joint histogram, and :func:`expected_mutual_information` is the exact
expectation of the plug-in MI under the permutation null, which the chance-adjusted IFE
(:mod:`diffusion_circuits.metrics.information_flow`) subtracts.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import hypergeom

__all__ = [
    "check_bins",
    "equal_frequency_bins",
    "effective_bins",
    "plugin_information",
    "plugin_entropy",
    "plugin_mutual_information",
    "expected_mutual_information",
]


def check_bins(bins: int) -> None:
    """ValueError unless ``bins`` is an integer >= 2."""
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")


def equal_frequency_bins(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Equal-frequency bin index of every element of each row of ``x`` [B, P].

    Parameters
    ----------
    x : torch.Tensor
        Real values [B, P]; each row is binned on its own.
    bins : int
        Number of bins (>= 2).

    Returns
    -------
    torch.Tensor
        int64 [B, P] in [0, bins): ``floor(rank * bins / P)`` with ``rank`` the number of
        elements of the row strictly smaller than the value.

    Notes
    -----
    Distinct values give bins whose sizes differ by at most one. Ties share the bin of
    their lowest rank, so the result does not depend on the order of positions and a
    constant row falls into one bin (zero entropy) instead of carrying information
    invented by its layout.

    Examples
    --------
    >>> equal_frequency_bins(torch.tensor([[0.3, 0.1, 0.2, 0.4]]), 2).tolist()
    [[1, 0, 0, 1]]
    >>> equal_frequency_bins(torch.tensor([[7.0, 7.0, 7.0, 9.0]]), 4).tolist()
    [[0, 0, 0, 3]]
    """
    check_bins(bins)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"x must be [B, P] with P >= 1, got shape {tuple(x.shape)}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    x = x.contiguous()
    ordered = torch.sort(x, dim=1).values
    rank = torch.searchsorted(ordered, x, right=False)  # elements strictly below
    return torch.div(rank * bins, x.shape[1], rounding_mode="floor")


def _check_bin_indices(indices: torch.Tensor, bins: int, name: str) -> None:
    if indices.ndim != 2 or indices.is_floating_point():
        raise ValueError(
            f"{name} must be an integer tensor [B, P], got {indices.dtype} {tuple(indices.shape)}"
        )
    if indices.numel() and (indices.min() < 0 or indices.max() >= bins):
        raise ValueError(
            f"{name} must hold bin indices in [0, {bins}); got [{indices.min()}, {indices.max()}]"
        )


def _entropy_bits(p: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    # 0.0 - x rather than -x: a zero entropy prints as 0.0, not -0.0.
    return (0.0 - torch.special.xlogy(p, p).sum(dim=dims)) / math.log(2.0)


def _joint_distribution(x_bins: torch.Tensor, y_bins: torch.Tensor, bins: int) -> torch.Tensor:
    check_bins(bins)
    _check_bin_indices(x_bins, bins, "x_bins")
    _check_bin_indices(y_bins, bins, "y_bins")
    if x_bins.shape != y_bins.shape:
        raise ValueError(f"x_bins {tuple(x_bins.shape)} and y_bins {tuple(y_bins.shape)} differ")
    batch, n = x_bins.shape
    counts = torch.zeros(batch, bins * bins, dtype=torch.float64)
    counts.scatter_add_(
        1, x_bins.long() * bins + y_bins.long(), torch.ones(batch, n, dtype=torch.float64)
    )
    return (counts / n).view(batch, bins, bins)


def plugin_information(
    x_bins: torch.Tensor, y_bins: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(MI, H(X), H(Y))`` in bits, each float64 [B], from one joint histogram."""
    joint = _joint_distribution(x_bins, y_bins, bins)
    h_x = _entropy_bits(joint.sum(dim=2), (1,))
    h_y = _entropy_bits(joint.sum(dim=1), (1,))
    h_xy = _entropy_bits(joint, (1, 2))
    # H(X) + H(Y) - H(X,Y) can round to a hair below 0 for independent variables.
    return (h_x + h_y - h_xy).clamp_min(0.0), h_x, h_y


def plugin_entropy(x_bins: torch.Tensor, bins: int) -> torch.Tensor:
    """Plug-in entropy in bits of each row of bin indices [B, P].

    Examples
    --------
    >>> plugin_entropy(torch.tensor([[0, 1, 2, 3], [1, 1, 1, 1]]), 4).tolist()
    [2.0, 0.0]
    """
    return plugin_information(x_bins, x_bins, bins)[1]


def plugin_mutual_information(
    x_bins: torch.Tensor, y_bins: torch.Tensor, bins: int
) -> torch.Tensor:
    """Plug-in mutual information in bits between two rows of bin indices.

    Parameters
    ----------
    x_bins, y_bins : torch.Tensor
        Integer bin indices [B, P] in [0, bins); row b of each holds the P paired samples
        of image b.
    bins : int
        Number of bins of each variable.

    Returns
    -------
    torch.Tensor
        float64 [B]: ``H(X) + H(Y) - H(X, Y)`` of the empirical joint histogram, >= 0.

    Examples
    --------
    >>> a = torch.tensor([[0, 0, 1, 1]])
    >>> plugin_mutual_information(a, a, 2).item(), plugin_mutual_information(a, torch.tensor([[0, 1, 0, 1]]), 2).item()
    (1.0, 0.0)
    """
    return plugin_information(x_bins, y_bins, bins)[0]


def effective_bins(n_positions: int, bins: int) -> int:
    """Bins used on a grid of ``n_positions``: ``min(bins, floor(sqrt(n_positions)))``, >= 2.

    At most about sqrt(P) bins keeps the joint histogram (bins^2 cells) no larger than the
    number of samples P, which bounds the plug-in bias and the variance of the chance
    correction.

    Examples
    --------
    >>> [effective_bins(p, 16) for p in (16, 64, 256, 1024)]
    [4, 8, 16, 16]
    """
    check_bins(bins)
    if n_positions < 1:
        raise ValueError(f"need at least 1 position to bin, got {n_positions}")
    return max(2, min(int(bins), math.isqrt(int(n_positions))))


@lru_cache(maxsize=1024)
def _expected_mi_from_counts(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    n = sum(a)
    a_ = np.array([c for c in a if c > 0], dtype=np.int64)[:, None, None]
    b_ = np.array([c for c in b if c > 0], dtype=np.int64)[None, :, None]
    nij = np.arange(1, int(min(a_.max(), b_.max())) + 1, dtype=np.int64)[None, None, :]
    pmf = hypergeom.pmf(nij, n, a_, b_)  # zero outside the support
    with np.errstate(divide="ignore", invalid="ignore"):
        term = (nij / n) * np.log2(n * nij / (a_ * b_))
    return float(np.where(pmf > 0, pmf * term, 0.0).sum())


def expected_mutual_information(
    x_bins: torch.Tensor, y_bins: torch.Tensor, bins: int
) -> torch.Tensor:
    """Expected plug-in MI (bits) of each row pair under the permutation null.

    Parameters
    ----------
    x_bins, y_bins : torch.Tensor
        Integer bin indices [B, P] in [0, bins).
    bins : int
        Number of bins of each variable.

    Returns
    -------
    torch.Tensor
        float64 [B]: ``E[MI]`` over all pairings of the P values of ``y`` with those of
        ``x``, keeping both marginal histograms; each joint cell count is hypergeometric.
        It depends only on the two marginal histograms, so it is cached per histogram
        pair (equal-frequency bins make them the same for almost every image).

    Notes
    -----
    ``E[MI] = sum_ij sum_n P(n_ij = n) (n / P) log2(P n / (a_i b_j))`` with
    ``n ~ Hypergeometric(P, a_i, b_j)`` (Vinh, Epps & Bailey 2010, eq. 24a).

    Examples
    --------
    >>> x = torch.tensor([[0, 0, 1, 1]])
    >>> round(expected_mutual_information(x, x, 2).item(), 6)  # 1/3 of pairings give 1 bit, the rest 0
    0.333333
    """
    check_bins(bins)
    _check_bin_indices(x_bins, bins, "x_bins")
    _check_bin_indices(y_bins, bins, "y_bins")
    if x_bins.shape != y_bins.shape:
        raise ValueError(f"x_bins {tuple(x_bins.shape)} and y_bins {tuple(y_bins.shape)} differ")
    a_counts = F.one_hot(x_bins.long(), bins).sum(dim=1).tolist()
    b_counts = F.one_hot(y_bins.long(), bins).sum(dim=1).tolist()
    return torch.tensor(
        [
            _expected_mi_from_counts(tuple(a), tuple(b))
            for a, b in zip(a_counts, b_counts, strict=True)
        ],
        dtype=torch.float64,
    )
