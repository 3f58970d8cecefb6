"""Information-flow efficiency between consecutive layers (paper 3.2.3, eq. 4).

``IFE(l -> l+1) = MI(X; Y) / max(H(X), H(Y))`` per image, in [0, 1], where X and Y are
one-dimensional summaries of the two feature maps on a common spatial grid:

1. both maps [B, C, H, W] are resampled to the grid (area averaging when shrinking,
   bilinear when growing); the default grid is the smaller map's (H, W);
2. each is reduced to its first principal component over positions: per image the
   positions are samples and the channels features; centre, take the top right-singular
   vector, project, giving one value per position;
3. each summary is cut into equal-frequency bins by rank, at most ``bins`` and at most
   ``floor(sqrt(P))`` for P grid positions (:func:`effective_bins`);
4. MI and both entropies are plug-in estimates (bits) from the joint histogram;
5. chance correction: the plug-in MI of two independent maps is biased upwards (about
   ``(bins - 1)^2 / (2 P ln 2)`` bits, 0.5 of IFE on an 8x8 grid with 16 bins), so the
   reported IFE is adjusted for chance (Vinh, Epps & Bailey 2010, "adjusted mutual
   information" with the max normaliser)::

       IFE = (MI - E[MI]) / (max(H(X), H(Y)) - E[MI])

   where ``E[MI]`` is the exact expected plug-in MI under the permutation null (the
   positions of one map shuffled, both marginal histograms kept), a hypergeometric sum
   (:func:`expected_mutual_information`). Independent maps give 0 in expectation on every
   grid, a map with itself 1. The uncorrected ``MI / max(H)`` is kept as the raw value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import hypergeom

__all__ = [
    "InformationFlow",
    "effective_bins",
    "expected_mutual_information",
    "information_flow",
    "equal_frequency_bins",
    "plugin_entropy",
    "plugin_mutual_information",
    "first_principal_component",
    "information_flow_efficiency",
]


def _check_bins(bins: int) -> None:
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
    _check_bins(bins)
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
    _check_bins(bins)
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


def _plugin_terms(
    x_bins: torch.Tensor, y_bins: torch.Tensor, bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    return _plugin_terms(x_bins, x_bins, bins)[1]


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
    return _plugin_terms(x_bins, y_bins, bins)[0]


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
    _check_bins(bins)
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
    _check_bins(bins)
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


def first_principal_component(features: torch.Tensor) -> torch.Tensor:
    """Scores of each spatial position on its image's first principal axis.

    Parameters
    ----------
    features : torch.Tensor
        [B, C, H, W]; per image the H*W positions are samples, the C channels features.

    Returns
    -------
    torch.Tensor
        float64 [B, H*W], positions in row-major order.

    Notes
    -----
    The axis is the top right-singular vector of the centred [H*W, C] matrix. Its sign
    is fixed so that its largest-magnitude loading is positive (as scikit-learn's
    ``svd_flip``); MI does not depend on the sign, this only makes the output
    reproducible. A constant map (up to rounding) gives all-zero scores.

    Examples
    --------
    >>> f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[2.0, 4.0], [6.0, 8.0]]]])  # ch1 = 2 * ch0
    >>> [round(v, 4) for v in first_principal_component(f)[0].tolist()]
    [-3.3541, -1.118, 1.118, 3.3541]
    """
    if features.ndim != 4:
        raise ValueError(f"features must be [B, C, H, W], got shape {tuple(features.shape)}")
    x = features.double().flatten(2).transpose(1, 2)  # [B, P, C]
    scale = x.abs().amax(dim=(1, 2))
    x = x - x.mean(dim=1, keepdim=True)
    # A constant map centres to rounding noise (the mean of equal values can be an ulp
    # off); left in, its sign pattern would be binned as if it were information.
    constant = x.abs().amax(dim=(1, 2)) <= 1e-12 * scale
    x = torch.where(constant[:, None, None], 0.0, x)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    axis = vh[:, 0, :]  # [B, C]
    sign = torch.gather(axis, 1, axis.abs().argmax(dim=1, keepdim=True)).sign()
    axis = axis * torch.where(sign == 0, 1.0, sign)
    return (x @ axis.unsqueeze(-1)).squeeze(-1)


def _as_grid(
    grid: int | tuple[int, int] | None, f_a: torch.Tensor, f_b: torch.Tensor
) -> tuple[int, int]:
    if grid is None:
        smaller = min((f_a, f_b), key=lambda f: f.shape[-2] * f.shape[-1])
        return int(smaller.shape[-2]), int(smaller.shape[-1])
    size = (grid, grid) if isinstance(grid, int) else tuple(grid)
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"grid must be a positive int or (height, width), got {grid!r}")
    return int(size[0]), int(size[1])


def _resample(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    x = features.double()
    if tuple(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.interpolate(x, size=size, mode="area")
    # Growing along at least one axis: bilinear, antialiased along any axis that shrinks.
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@dataclass(frozen=True)
class InformationFlow:
    """Per-image IFE terms of one layer pair (all float64 [B]).

    ``adjusted``: ``(MI - E[MI]) / (max H - E[MI])``, about 0 for independent maps, 1 for
    a map with itself (metric ``information_flow_efficiency``); ``raw``: the plug-in
    ``MI / max H`` in [0, 1]; ``null``: ``E[MI] / max H``, the raw value expected under
    independence at this grid and bin count; ``bins``: bins used (:func:`effective_bins`).
    """

    adjusted: torch.Tensor
    raw: torch.Tensor
    null: torch.Tensor
    bins: int


def information_flow(
    f_a: torch.Tensor,
    f_b: torch.Tensor,
    bins: int = 16,
    grid: int | tuple[int, int] | None = None,
) -> InformationFlow:
    """Raw, chance-expected and chance-adjusted IFE per image (see module docstring).

    Parameters
    ----------
    f_a, f_b : torch.Tensor
        Feature maps [B, C_a, H_a, W_a] and [B, C_b, H_b, W_b] of the same B images
        (upstream and downstream layer).
    bins : int
        Most equal-frequency bins per summary (param ``analyze.ife_bins``); fewer on
        grids with under ``bins^2`` positions (:func:`effective_bins`).
    grid : int or (int, int), optional
        Common spatial grid; default: the (H, W) of the map with fewer positions.

    Returns
    -------
    InformationFlow
        ``adjusted``, ``raw``, ``null`` per image and the ``bins`` used. NaN for an image
        where both summaries are constant (both entropies 0).

    Examples
    --------
    >>> f = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> flow = information_flow(f, f, bins=16)
    >>> flow.adjusted.tolist(), flow.raw.tolist(), flow.bins
    ([1.0, 1.0], [1.0, 1.0], 8)
    """
    for name, f in (("f_a", f_a), ("f_b", f_b)):
        if f.ndim != 4:
            raise ValueError(f"{name} must be [B, C, H, W], got shape {tuple(f.shape)}")
        if not torch.isfinite(f).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if f_a.shape[0] != f_b.shape[0]:
        raise ValueError(f"f_a has {f_a.shape[0]} images but f_b has {f_b.shape[0]}")
    _check_bins(bins)
    size = _as_grid(grid, f_a, f_b)
    used = effective_bins(size[0] * size[1], bins)
    x_bins, y_bins = (
        equal_frequency_bins(first_principal_component(_resample(f, size)), used)
        for f in (f_a, f_b)
    )
    mi, h_x, h_y = _plugin_terms(x_bins, y_bins, used)
    expected = expected_mutual_information(x_bins, y_bins, used)
    h_max = torch.maximum(h_x, h_y)
    tiny = torch.finfo(torch.float64).tiny
    defined = h_max > 0
    raw = torch.where(defined, (mi / h_max.clamp_min(tiny)).clamp(0.0, 1.0), torch.nan)
    null = torch.where(defined, expected / h_max.clamp_min(tiny), torch.nan)
    # max H - E[MI] > 0 whenever one map varies: E[MI] <= min(H(X), H(Y)), with equality
    # only if one map is constant, where MI = E[MI] = 0 and the adjusted value is 0.
    room = h_max - expected
    adjusted = torch.where(room > 1e-12, (mi - expected) / room.clamp_min(tiny), 0.0)
    adjusted = torch.where(defined, adjusted.clamp(max=1.0), torch.nan)
    return InformationFlow(adjusted=adjusted, raw=raw, null=null, bins=used)


def information_flow_efficiency(
    f_a: torch.Tensor,
    f_b: torch.Tensor,
    bins: int = 16,
    grid: int | tuple[int, int] | None = None,
    adjusted: bool = True,
) -> torch.Tensor:
    """IFE per image, float64 [B]: chance-adjusted (default) or raw (``adjusted=False``).

    Parameters are those of :func:`information_flow`; metric ``information_flow_efficiency``.

    Examples
    --------
    >>> f = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> information_flow_efficiency(f, f, bins=4).tolist()
    [1.0, 1.0]
    """
    flow = information_flow(f_a, f_b, bins=bins, grid=grid)
    return flow.adjusted if adjusted else flow.raw
