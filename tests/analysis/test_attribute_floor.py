"""The attribute-frequency error of real draws: the floor a perfect sampler scores."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from diffusion_circuits.analysis.sample_quality import error_of_draws, max_frequency_error


def test_identical_constant_labels_have_no_error():
    labels = pd.DataFrame({"glasses": ["no"] * 10})
    floor = error_of_draws(labels, labels, {"glasses": ["no", "yes"]}, n=5, seed=0, draws=50)
    assert floor == {"n": 5, "draws": 50, "mean": 0.0, "q95": 0.0}


def test_one_draw_of_a_balanced_attribute_misses_by_one_half():
    labels = pd.DataFrame({"smile": ["yes", "no"] * 5})
    floor = error_of_draws(labels, labels, {"smile": ["no", "yes"]}, n=1, seed=0, draws=20)
    assert floor["mean"] == 0.5 and floor["q95"] == 0.5


def test_the_worst_attribute_sets_the_error():
    predicted = pd.DataFrame({"hair": ["dark"] * 8, "age": ["young"] * 8})
    truth = pd.DataFrame({"hair": ["dark"] * 8, "age": ["young"] * 6 + ["old"] * 2})
    heads = {"hair": ["dark"], "age": ["old", "young"]}
    floor = error_of_draws(predicted, truth, heads, n=4, seed=1, draws=30)
    assert floor["mean"] == pytest.approx(0.25) and floor["q95"] == pytest.approx(0.25)


def test_mean_matches_the_binomial_expectation():
    """n fair draws: E|X/n - 1/2| for X ~ Binomial(n, 1/2), computed with scipy."""
    labels = pd.DataFrame({"gender": ["f", "m"] * 50})
    n = 64
    floor = error_of_draws(labels, labels, {"gender": ["f", "m"]}, n=n, seed=0, draws=4000)
    k = np.arange(n + 1)
    expected = float(np.sum(stats.binom.pmf(k, n, 0.5) * np.abs(k / n - 0.5)))
    assert floor["mean"] == pytest.approx(expected, abs=0.003)
    assert floor["q95"] > floor["mean"]


def test_max_frequency_error_by_hand():
    assert max_frequency_error(
        np.array([0.2, 0.8, 0.5]), np.array([0.3, 0.7, 0.9])
    ) == pytest.approx(0.4)
    assert max_frequency_error(pd.Series([0.5, 0.5]), pd.Series([0.5, 0.5])) == 0.0
