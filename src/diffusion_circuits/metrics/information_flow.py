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

Steps 1-2 (the map summaries) are here; the estimators of steps 3-5 are in
:mod:`diffusion_circuits.metrics.binned_information` and re-exported from this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from diffusion_circuits.metrics.binned_information import (
    check_bins,
    effective_bins,
    equal_frequency_bins,
    expected_mutual_information,
    plugin_entropy,
    plugin_information,
    plugin_mutual_information,
)

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
    check_bins(bins)
    size = _as_grid(grid, f_a, f_b)
    used = effective_bins(size[0] * size[1], bins)
    x_bins, y_bins = (
        equal_frequency_bins(first_principal_component(_resample(f, size)), used)
        for f in (f_a, f_b)
    )
    mi, h_x, h_y = plugin_information(x_bins, y_bins, used)
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
