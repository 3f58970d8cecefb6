"""adjust_family against statsmodels' multipletests, per family and with NaN p-values."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from diffusion_circuits.stats.corrections import adjust_family

P = [0.001, 0.012, 0.02, 0.04, 0.3, 0.008]
FAMILY = ["a", "a", "a", "b", "b", "b"]


def test_single_family_matches_multipletests():
    out = adjust_family(pd.DataFrame({"p_value": P}))
    assert np.allclose(out["p_bonferroni"], multipletests(P, method="bonferroni")[1])
    assert np.allclose(out["p_holm"], multipletests(P, method="holm")[1])
    assert out["significant"].tolist() == (multipletests(P, method="holm")[1] < 0.05).tolist()


def test_holm_within_families_differs_from_one_family():
    table = pd.DataFrame({"p_value": P, "metric": FAMILY})
    within = adjust_family(table, family="metric")
    whole = adjust_family(table)
    for name in ("a", "b"):
        rows = table["metric"] == name
        expected = multipletests(table.loc[rows, "p_value"], method="holm")[1]
        assert np.allclose(within.loc[rows, "p_holm"], expected)
    assert not np.allclose(within["p_holm"], whole["p_holm"])
    # p = 0.02: Holm 0.024 within family a (3 tests), 0.06 among all 6
    assert within["p_holm"].iloc[2] == pytest.approx(0.024)
    assert whole["p_holm"].iloc[2] == pytest.approx(0.06)
    assert bool(within["significant"].iloc[2]) and not bool(whole["significant"].iloc[2])


def test_family_can_be_several_columns_and_index_may_repeat():
    table = pd.DataFrame(
        {"p_value": P, "metric": FAMILY, "timestep": [1, 2, 1, 2, 1, 2]}, index=[0] * 6
    )
    out = adjust_family(table, family=["metric", "timestep"])
    # family (a, 1) holds p = 0.001 and 0.02
    assert out["p_bonferroni"].iloc[2] == pytest.approx(0.04)
    assert out["p_holm"].iloc[0] == pytest.approx(0.002)


def test_nan_p_values_stay_nan_and_do_not_count():
    out = adjust_family(pd.DataFrame({"p_value": [0.01, np.nan, 0.04]}))
    assert np.isnan(out["p_holm"].iloc[1]) and np.isnan(out["p_bonferroni"].iloc[1])
    assert out["p_bonferroni"].iloc[[0, 2]].tolist() == pytest.approx([0.02, 0.08])
    assert out["p_holm"].iloc[[0, 2]].tolist() == pytest.approx(
        multipletests([0.01, 0.04], method="holm")[1].tolist()
    )
    assert out["significant"].isna().iloc[1]
    all_nan = adjust_family(pd.DataFrame({"p_value": [np.nan, np.nan]}))
    assert all_nan["p_holm"].isna().all()


def test_methods_choose_columns_and_the_significance_column():
    out = adjust_family(pd.DataFrame({"p_value": [0.02, 0.03]}), methods=("bonferroni",))
    assert "p_holm" not in out.columns
    assert out["significant"].tolist() == [True, False]  # bonferroni: 0.04, 0.06


def test_input_is_not_modified():
    table = pd.DataFrame({"p_value": P})
    adjust_family(table)
    assert list(table.columns) == ["p_value"]


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [(pd.DataFrame({"p_value": [0.1]}), {"methods": ("bh",)}, "unknown correction"),
     (pd.DataFrame({"p": [0.1]}), {}, "missing column"),
     (pd.DataFrame({"p_value": [0.1]}), {"family": "metric"}, "missing column"),
     (pd.DataFrame({"p_value": [1.5]}), {}, r"\[0, 1\]")],
)  # fmt: skip
def test_bad_input_is_a_clear_value_error(table, kwargs, message):
    with pytest.raises(ValueError, match=message):
        adjust_family(table, **kwargs)
