"""Seed-level inference: t / Welch / Fieller intervals on hand-worked cases, the test vs scipy."""

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from diffusion_circuits.stats.hierarchical import (
    NO_SEED_INFERENCE,
    compare_by_unit,
    hierarchical_bootstrap_ci,
    ratio,
    seed_level_comparison,
)


def test_seed_intervals_are_t_intervals_on_seed_means_worked_by_hand():
    # a: seeds (0, 0, 0); b: seeds (0, 0, 3). Welch: se = sqrt(3 / 3) = 1, df = 2,
    # so the 95% CI is 1 +- t(0.975, 2) = 1 +- 4.303 (a percentile bootstrap gave [0, 3]).
    a = [np.array([0.0])] * 3
    b = [np.array([0.0]), np.array([0.0]), np.array([3.0])]
    low, high = hierarchical_bootstrap_ci(a, b)
    assert (low, high) == pytest.approx((1 - 4.302653, 1 + 4.302653), rel=1e-6)
    # the images of a seed enter through its mean only
    spread = [np.array([-1.0, 1.0]), np.array([0.0]), np.array([2.0, 4.0])]
    assert hierarchical_bootstrap_ci(a, spread) == hierarchical_bootstrap_ci(a, b)


def test_ratio_is_fieller_at_the_welch_df():
    a = [np.array([2.0, 2.0]), np.array([2.1]), np.array([1.9])]
    b = [np.array([1.0, 1.2]), np.array([0.9, 1.6]), np.array([1.0, 1.0])]
    low, high = hierarchical_bootstrap_ci(a, b, statistic=ratio)
    means_a, means_b = np.array([2.0, 2.1, 1.9]), np.array([1.1, 1.25, 1.0])
    welch = stats.ttest_ind(means_b, means_a, equal_var=False)
    t = stats.t.ppf(0.975, welch.df)
    for r in (low, high):  # the bounds solve (b - r a)^2 = t^2 (v_b + r^2 v_a)
        va, vb = means_a.var(ddof=1) / 3, means_b.var(ddof=1) / 3
        assert (means_b.mean() - r * means_a.mean()) ** 2 == pytest.approx(t**2 * (vb + r**2 * va))
    assert high < 1  # Welch rejects: b is about half of a


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
    assert row["ci_method"].startswith("t / Welch") and "power 0.8" in row["note"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(welch.confidence_interval()))


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
