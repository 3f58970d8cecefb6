"""Seed-level inference: the hierarchical bootstrap on hand-worked cases, the test vs scipy."""

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from diffusion_circuits.stats.hierarchical import (
    NO_SEED_INFERENCE,
    compare_by_unit,
    hierarchical_bootstrap_ci,
    hierarchical_means,
    ratio,
    seed_level_comparison,
)


def test_one_image_per_seed_is_a_seed_bootstrap_worked_by_hand():
    # a: three seeds at 0; b: seeds (0, 0, 3). The resampled mean of b is k, k ~ Bin(3, 1/3):
    # P(k=0) = 8/27, P(k <= 2) = 26/27 = 0.963 < 0.975, so the 95% CI is [0, 3].
    a = [np.array([0.0])] * 3
    b = [np.array([0.0]), np.array([0.0]), np.array([3.0])]
    assert hierarchical_bootstrap_ci(a, b, n_resamples=20000, seed=1) == (0.0, 3.0)
    # and at 80%: P(k=0) = 0.296 > 0.1, P(k <= 1) = 20/27 = 0.741 < 0.9 -> [0, 2]
    assert hierarchical_bootstrap_ci(a, b, n_resamples=20000, confidence=0.8) == (0.0, 2.0)


def test_resampled_seed_means_follow_the_binomial_worked_by_hand():
    means = hierarchical_means([np.array([0.0]), np.array([0.0]), np.array([3.0])], 30000,
                               np.random.default_rng(0))  # fmt: skip
    frequencies = np.bincount(np.rint(means).astype(int), minlength=4) / len(means)
    assert frequencies == pytest.approx([8 / 27, 12 / 27, 6 / 27, 1 / 27], abs=0.01)


def test_zero_between_seed_variance_reduces_to_the_image_bootstrap():
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 1.0, 60)
    shift = 0.4
    a = [values] * 3  # every seed holds the same images: no variation between seeds
    b = [values + shift] * 3
    low, high = hierarchical_bootstrap_ci(a, b, n_resamples=20000, seed=5)
    pooled = np.tile(values, 3)
    image = stats.bootstrap((pooled, pooled + shift), lambda x, y, axis: y.mean(axis) - x.mean(axis),
                            n_resamples=20000, method="percentile", paired=False,
                            rng=np.random.default_rng(6))  # fmt: skip
    width = image.confidence_interval.high - image.confidence_interval.low
    assert low == pytest.approx(image.confidence_interval.low, abs=0.05 * width)
    assert high == pytest.approx(image.confidence_interval.high, abs=0.05 * width)


def test_between_seed_variation_widens_the_interval():
    rng = np.random.default_rng(4)
    a = [rng.normal(offset, 1.0, 100) for offset in (-1.0, 0.0, 1.0)]
    b = [rng.normal(offset, 1.0, 100) for offset in (-1.0, 0.0, 1.0)]
    low, high = hierarchical_bootstrap_ci(a, b, n_resamples=4000)
    pooled = stats.bootstrap((np.concatenate(a), np.concatenate(b)),
                             lambda x, y, axis: y.mean(axis) - x.mean(axis), n_resamples=4000,
                             method="percentile", rng=np.random.default_rng(0))  # fmt: skip
    image_width = np.diff(pooled.confidence_interval)[0]
    assert high - low > 3 * image_width


def test_ratio_statistic_and_seed_argument():
    a = [np.array([2.0, 2.0])] * 3  # constant: every resampled mean of a is 2
    b = [np.array([1.0, 1.2]), np.array([0.9, 1.6]), np.array([1.0, 1.0])]
    # b / 2 = (b - 2) / 2 + 1, and percentiles commute with an increasing affine map
    low, high = hierarchical_bootstrap_ci(a, b, n_resamples=500, seed=3)
    assert hierarchical_bootstrap_ci(a, b, statistic=ratio, n_resamples=500, seed=3) == (
        pytest.approx((low / 2 + 1, high / 2 + 1))
    )
    c = [np.random.default_rng(s).normal(size=30) for s in range(3)]
    first = hierarchical_bootstrap_ci(a, c, n_resamples=500, seed=1)
    assert first == hierarchical_bootstrap_ci(a, c, n_resamples=500, seed=1)
    assert first != hierarchical_bootstrap_ci(a, c, n_resamples=500, seed=2)


def test_seed_level_test_matches_scipy_and_pingouin():
    rng = np.random.default_rng(8)
    a = [rng.normal(m, 1.0, 40) for m in (0.0, 0.3, -0.2)]
    b = [rng.normal(m, 1.0, 40) for m in (0.8, 1.1, 0.6)]
    row = seed_level_comparison(a, b, n_resamples=1000)
    means_a, means_b = [v.mean() for v in a], [v.mean() for v in b]
    welch = stats.ttest_ind(means_b, means_a, equal_var=False)
    assert (row["n_a"], row["n_b"]) == (3, 3)
    assert row["p_value"] == pytest.approx(welch.pvalue, rel=1e-12)
    assert row["t"] == pytest.approx(welch.statistic, rel=1e-12)
    d = pg.compute_effsize(means_b, means_a, eftype="cohen")
    assert row["effect_size"] == pytest.approx(d)
    assert row["power"] == pytest.approx(pg.power_ttest2n(nx=3, ny=3, d=d))
    # 3 vs 3 seeds: only an effect of about three SDs is found with power 0.8
    assert row["d_for_power_80"] == pytest.approx(3.07, abs=0.01)
    assert pg.power_ttest2n(nx=3, ny=3, d=row["d_for_power_80"]) == pytest.approx(0.8)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert row["ci_method"].startswith("hierarchical") and "power 0.8" in row["note"]


def _tidy(n_seeds: int) -> pd.DataFrame:
    rng = np.random.default_rng(n_seeds)
    rows = [
        {"dataset": d, "seed": s, "image_id": i, "metric": "m", "timestep": 100, "head": h,
         "value": shift + rng.normal()}
        for d, shift in (("synthetic", 0.0), ("natural", 0.5))
        for s in range(n_seeds) for i in range(20) for h in range(2)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_compare_by_unit_gives_an_image_and_a_seed_row():
    df = _tidy(3)
    table = compare_by_unit(df, n_resamples=300)
    assert table["unit"].tolist() == ["image", "seed"]
    image, seed = table.iloc[0], table.iloc[1]
    assert (image["n_a"], seed["n_a"]) == (20, 3)
    assert (seed["n_seeds_a"], seed["n_seeds_b"]) == (3, 3)
    per_seed = df.groupby(["dataset", "seed"])["value"].mean()
    welch = stats.ttest_ind(per_seed["natural"], per_seed["synthetic"], equal_var=False)
    assert seed["p_value"] == pytest.approx(welch.pvalue)
    assert image["estimate"] == pytest.approx(seed["estimate"])  # balanced design


def test_one_seed_says_no_seed_level_inference_exists():
    table = compare_by_unit(_tidy(1), n_resamples=300)
    image, seed = table.iloc[0], table.iloc[1]
    assert np.isfinite(image["p_value"])
    assert seed["unit"] == "seed" and seed["note"] == NO_SEED_INFERENCE
    assert np.isnan(seed["p_value"]) and np.isnan(seed["ci_low"]) and seed["ci_method"] == "none"


def test_missing_seed_column_is_a_clear_error():
    with pytest.raises(ValueError, match="seed"):
        compare_by_unit(_tidy(2).drop(columns="seed"))
