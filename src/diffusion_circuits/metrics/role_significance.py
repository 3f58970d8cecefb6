"""Head roles tested against a permutation null (paper 4.3, Table 2).

A head's score for a candidate map (edge, texture, a part mask) is the mean, over
images and timesteps, of the Pearson correlation across positions between its key
saliency and that map of the same image. The label is the winning candidate, which
is a maximum over candidates, so it is tested by its own null distribution:

- null: the images are permuted, pairing each image's saliency with the maps of
  another image (the same permutation at every timestep and for every candidate, so
  the correlation between candidates and the spatial autocorrelation of both maps are
  kept); under "the head does not track this image's content" every pairing is equally
  likely;
- statistic: the maximum over candidates of the mean correlation, recomputed for each
  permutation, so the p-value is corrected for the choice of the best candidate;
- ``p = (1 + #{null max >= observed max}) / (1 + n_permutations)``.

A head gets the winning role only when its specialisation reaches the global
threshold (else ``global``), the winning mean is positive and ``p < alpha``; otherwise
``none`` (``undetermined`` when no candidate has a finite score). A head whose
attention sits at a fixed position that happens to overlap the average face's edges
is ``none``: the role says the head reads *this image's* edges or texture.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

__all__ = ["score_matrix", "max_score_test", "assign_roles"]

ROLE_CANDIDATES = ("edge", "texture")


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Centre and L2-normalise the last axis; NaN where it is constant up to rounding."""
    x = x.double()
    centred = x - x.mean(dim=-1, keepdim=True)
    norm = torch.linalg.vector_norm(centred, dim=-1, keepdim=True)
    scale = x.abs().amax(dim=-1, keepdim=True) * x.shape[-1] ** 0.5
    return torch.where(norm > 1e-12 * scale, centred / norm.clamp_min(1e-300), torch.nan)


def score_matrix(saliency: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Pearson r of every image's saliency with every image's maps.

    Parameters
    ----------
    saliency : torch.Tensor
        [T, N, heads, P]: key saliency per timestep, image and head on P grid positions.
    maps : torch.Tensor
        [N, C, P]: C candidate maps of each image, pooled to the same grid.

    Returns
    -------
    torch.Tensor
        float64 [T, N, N, heads, C]: entry ``[t, i, j, h, c]`` is the correlation of
        saliency (t, i, h) with map c of image j; NaN where either is constant.

    Examples
    --------
    >>> s = torch.tensor([[[[1.0, 2.0, 3.0]]]])  # T = N = heads = 1
    >>> score_matrix(s, torch.tensor([[[3.0, 2.0, 1.0], [1.0, 1.0, 1.0]]])).flatten().round(decimals=6).tolist()
    [-1.0, nan]
    """
    if saliency.ndim != 4 or maps.ndim != 3:
        raise ValueError(
            f"saliency must be [T, N, heads, P] and maps [N, C, P]; got {tuple(saliency.shape)}, {tuple(maps.shape)}"
        )
    if saliency.shape[1] != maps.shape[0] or saliency.shape[-1] != maps.shape[-1]:
        raise ValueError(
            f"saliency {tuple(saliency.shape)} and maps {tuple(maps.shape)} disagree on images or positions"
        )
    return torch.einsum("tihp,jcp->tijhc", _unit_rows(saliency), _unit_rows(maps))


def _best(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and argmax over the last axis, ignoring NaN (NaN max where all are NaN)."""
    filled = torch.nan_to_num(means, nan=-torch.inf)
    value, index = filled.max(dim=-1)
    return torch.where(torch.isinf(value), torch.nan, value), index


def max_score_test(
    saliency: torch.Tensor,
    maps: dict[str, torch.Tensor],
    n_permutations: int,
    alpha: float,
    seed: int,
    chunk: int = 64,
) -> pd.DataFrame:
    """Best candidate per head and its permutation p-value, the max over candidates corrected.

    Parameters
    ----------
    saliency : torch.Tensor
        [T, N, heads, P] key saliency (see :func:`score_matrix`).
    maps : dict[str, torch.Tensor]
        Candidate name -> [N, P] map of each image on the same grid.
    n_permutations : int
        Permutations of the images drawn for the null (>= 1).
    alpha : float
        Level whose null threshold is reported.
    seed : int
        Seed of the permutations.
    chunk : int
        Permutations evaluated at once (memory only).

    Returns
    -------
    pandas.DataFrame
        One row per head: ``head``, one ``<candidate>`` column per candidate (its mean
        correlation over images and timesteps), ``best`` (the winning candidate; None if
        none is finite), ``score`` (its mean), ``null_threshold`` (the 1 - alpha quantile
        of the null distribution of the max), ``p_value``, ``n_images``,
        ``n_permutations``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> edges = torch.rand(30, 16, generator=g)
    >>> sal = torch.stack([edges, torch.rand(30, 16, generator=g)], dim=1)[None]  # head 0 copies
    >>> out = max_score_test(sal, {"edge": edges, "texture": edges ** 3}, 99, 0.05, seed=0)
    >>> out[["head", "best"]].to_dict("list"), out["p_value"].round(3).tolist()
    ({'head': [0, 1], 'best': ['edge', 'texture']}, [0.01, 0.11])
    """
    if not maps:
        raise ValueError("max_score_test needs at least one candidate map")
    if n_permutations < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(
            f"need n_permutations >= 1 and alpha in (0, 1); got {n_permutations}, {alpha}"
        )
    names = list(maps)
    scores = score_matrix(saliency, torch.stack([torch.as_tensor(maps[n]) for n in names], dim=1))
    n_images = scores.shape[1]
    images = torch.arange(n_images)
    observed, best = _best(torch.nanmean(scores[:, images, images], dim=(0, 1)))  # [heads]
    generator = torch.Generator().manual_seed(seed)
    null = []
    for start in range(0, n_permutations, chunk):
        size = min(chunk, n_permutations - start)
        perms = torch.rand(size, n_images, generator=generator).argsort(dim=1)
        paired = scores[:, images[None, :], perms]  # [T, size, N, heads, C]
        null.append(_best(torch.nanmean(paired, dim=(0, 2)))[0])  # [size, heads]
    null_max = torch.cat(null)
    exceed = (torch.nan_to_num(null_max, nan=-torch.inf) >= observed[None]).sum(dim=0)
    p_value = (1.0 + exceed.double()) / (1.0 + n_permutations)
    p_value = torch.where(torch.isnan(observed), torch.nan, p_value)
    threshold = torch.nanquantile(null_max, 1.0 - alpha, dim=0)
    means = torch.nanmean(scores[:, images, images], dim=(0, 1))  # [heads, C]
    out = pd.DataFrame({"head": np.arange(scores.shape[3])})
    for index, name in enumerate(names):
        out[name] = means[:, index].numpy()
    out["best"] = pd.Series(np.array(names, dtype=object)[best.numpy()]).where(
        ~torch.isnan(observed).numpy(), None
    )
    out["score"] = observed.numpy()
    out["null_threshold"] = threshold.numpy()
    out["p_value"] = p_value.numpy()
    out["n_images"] = n_images
    out["n_permutations"] = n_permutations
    return out


def assign_roles(
    tests: pd.DataFrame, specialisation: pd.DataFrame, global_threshold: float, alpha: float
) -> pd.DataFrame:
    """One role per (hook, head) from its tested best candidate and its specialisation.

    Parameters
    ----------
    tests : pandas.DataFrame
        ``hook``, ``head``, ``best``, ``score``, ``p_value`` (:func:`max_score_test` with
        a ``hook`` column); further columns are kept.
    specialisation : pandas.DataFrame
        ``hook``, ``head``, ``specialisation``; several rows per head are averaged.
    global_threshold : float
        Heads with mean specialisation below it are ``global`` (param
        ``analyze.global_threshold``).
    alpha : float
        Significance level of the role test (param ``analyze.role_alpha``).

    Returns
    -------
    pandas.DataFrame
        ``tests`` sorted by (hook, head) with ``specialisation`` and ``role``:
        ``global``; the winning candidate when its score is > 0 and ``p_value < alpha``;
        ``undetermined`` when no candidate has a finite score; else ``none``.

    Examples
    --------
    >>> tests = pd.DataFrame({"hook": "mid.attn.0", "head": [0, 1, 2], "best": "edge",
    ...     "score": [0.4, 0.4, -0.1], "p_value": [0.001, 0.3, 0.001]})
    >>> spec = pd.DataFrame({"hook": "mid.attn.0", "head": [0, 1, 2], "specialisation": 0.3})
    >>> assign_roles(tests, spec, global_threshold=0.05, alpha=0.05)["role"].tolist()
    ['edge', 'none', 'none']
    """
    keys = ["hook", "head"]
    missing = [c for c in [*keys, "best", "score", "p_value"] if c not in tests.columns]
    missing_spec = [c for c in [*keys, "specialisation"] if c not in specialisation.columns]
    if missing or missing_spec:
        raise ValueError(f"missing columns: tests {missing}, specialisation {missing_spec}")
    if not 0.0 <= global_threshold <= 1.0:
        raise ValueError(f"global_threshold must be in [0, 1], got {global_threshold!r}")
    mean_spec = specialisation.groupby(keys, as_index=False)["specialisation"].mean()
    table = tests.merge(mean_spec, on=keys, how="left", validate="one_to_one")
    unmatched = table.loc[table["specialisation"].isna(), keys]
    if len(unmatched):
        raise ValueError(
            f"no specialisation for tested head(s) {unmatched.to_records(index=False).tolist()[:5]}"
        )
    significant = (table["score"] > 0) & (table["p_value"] < alpha)
    role = np.where(significant, table["best"], "none")
    role = np.where(table["score"].isna(), "undetermined", role)
    table["role"] = np.where(table["specialisation"] < global_threshold, "global", role)
    return table.sort_values(keys, ignore_index=True)
