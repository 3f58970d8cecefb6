"""Seed-level inference for dataset comparisons on the crossed design.

A claim about a dataset or a model family (synthetic vs natural) is about training runs
and images, so its unit is the training seed: the images of one model are repeated
measurements of that model, not independent replications. The same probe images serve
every seed of a dataset (crossed), so the interval adds the image variance the seed
means share (:func:`~diffusion_circuits.stats.seed_level.crossed_difference`); the CI and
the p value come from the same model. The image-level result (see
:func:`~diffusion_circuits.stats.compare.compare_datasets`) is kept beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from diffusion_circuits.stats.compare import ALPHA, COLUMNS, compare_datasets, compare_groups
from diffusion_circuits.stats.seed_level import crossed_difference, crossed_table
from diffusion_circuits.vocabulary import DATASETS

__all__ = [
    "BY_UNIT_COLUMNS",
    "SEED_MEANS",
    "SEED_UNIT",
    "NO_SEED_INFERENCE",
    "compare_by_unit",
    "difference",
    "ratio",
    "seed_level_comparison",
]

NO_SEED_INFERENCE = "one training seed per dataset: no seed-level inference exists"
SEED_UNIT = "crossed seeds x images interval (seed and image random effects; seed = unit)"
SEED_MEANS = "t / Welch interval on per-seed means (seed = unit)"
# Columns added after COLUMNS by compare_by_unit.
BY_UNIT_COLUMNS = ["unit", "n_seeds_a", "n_seeds_b"]


def difference(mean_a: np.ndarray, mean_b: np.ndarray) -> np.ndarray:
    """``mean_b - mean_a`` (the contrast of every comparison)."""
    return mean_b - mean_a


def ratio(mean_a: np.ndarray, mean_b: np.ndarray) -> np.ndarray:
    """``mean_b / mean_a`` (NaN where ``mean_a`` is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean_a != 0, mean_b / np.where(mean_a != 0, mean_a, 1.0), np.nan)


def _clean(seeds: Sequence[np.ndarray]) -> list[np.ndarray]:
    values = [np.asarray(v, dtype=float) for v in seeds]
    return [v[np.isfinite(v)] for v in values if np.isfinite(v).any()]


def _table(seeds: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """A seeds x images table: as given (crossed), or one column of seed means (nested)."""
    if isinstance(seeds, np.ndarray) and seeds.ndim == 2:
        return seeds
    return np.array([v.mean() for v in _clean(seeds)])[:, None]


def seed_level_comparison(
    a_seeds: Sequence[np.ndarray],
    b_seeds: Sequence[np.ndarray],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = ALPHA,
) -> dict:
    """Seed-level test and CI of ``mean(b) - mean(a)`` from one model.

    ``a_seeds``, ``b_seeds``: a seeds x images table per group (crossed: the same images
    in every row, :func:`~diffusion_circuits.stats.seed_level.crossed_table`), or a list
    of per-seed value arrays (nested: only their means enter).

    Returns the :data:`COLUMNS` of :func:`compare_groups` computed on the per-seed means
    (``n_a``/``n_b`` count seeds; ``effect_size`` is Cohen's d between per-seed means;
    ``d_for_power_80`` the |d| the test detects with power 0.8 at these seed counts), with ``t``,
    ``dof``, ``p_value`` and ``ci_low``/``ci_high`` replaced by the crossed model's
    (:func:`~diffusion_circuits.stats.seed_level.crossed_difference`; Welch on the seed
    means for a nested table), so the CI excludes 0 exactly when ``p_value < 1 -
    confidence``; ``ci_method`` says which. With fewer than two seeds in a
    group every test column is NaN and ``note`` says that no seed-level inference exists.
    """
    table_a, table_b = _table(a_seeds), _table(b_seeds)
    means_a, means_b = table_a.mean(axis=1), table_b.mean(axis=1)
    row = compare_groups(means_a, means_b, n_resamples=n_resamples, seed=seed,
                         confidence=confidence, alpha=alpha)  # fmt: skip
    if len(means_a) < 2 or len(means_b) < 2:
        row.update(ci_low=np.nan, ci_high=np.nan, ci_method="none", note=NO_SEED_INFERENCE)
        return row
    crossed = crossed_difference(table_a, table_b, confidence)
    low, high = crossed["ci_low"], crossed["ci_high"]
    note = (
        f"{len(means_a)} vs {len(means_b)} seeds: |d| >= {row['d_for_power_80']:.2f} "
        "needed for power 0.8"
    )
    row.update(ci_low=low, ci_high=high, t=crossed["t"], dof=crossed["df"],
               p_value=crossed["p_value"], ci_method=SEED_UNIT if table_a.shape[1] > 1 else SEED_MEANS,
               note="; ".join(n for n in (row["note"], note) if n))  # fmt: skip
    return row


def compare_by_unit(
    df: pd.DataFrame,
    *,
    dv: str = "value",
    between: str = "dataset",
    groups: tuple[str, str] = DATASETS,
    by: Sequence[str] = ("metric", "timestep"),
    image: str = "image_id",
    seed_column: str = "seed",
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Image-level and seed-level comparison of ``groups[1] - groups[0]`` per ``by`` key.

    Parameters
    ----------
    df : tidy table with ``between``, ``image``, ``seed_column``, ``dv`` and ``by``.
    image, seed_column : the image and training-seed columns.
    alpha : test level of ``d_for_power_80`` (the stats stage passes ``params.stats.alpha``).
    Other parameters as :func:`~diffusion_circuits.stats.compare.compare_datasets`.

    Returns
    -------
    Two rows per ``by`` key (``unit`` image first, then seed): the ``by`` columns, the
    :data:`~diffusion_circuits.stats.compare.COLUMNS`, then

    - ``unit``: ``"image"`` (each image's values averaged over the seeds' models; tests
      over images, BCa CI) or ``"seed"`` (training runs and images: the crossed seeds x
      images model of :func:`seed_level_comparison`)
    - ``n_seeds_a, n_seeds_b``: training seeds per group

    With one seed per group the seed row has NaN tests, ``ci_method`` ``"none"`` and the
    note :data:`NO_SEED_INFERENCE`.
    """
    by = list(by)
    missing = [c for c in (seed_column, image, between, dv, *by) if c not in df.columns]
    if missing:
        raise ValueError(f"compare_by_unit: missing column(s) {missing}; table has {list(df.columns)}")  # fmt: skip
    kwargs = dict(n_resamples=n_resamples, seed=seed, confidence=confidence, alpha=alpha)
    images = compare_datasets(df, dv=dv, between=between, groups=groups, by=by, unit=image,
                              **kwargs)  # fmt: skip
    per_image = df.groupby([*by, between, seed_column, image], dropna=False, as_index=False)[
        dv
    ].mean()
    seeds_per_group = per_image.groupby(between)[seed_column].nunique()
    images["unit"] = "image"
    images["n_seeds_a"] = int(seeds_per_group.get(groups[0], 0))
    images["n_seeds_b"] = int(seeds_per_group.get(groups[1], 0))
    rows = []
    for key, part in per_image.groupby(by, dropna=False, sort=True) if by else [((), per_image)]:
        key = key if isinstance(key, tuple) else (key,)
        split = {g: crossed_table(part[part[between] == g], seed_column, image, dv)
                 for g in groups}  # fmt: skip
        row = seed_level_comparison(split[groups[0]], split[groups[1]], **kwargs)
        rows.append({**dict(zip(by, key, strict=True)), **row, "unit": "seed",
                     "contrast": f"{groups[1]} - {groups[0]}",
                     "n_seeds_a": len(split[groups[0]]), "n_seeds_b": len(split[groups[1]])})  # fmt: skip
    seeds = pd.DataFrame(rows, columns=[*by, *COLUMNS, *BY_UNIT_COLUMNS])
    out = pd.concat([images, seeds], ignore_index=True)
    order = [*by, "unit"] if by else ["unit"]
    out = out.sort_values(order, kind="stable", key=lambda s: s.map({"image": 0, "seed": 1}) if s.name == "unit" else s)  # fmt: skip
    out = out[[*by, *COLUMNS, *BY_UNIT_COLUMNS]].reset_index(drop=True)
    out.attrs.update(images.attrs, unit="image and seed")
    return out
