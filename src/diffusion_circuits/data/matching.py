"""Select natural images whose attribute marginals match the synthetic ones.

Binary views. The canonical columns give nine booleans (:data:`BINARY_VIEWS`):
``smiling`` (expression), ``male`` (gender), ``young`` (age), ``eyeglasses`` (glasses),
``facial_hair``, and one per hair colour ``black_hair``, ``brown_hair``, ``blond_hair``,
``grey_hair`` ("other" is none of them).

Method (deterministic given the seed):

1. Bounded raking (iterative proportional fitting of inclusion probabilities): start
   from ``w_i = n / N`` for each of the ``N`` rows; for each target key ``k`` in turn,
   scale the rows with view ``k`` so that their weights sum to ``n * p_k`` and the
   others to ``n * (1 - p_k)`` (``p_k`` the target, clipped to [1e-6, 1 - 1e-6]); after
   each sweep over the keys cap every weight at 1 (a row is picked at most once);
   50 sweeps. Without the cap, small cells (e.g. grey hair at 2% of CelebA) would be
   asked for more rows than they have and the shortfall would drift back toward the
   pool's own marginals.
2. The weights are constant within a cell (one combination of the nine views), so the
   sample is stratified: cell ``c`` gets a quota of about ``n * W_c / sum W`` rows
   (largest remainders, capped at the rows it has, any excess passed on to the other
   cells in proportion to their weight) and its rows are drawn uniformly without
   replacement with ``numpy.random.default_rng(seed)``.

Raking matches all marginals at once without needing the joint distribution, which the
synthetic data fixes but CelebA does not share. When a target cannot be met (a view
absent from the table, or quotas capped by small cells) the selection gets as close as
the rows allow; :func:`marginal_gap` reports what remains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["BINARY_VIEWS", "binary_views", "marginal_gap", "select_matched"]

BINARY_VIEWS = (
    "smiling",
    "male",
    "young",
    "eyeglasses",
    "facial_hair",
    "black_hair",
    "brown_hair",
    "blond_hair",
    "grey_hair",
)
_CATEGORIES = {
    "expression": ("neutral", "smiling"),
    "gender": ("female", "male"),
    "age": ("old", "young"),
    "glasses": (False, True),
    "facial_hair": (False, True),
    "hair_colour": ("black", "blond", "brown", "grey", "other"),
}
_HAIR_VIEWS = ("black_hair", "brown_hair", "blond_hair", "grey_hair")


def _check_table(attributes: pd.DataFrame) -> None:
    missing = [column for column in _CATEGORIES if column not in attributes]
    if missing:
        raise ValueError(
            f"attribute table lacks columns {missing}; matching needs {list(_CATEGORIES)}"
        )
    for column, allowed in _CATEGORIES.items():
        values = attributes[column]
        na = values.isna().to_numpy()
        if na.any():
            raise ValueError(
                f"attribute column {column} has missing (NA) values in {int(na.sum())} of {len(values)} rows; "
                "matching needs known attributes (the LFW stand-in has none)"
            )
        # isin, not a comparison of str(): the text "False" must not pass as the bool False.
        unknown = sorted(values[~values.isin(allowed)].unique().tolist(), key=repr)
        if unknown:
            raise ValueError(
                f"attribute column {column} has values {unknown[:5]}, allowed {list(allowed)}"
            )


def _check_target(target: dict[str, float]) -> None:
    unknown = sorted(set(target) - set(BINARY_VIEWS))
    if unknown:
        raise ValueError(f"unknown target keys {unknown}; allowed: {list(BINARY_VIEWS)}")
    bad = {key: value for key, value in target.items() if not 0.0 <= value <= 1.0}
    if bad:
        raise ValueError(f"target proportions must lie in [0, 1], got {bad}")
    hair = sum(target.get(key, 0.0) for key in _HAIR_VIEWS)
    if hair > 1.0 + 1e-9:
        raise ValueError(
            f"hair-colour targets sum to {hair:.3g} > 1, but the colours exclude each other"
        )


def binary_views(attributes: pd.DataFrame) -> pd.DataFrame:
    """The nine boolean views (:data:`BINARY_VIEWS`) of the canonical attribute columns.

    Examples
    --------
    >>> table = pd.DataFrame({"expression": ["smiling", "neutral"], "gender": ["male", "female"],
    ...     "age": ["old", "young"], "glasses": [True, False], "facial_hair": [True, False],
    ...     "hair_colour": ["grey", "other"]})
    >>> binary_views(table).sum().tolist()
    [1, 1, 1, 1, 1, 0, 0, 0, 1]
    """
    _check_table(attributes)
    hair = attributes["hair_colour"].astype(str)
    return pd.DataFrame(
        {
            "smiling": attributes["expression"].astype(str) == "smiling",
            "male": attributes["gender"].astype(str) == "male",
            "young": attributes["age"].astype(str) == "young",
            "eyeglasses": attributes["glasses"].astype(bool),
            "facial_hair": attributes["facial_hair"].astype(bool),
            "black_hair": hair == "black",
            "brown_hair": hair == "brown",
            "blond_hair": hair == "blond",
            "grey_hair": hair == "grey",
        },
        index=attributes.index,
    )


def marginal_gap(attributes: pd.DataFrame, target: dict[str, float]) -> dict[str, float]:
    """``|mean(view) - target[view]|`` for each target key.

    Examples
    --------
    >>> table = pd.DataFrame({"expression": ["smiling", "neutral", "neutral", "neutral"],
    ...     "gender": ["male"] * 4, "age": ["young"] * 4, "glasses": [False] * 4,
    ...     "facial_hair": [False] * 4, "hair_colour": ["black"] * 4})
    >>> marginal_gap(table, {"smiling": 0.5, "male": 0.4})
    {'smiling': 0.25, 'male': 0.6}
    """
    _check_target(target)
    views = binary_views(attributes)
    return {key: float(abs(views[key].mean() - value)) for key, value in target.items()}


def select_matched(
    attributes: pd.DataFrame, target: dict[str, float], n: int, seed: int, iterations: int = 50
) -> np.ndarray:
    """Sorted row positions of ``n`` distinct images whose marginals approximate ``target``.

    Parameters
    ----------
    attributes : pandas.DataFrame
        Canonical attribute columns, no NA (see :func:`binary_views`).
    target : dict of str to float
        Wanted share of each binary view, keys from :data:`BINARY_VIEWS`.
    n : int
        Number of rows to select, at most ``len(attributes)``.
    seed : int
        Seed of the within-cell draws.
    iterations : int
        Raking sweeps over the target keys.

    Returns
    -------
    numpy.ndarray
        int64 positions (``iloc``), sorted, without repeats.

    Examples
    --------
    >>> table = pd.DataFrame({"expression": ["smiling"] * 6 + ["neutral"] * 2,
    ...     "gender": ["male", "female"] * 4, "age": ["young"] * 8, "glasses": [False] * 8,
    ...     "facial_hair": [False] * 8, "hair_colour": ["brown"] * 8})
    >>> rows = select_matched(table, {"smiling": 0.5}, 4, seed=0)
    >>> binary_views(table.iloc[rows])["smiling"].mean()
    np.float64(0.5)
    """
    _check_target(target)
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if n > len(attributes):
        raise ValueError(f"cannot select {n} images from {len(attributes)} without replacement")
    views = binary_views(attributes).to_numpy(dtype=bool)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # Weights are constant within a cell, so rake per cell: O(cells), not O(rows).
    cells = pd.Series(list(map(bytes, np.packbits(views, axis=1)))).factorize()[0]
    cell_views = views[np.unique(cells, return_index=True)[1]]
    size = np.bincount(cells).astype(float)
    weight = np.full(len(size), n / len(views))  # per row of the cell
    for _ in range(iterations):
        for key in target:
            goal = min(max(target[key], 1e-6), 1 - 1e-6)
            has = cell_views[:, BINARY_VIEWS.index(key)]
            for group, wanted in ((has, n * goal), (~has, n * (1 - goal))):
                current = (size[group] * weight[group]).sum()
                if current > 0:
                    weight[group] *= wanted / current
        np.minimum(weight, 1.0, out=weight)
    quota = _quotas(size * weight, size.astype(int), n)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(cells == cell), size=count, replace=False)
        for cell, count in enumerate(quota)
        if count
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _quotas(weight: np.ndarray, available: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` over cells in proportion to ``weight`` without exceeding ``available``."""
    quota = np.zeros(len(weight), dtype=int)
    open_cells = available > 0
    while (remaining := n - quota.sum()) > 0:
        share = np.where(open_cells, weight, 0.0)
        if share.sum() <= 0:
            share = np.where(open_cells, available - quota, 0).astype(float)
        ideal = remaining * share / share.sum()
        add = np.floor(ideal).astype(int)
        leftover = remaining - add.sum()
        add[np.argsort(-(ideal - add), kind="stable")[:leftover]] += 1
        quota = np.minimum(quota + add, available)
        open_cells = quota < available
    return quota
