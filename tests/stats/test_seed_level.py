"""Seed-level intervals keep their nominal coverage with 3 seeds (simulated crossed design).

Each simulated study has 3 training seeds per dataset; the same 30 probe images serve every
seed of a dataset (crossed: image effects shared across seeds), plus per-(seed, image)
noise. The target of a seed-level claim is the mean over training runs on these images.
"""

import numpy as np
import pytest
from scipy import stats

from diffusion_circuits.stats.hierarchical import (
    hierarchical_bootstrap_ci,
    hierarchical_mean_ci,
    ratio,
)
from diffusion_circuits.stats.seed_level import (
    detectable_effect,
    fieller_interval,
    t_interval,
    units_needed,
    welch_interval,
)

N_STUDIES, N_SEEDS, N_IMAGES = 3000, 3, 30


def _seed_means(rng, mean, seed_sd, n_studies=N_STUDIES):
    """Per-seed means of crossed studies and each study's target (mean over runs, these images)."""
    images = rng.normal(0, 0.5, (n_studies, 1, N_IMAGES))
    seeds = rng.normal(0, seed_sd, (n_studies, N_SEEDS, 1))
    values = mean + seeds + images + rng.normal(0, 0.5, (n_studies, N_SEEDS, N_IMAGES))
    return values.mean(axis=2), mean + images.mean(axis=(1, 2))


def _coverage(intervals, truth) -> float:
    low, high = np.array(intervals).T
    return float(np.mean((low <= truth) & (truth <= high)))


def test_t_interval_covers_a_mean_with_three_seeds():
    rng = np.random.default_rng(0)
    means, truth = _seed_means(rng, 5.0, 1.0)
    rows = [t_interval(m) for m in means]
    coverage = _coverage([(r["ci_low"], r["ci_high"]) for r in rows], truth)
    assert coverage >= 0.93, coverage


def test_welch_and_fieller_cover_a_two_dataset_contrast_with_three_seeds():
    rng = np.random.default_rng(1)
    a, truth_a = _seed_means(rng, 10.0, 0.5)
    b, truth_b = _seed_means(rng, 10.84, 1.0)  # unequal spread between the datasets
    welch = [welch_interval(x, y) for x, y in zip(a, b, strict=True)]
    assert _coverage([(r["ci_low"], r["ci_high"]) for r in welch], truth_b - truth_a) >= 0.93
    fieller = [fieller_interval(x, y) for x, y in zip(a, b, strict=True)]
    assert _coverage([(r["ci_low"], r["ci_high"]) for r in fieller], truth_b / truth_a) >= 0.93


def test_the_interval_and_the_test_come_from_one_model():
    rng = np.random.default_rng(2)
    for _ in range(50):
        a, b = rng.normal(0, 1, 3), rng.normal(1.5, 1, 3)
        row = welch_interval(a, b)
        excludes = row["ci_low"] > 0 or row["ci_high"] < 0
        assert excludes == (row["p_value"] < 0.05)
        assert row["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
        # Fieller excludes 1 exactly when Welch rejects (a and b shifted away from 0)
        f = fieller_interval(a + 10, b + 10)
        assert (f["ci_low"] > 1 or f["ci_high"] < 1) == (
            welch_interval(a + 10, b + 10)["p_value"] < 0.05
        )


def test_the_former_bootstrap_names_now_give_the_t_intervals():
    seeds = [np.array([1.0, 1.2]), np.array([2.0]), np.array([3.0, 2.8])]
    estimate, low, high = hierarchical_mean_ci(seeds)
    row = t_interval([1.1, 2.0, 2.9])
    assert (estimate, low, high) == pytest.approx((row["estimate"], row["ci_low"], row["ci_high"]))
    other = [np.array([4.0]), np.array([5.0]), np.array([6.5])]
    assert hierarchical_bootstrap_ci(seeds, other) == pytest.approx(
        (welch_interval([1.1, 2.0, 2.9], [4.0, 5.0, 6.5])["ci_low"],
         welch_interval([1.1, 2.0, 2.9], [4.0, 5.0, 6.5])["ci_high"]))  # fmt: skip
    assert hierarchical_bootstrap_ci(seeds, other, statistic=ratio)[0] > 1


def test_power_statements_match_pingouin():
    import pingouin as pg

    # 3 vs 3 seeds, SD 1: the detectable effect in d units is pingouin's 3.07 (t approximation)
    se = np.sqrt(2 / 3)
    df = 4.0
    assert detectable_effect(se, df) / 1.0 == pytest.approx(pg.power_ttest2n(nx=3, ny=3, power=0.8), rel=0.05)  # fmt: skip
    assert units_needed(0.8, se, [3, 3]) == np.ceil(pg.power_ttest(d=0.8, power=0.8))
    assert np.isnan(detectable_effect(np.nan, 2.0)) and np.isnan(units_needed(0.0, 1.0, [3]))
