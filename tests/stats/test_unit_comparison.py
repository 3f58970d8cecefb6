"""Seed-level inference: crossed seeds x images intervals by hand and against statsmodels,
nested Welch / Fieller on seed means against scipy."""

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from diffusion_circuits.stats.seed_level import (
    crossed_difference,
    crossed_mean,
    crossed_ratio,
    crossed_table,
    fieller_interval,
    welch_interval,
)
from diffusion_circuits.stats.unit_comparison import (
    NO_SEED_INFERENCE,
    SEED_UNIT,
    compare_by_unit,
    seed_level_comparison,
)


def test_nested_seed_intervals_are_welch_on_seed_means_worked_by_hand():
    # a: seeds (0, 0, 0); b: seeds (0, 0, 3). Welch: se = sqrt(3 / 3) = 1, df = 2,
    # so the 95% CI is 1 +- t(0.975, 2) = 1 +- 4.303 (a percentile bootstrap gave [0, 3]).
    a = [np.array([0.0])] * 3
    b = [np.array([0.0]), np.array([0.0]), np.array([3.0])]
    row = seed_level_comparison(a, b)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((1 - 4.302653, 1 + 4.302653), rel=1e-6)
    # unequal images per seed (nested): a seed's images enter through its mean only
    spread = [np.array([-1.0, 1.0]), np.array([0.0]), np.array([2.0, 4.0])]
    other = seed_level_comparison(a, spread)
    assert (other["ci_low"], other["ci_high"]) == (row["ci_low"], row["ci_high"])


def test_crossed_variance_is_the_two_way_anova_combination_of_statsmodels():
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(3)
    values = (rng.normal(0, 0.3, (3, 1)) + rng.normal(0, 1.0, (1, 12))
              + rng.normal(0, 0.5, (3, 12)))  # fmt: skip
    long = pd.DataFrame([{"seed": s, "image_id": i, "value": values[s, i]}
                         for s in range(3) for i in range(12)])  # fmt: skip
    table = anova_lm(smf.ols("value ~ C(seed) + C(image_id)", long).fit())
    ms_s, ms_i, ms_e = table["mean_sq"].to_numpy()
    row = crossed_mean(crossed_table(long))
    expected = (max(ms_s, ms_e) + max(ms_i, ms_e) - ms_e) / 36
    assert row["se"] ** 2 == pytest.approx(expected, rel=1e-10)
    assert row["estimate"] == pytest.approx(values.mean())
    # Satterthwaite's df of the combination of independent mean squares
    terms = [(ms_s, 2), (ms_i, 11), (-ms_e, 22)] if min(ms_s, ms_i) > ms_e else None
    if terms:
        df = sum(m for m, _ in terms) ** 2 / sum(m**2 / d for m, d in terms)
        assert row["df"] == pytest.approx(df, rel=1e-10)
    half = stats.t.ppf(0.975, row["df"]) * row["se"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (values.mean() - half, values.mean() + half)
    )


def test_shared_image_effects_widen_the_interval_beyond_the_seed_means():
    # the images dominate: the seed means barely differ, yet another draw of images would
    # move every seed together; the nested interval misses that, the crossed one does not
    rng = np.random.default_rng(4)
    a = rng.normal(0, 1.0, (1, 30)) + rng.normal(0, 0.05, (3, 30))
    b = 0.3 + rng.normal(0, 1.0, (1, 30)) + rng.normal(0, 0.05, (3, 30))
    crossed = crossed_difference(a, b)
    nested = welch_interval(a.mean(axis=1), b.mean(axis=1))
    assert crossed["estimate"] == pytest.approx(nested["estimate"])
    assert crossed["ci_high"] - crossed["ci_low"] > 5 * (nested["ci_high"] - nested["ci_low"])
    assert crossed["df"] > 20  # the image mean squares carry the variance: many df
    # one column per table (seed means only): the crossed functions are Welch and Fieller
    one_a, one_b = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True) + 5
    assert crossed_difference(one_a, one_b)["p_value"] == pytest.approx(
        welch_interval(one_a.ravel(), one_b.ravel())["p_value"])  # fmt: skip
    ratio = crossed_ratio(one_a + 10, one_b)
    fieller = fieller_interval(one_a.ravel() + 10, one_b.ravel())
    assert (ratio["ci_low"], ratio["ci_high"]) == pytest.approx(
        (fieller["ci_low"], fieller["ci_high"])
    )


def test_crossed_table_keeps_the_images_every_seed_has():
    long = pd.DataFrame({"seed": [0, 0, 1, 1, 1], "image_id": [1, 2, 1, 2, 3],
                         "value": [1.0, 2.0, 3.0, np.nan, 5.0]})  # fmt: skip
    assert crossed_table(long).tolist() == [[1.0], [3.0]]  # image 2 is NaN in seed 1, 3 absent in 0
    disjoint = pd.DataFrame({"seed": [0, 1], "image_id": [1, 2], "value": [1.0, 4.0]})
    assert crossed_table(disjoint).tolist() == [[1.0], [4.0]]  # nested: seed means


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
    tables = {d: crossed_table(df[df["dataset"] == d]) for d in ("synthetic", "natural")}
    assert tables["natural"].shape == (3, 20)  # heads averaged per seed and image
    crossed = crossed_difference(tables["synthetic"], tables["natural"])
    assert seed["p_value"] == pytest.approx(crossed["p_value"])
    assert (seed["ci_low"], seed["ci_high"]) == pytest.approx(
        (crossed["ci_low"], crossed["ci_high"])
    )
    assert seed["ci_method"] == SEED_UNIT
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
