"""compare_datasets against scipy/pingouin recomputed here, on known effects and edge cases."""

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from diffusion_circuits.stats.compare import COLUMNS, cohen_label, compare_datasets


def _tidy(a, b, **ids) -> pd.DataFrame:
    """One row per image: a -> synthetic, b -> natural."""
    return pd.DataFrame(
        {
            "dataset": ["synthetic"] * len(a) + ["natural"] * len(b),
            "image_id": np.r_[np.arange(len(a)), np.arange(len(b))],
            "value": np.r_[a, b],
            **ids,
        }
    )


@pytest.fixture(scope="module")
def known_effect():
    rng = np.random.default_rng(20240601)
    a = rng.normal(0.0, 1.0, 400)
    b = rng.normal(0.5, 1.0, 400)
    table = compare_datasets(_tidy(a, b, metric="m", timestep=300), n_resamples=2000, seed=7)
    return a, b, table.iloc[0]


def test_known_effect_is_medium_and_covered(known_effect):
    _, _, row = known_effect
    assert abs(row["effect_size"] - 0.5) < 0.15
    assert row["effect_label"] == "medium"
    assert row["ci_low"] < 0.5 < row["ci_high"]
    assert row["contrast"] == "natural - synthetic"
    assert row["test"] == "welch_t"
    assert row["note"] == ""


def test_statistics_match_scipy_and_pingouin(known_effect):
    a, b, row = known_effect
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert row["t"] == pytest.approx(welch.statistic, rel=1e-12)
    assert row["dof"] == pytest.approx(welch.df, rel=1e-12)
    assert row["p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    # pingouin's own Welch test agrees too
    assert row["p_value"] == pytest.approx(
        pg.ttest(b, a, correction=True)["p_val"].iloc[0], rel=1e-6
    )
    d = pg.compute_effsize(b, a, eftype="cohen")
    assert row["effect_size"] == pytest.approx(d, rel=1e-12)
    # prospective: the |d| these 400 vs 400 units detect with power 0.8, whatever d is
    assert row["d_for_power_80"] == pytest.approx(pg.power_ttest2n(nx=400, ny=400, power=0.8))
    assert "power" not in row and "n_for_power_95" not in row  # no post-hoc power
    ks = stats.ks_2samp(a, b)
    assert (row["ks_stat"], row["ks_p_value"]) == pytest.approx((ks.statistic, ks.pvalue))
    assert (row["n_a"], row["n_b"]) == (400, 400)
    assert row["mean_a"] == pytest.approx(a.mean()) and row["sd_b"] == pytest.approx(b.std(ddof=1))
    assert row["estimate"] == pytest.approx(b.mean() - a.mean())
    assert row["ratio"] == pytest.approx(b.mean() / a.mean())


def test_bootstrap_ci_is_scipy_bca_with_the_given_seed(known_effect):
    a, b, row = known_effect
    boot = stats.bootstrap(
        (a, b), lambda x, y, axis: y.mean(axis) - x.mean(axis), n_resamples=2000,
        vectorized=True, paired=False, method="BCa", rng=np.random.default_rng(7),
    )  # fmt: skip
    assert row["ci_low"] == pytest.approx(boot.confidence_interval.low, rel=1e-12)
    assert row["ci_high"] == pytest.approx(boot.confidence_interval.high, rel=1e-12)


@pytest.mark.parametrize(
    ("d", "label"),
    [(0.0, "negligible"), (0.19999, "negligible"), (0.2, "small"), (0.49, "small"),
     (0.5, "medium"), (0.79, "medium"), (0.8, "large"), (-0.19999, "negligible"),
     (-0.2, "small"), (-0.5, "medium"), (-2.0, "large"), (float("nan"), "undefined")],
)  # fmt: skip
def test_cohen_label_boundaries(d, label):
    assert cohen_label(d) == label


def test_rows_are_aggregated_to_one_value_per_image():
    rng = np.random.default_rng(1)
    rows = []
    for dataset, shift in (("synthetic", 0.0), ("natural", 1.0)):
        for image in range(6):
            for head in range(8):
                rows.append((dataset, image, head, shift + rng.normal()))
    df = pd.DataFrame(rows, columns=["dataset", "image_id", "head", "value"]).assign(metric="e")
    row = compare_datasets(df, by=["metric"], n_resamples=200).iloc[0]
    assert (row["n_a"], row["n_b"]) == (6, 6)
    per_image = df.groupby(["dataset", "image_id"])["value"].mean()
    a, b = per_image["synthetic"].to_numpy(), per_image["natural"].to_numpy()
    assert row["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert row["sd_a"] == pytest.approx(a.std(ddof=1))


def test_seed_as_unit_counts_models():
    df = pd.concat(
        [_tidy(np.arange(4.0) + s, np.arange(4.0) + 2 * s, seed=s, metric="m") for s in range(3)]
    )
    row = compare_datasets(df, by=["metric"], unit="seed", n_resamples=200).iloc[0]
    assert (row["n_a"], row["n_b"]) == (3, 3)
    assert row["mean_a"] == pytest.approx(1.5 + 1.0) and row["mean_b"] == pytest.approx(1.5 + 2.0)


def test_column_order_and_one_row_per_by_group():
    df = pd.concat([_tidy([1.0, 2, 3], [2.0, 3, 5], metric="m", timestep=t) for t in (600, 100)])
    table = compare_datasets(df, n_resamples=200)
    assert list(table.columns) == ["metric", "timestep", *COLUMNS]
    assert table["timestep"].tolist() == [100, 600]
    assert len(compare_datasets(df, by=(), n_resamples=200)) == 1


def test_too_few_units_and_no_variance_give_nan_with_a_note():
    one = compare_datasets(_tidy([1.0], [2.0, 3.0], metric="m"), by=["metric"]).iloc[0]
    assert np.isnan(one["p_value"]) and np.isnan(one["ci_low"]) and np.isnan(one["effect_size"])
    assert one["effect_label"] == "undefined" and "fewer than 2" in one["note"]
    assert one["estimate"] == pytest.approx(1.5)  # descriptive columns still filled
    flat = compare_datasets(_tidy([1.0, 1.0], [2.0, 2.0], metric="m"), by=["metric"]).iloc[0]
    assert np.isnan(flat["t"]) and "no variance" in flat["note"]
    # one constant group is still a valid Welch test
    half = compare_datasets(_tidy([1.0, 1.0, 1.0], [2.0, 3.0, 4.0], metric="m"), by=["metric"])
    assert np.isfinite(half["p_value"].iloc[0])


def test_non_finite_units_are_dropped_and_reported():
    row = compare_datasets(
        _tidy([1.0, 2.0, np.nan, 4.0], [2.0, 3.0, 4.0], metric="m"), by=["metric"], n_resamples=200
    ).iloc[0]
    assert row["n_a"] == 3 and "1 non-finite" in row["note"]
    assert row["p_value"] == pytest.approx(
        stats.ttest_ind([2.0, 3.0, 4.0], [1.0, 2.0, 4.0], equal_var=False).pvalue
    )


def test_detectable_effect_depends_on_the_design_not_the_data():
    zero = compare_datasets(_tidy([1.0, 2, 3], [1.0, 2, 3], metric="m"), by=["metric"]).iloc[0]
    huge = compare_datasets(_tidy([0.0, 0.1, 0.2], [10.0, 10.1, 10.2], metric="m"), by=["metric"])
    assert zero["effect_size"] == 0
    assert zero["d_for_power_80"] == huge["d_for_power_80"].iloc[0] == pytest.approx(3.07, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"unit": "subject"}, "missing column"), ({"groups": ("synthetic", "celeba")}, "celeba"),
     ({"dv": "dataset"}, "numeric"), ({"confidence": 95}, "confidence")],
)  # fmt: skip
def test_bad_input_is_a_clear_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare_datasets(_tidy([1.0, 2], [2.0, 3], metric="m"), by=["metric"], **kwargs)
