"""Seed-level intervals keep their nominal coverage with 3 seeds (simulated crossed design).

Each simulated study has 3 training seeds per dataset; the same 30 probe images serve every
seed of a dataset (crossed: image effects shared across seeds), plus per-(seed, image)
noise. The target of a claim about a dataset is its population mean: over training runs
*and* images, so a new draw of images counts as much as a new training seed. Three
regimes: the seeds dominate, the images dominate, both matter.
"""

import numpy as np
import pytest
from scipy import stats

from diffusion_circuits.stats.seed_level import (
    crossed_difference,
    crossed_mean,
    crossed_ratio,
    detectable_effect,
    fieller_interval,
    t_interval,
    t_interval_with_shared_error,
    units_needed,
    welch_interval,
)

N_STUDIES, N_SEEDS, N_IMAGES = 2000, 3, 30
# (seed sd, image sd, residual sd)
REGIMES = {"seeds dominate": (1.0, 0.1, 0.5), "images dominate": (0.05, 1.0, 0.5),
           "both": (0.3, 0.3, 0.5)}  # fmt: skip


def _studies(rng, mean, seed_sd, image_sd, noise_sd, n_studies=N_STUDIES):
    """Seeds x images tables of crossed studies whose population mean is ``mean``."""
    seeds = rng.normal(0, seed_sd, (n_studies, N_SEEDS, 1))
    images = rng.normal(0, image_sd, (n_studies, 1, N_IMAGES))
    return mean + seeds + images + rng.normal(0, noise_sd, (n_studies, N_SEEDS, N_IMAGES))


def _coverage(rows, truth) -> float:
    low = np.array([r["ci_low"] for r in rows])
    high = np.array([r["ci_high"] for r in rows])
    return float(np.mean((low <= truth) & (truth <= high)))


@pytest.mark.parametrize("regime", REGIMES)
def test_crossed_intervals_cover_a_mean_a_difference_and_a_ratio(regime):
    rng = np.random.default_rng(list(REGIMES).index(regime))
    a = _studies(rng, 10.0, *REGIMES[regime])
    b = _studies(rng, 10.8, *REGIMES[regime])
    assert _coverage([crossed_mean(t) for t in a], 10.0) >= 0.93
    assert _coverage([crossed_difference(x, y) for x, y in zip(a, b, strict=True)], 0.8) >= 0.93
    assert _coverage([crossed_ratio(x, y) for x, y in zip(a, b, strict=True)], 1.08) >= 0.93


def test_seed_means_alone_under_cover_when_images_dominate():
    # the interval this replaces: t on the seed means misses the shared image draw
    rng = np.random.default_rng(7)
    a = _studies(rng, 10.0, *REGIMES["images dominate"])
    nested = [t_interval(t.mean(axis=1)) for t in a]
    assert _coverage(nested, 10.0) < 0.85


@pytest.mark.parametrize("regime", REGIMES)
def test_a_shared_image_error_added_to_the_seed_spread_keeps_the_coverage(regime):
    # per-seed statistics of one image set (as CKA per trained pair), each with its image SE
    rng = np.random.default_rng(10 + list(REGIMES).index(regime))
    a = _studies(rng, 10.0, *REGIMES[regime])
    rows = [t_interval_with_shared_error(t.mean(axis=1), t.std(axis=1, ddof=1) / np.sqrt(N_IMAGES))
            for t in a]  # fmt: skip
    assert _coverage(rows, 10.0) >= 0.93
    if regime == "images dominate":  # the seed spread alone misses the shared image draw
        assert _coverage([t_interval(t.mean(axis=1)) for t in a], 10.0) < 0.85


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


def test_power_statements_match_pingouin():
    import pingouin as pg

    # 3 vs 3 seeds, SD 1: the detectable effect in d units is pingouin's 3.07 (t approximation)
    se = np.sqrt(2 / 3)
    df = 4.0
    assert detectable_effect(se, df) / 1.0 == pytest.approx(pg.power_ttest2n(nx=3, ny=3, power=0.8), rel=0.05)  # fmt: skip
    assert units_needed(0.8, se, [3, 3]) == np.ceil(pg.power_ttest(d=0.8, power=0.8))
    assert np.isnan(detectable_effect(np.nan, 2.0)) and np.isnan(units_needed(0.0, 1.0, [3]))
