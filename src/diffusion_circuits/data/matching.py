"""Select natural images whose attribute marginals match the synthetic ones.

Method (deterministic given the seed): raking, i.e. iterative proportional fitting of one
weight per row so that the weighted share of every binary view equals its target. Raking
weights are constant within a cell (one combination of the binary views), so the
selection is stratified: each cell gets a quota of ``n`` proportional to its total weight
(largest remainders, capped at the rows it has, the excess passed on to the other cells)
and its rows are drawn uniformly. Raking matches all marginals at once without needing
the joint distribution, which the synthetic data fixes but CelebA does not share.
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
_SOURCE_COLUMNS = ("expression", "gender", "age", "glasses", "facial_hair", "hair_colour")


def binary_views(attributes: pd.DataFrame) -> pd.DataFrame:
    """The nine boolean views of the canonical attribute columns."""
    missing = [c for c in _SOURCE_COLUMNS if c not in attributes]
    if missing:
        raise ValueError(f"attribute table lacks columns {missing}")
    if attributes[list(_SOURCE_COLUMNS)].isna().any().any():
        raise ValueError("attribute table has missing (NA) values; matching needs attributes")
    hair = attributes["hair_colour"]
    return pd.DataFrame(
        {
            "smiling": attributes["expression"] == "smiling",
            "male": attributes["gender"] == "male",
            "young": attributes["age"] == "young",
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
    """|P(view) - target| for each target key."""
    views = binary_views(attributes)
    return {key: float(abs(views[key].mean() - value)) for key, value in target.items()}


def select_matched(
    attributes: pd.DataFrame, target: dict[str, float], n: int, seed: int, iterations: int = 50
) -> np.ndarray:
    """Row positions of ``n`` images whose marginals approximate ``target``."""
    if n > len(attributes):
        raise ValueError(f"cannot select {n} images from {len(attributes)}")
    unknown = sorted(set(target) - set(BINARY_VIEWS))
    if unknown:
        raise ValueError(f"unknown target keys {unknown}; allowed: {list(BINARY_VIEWS)}")
    views = binary_views(attributes).to_numpy(dtype=bool)
    columns = [BINARY_VIEWS.index(key) for key in target]
    weights = np.ones(len(attributes))
    for _ in range(iterations):
        for column, key in zip(columns, target, strict=True):
            has = views[:, column]
            share = weights[has].sum() / weights.sum()
            goal = min(max(target[key], 1e-6), 1 - 1e-6)
            if 0 < share < 1:
                weights[has] *= goal / share
                weights[~has] *= (1 - goal) / (1 - share)
    cells = pd.Series(list(map(bytes, np.packbits(views, axis=1)))).factorize()[0]
    cell_weight = np.bincount(cells, weights=weights)
    available = np.bincount(cells)
    quota = _quotas(cell_weight, available, n)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(cells == cell), size=count, replace=False)
        for cell, count in enumerate(quota)
        if count
    ]
    return np.sort(np.concatenate(chosen))


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
