import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.data.lfw import expand_with_augmentation
from diffusion_circuits.data.matching import (
    BINARY_VIEWS,
    binary_views,
    marginal_gap,
    select_matched,
)

TARGET = {
    "smiling": 0.5,
    "male": 0.45,
    "young": 0.75,
    "eyeglasses": 0.15,
    "facial_hair": 0.16,
    "black_hair": 0.30,
    "brown_hair": 0.33,
    "blond_hair": 0.19,
    "grey_hair": 0.16,
}


def skewed_table(n: int, seed: int) -> pd.DataFrame:
    """Independent draws far from TARGET (e.g. 80% smiling, 75% male, 3% grey hair)."""
    rng = np.random.default_rng(seed)
    male = rng.random(n) < 0.75
    return pd.DataFrame(
        {
            "image_id": np.arange(n),
            "expression": np.where(rng.random(n) < 0.8, "smiling", "neutral"),
            "gender": np.where(male, "male", "female"),
            "age": np.where(rng.random(n) < 0.9, "young", "old"),
            "glasses": rng.random(n) < 0.05,
            "facial_hair": rng.random(n) < np.where(male, 0.4, 0.02),
            "hair_colour": rng.choice(
                ["black", "brown", "blond", "grey", "other"], n, p=[0.5, 0.3, 0.15, 0.03, 0.02]
            ),
        }
    )


def tiny(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "expression": ["neutral"] * n,
        "gender": ["female"] * n,
        "age": ["young"] * n,
        "glasses": [False] * n,
        "facial_hair": [False] * n,
        "hair_colour": ["other"] * n,
    }
    return pd.DataFrame(base | columns)


@pytest.fixture(scope="module")
def pool():
    return skewed_table(4000, seed=0)


def test_binary_views_by_hand():
    table = tiny(
        expression=["smiling", "neutral", "neutral"],
        gender=["male", "female", "male"],
        age=["old", "young", "young"],
        glasses=[True, False, False],
        facial_hair=[False, False, True],
        hair_colour=["black", "grey", "other"],
    )
    views = binary_views(table)
    assert list(views.columns) == list(BINARY_VIEWS) and set(views.dtypes) == {np.dtype(bool)}
    assert views.to_numpy().astype(int).tolist() == [
        [1, 1, 0, 1, 0, 1, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0, 0, 1],
        [0, 1, 1, 0, 1, 0, 0, 0, 0],
    ]
    gap = marginal_gap(table, {"male": 0.5, "grey_hair": 0.0, "young": 1.0})
    assert gap == pytest.approx({"male": 1 / 6, "grey_hair": 1 / 3, "young": 1 / 3})


def test_matched_marginals_are_much_closer_than_a_random_subset(pool):
    chosen = select_matched(pool, TARGET, 600, seed=0)
    assert len(np.unique(chosen)) == 600 and chosen.min() >= 0 and chosen.max() < 4000
    assert (np.diff(chosen) > 0).all()
    random = np.random.default_rng(0).choice(len(pool), 600, replace=False)
    matched_gap = marginal_gap(pool.iloc[chosen], TARGET)
    random_gap = marginal_gap(pool.iloc[random], TARGET)
    assert sum(matched_gap.values()) < sum(random_gap.values()) / 20
    # Grey hair is 2.4% of the pool and 16% of the target: only capped weights get it right.
    assert max(matched_gap.values()) < 0.015 < 0.1 < max(random_gap.values())


def test_infeasible_target_still_moves_toward_it(pool):
    # 2,000 rows at 16% grey hair need 320 grey-haired rows; the pool has about 97.
    chosen = select_matched(pool, TARGET, 2000, seed=0)
    random = np.random.default_rng(0).choice(len(pool), 2000, replace=False)
    matched_gap = marginal_gap(pool.iloc[chosen], TARGET)
    assert (
        binary_views(pool.iloc[chosen])["grey_hair"].sum() == binary_views(pool)["grey_hair"].sum()
    )
    assert sum(matched_gap.values()) < sum(marginal_gap(pool.iloc[random], TARGET).values()) / 1.5


def test_deterministic_and_seed_dependent(pool):
    first = select_matched(pool, TARGET, 600, seed=0)
    np.testing.assert_array_equal(first, select_matched(pool, TARGET, 600, seed=0))
    assert not np.array_equal(first, select_matched(pool, TARGET, 600, seed=1))


def test_exact_quota_worked_by_hand():
    # 8 rows, half smiling; 25% smiling of 4 rows is exactly 1 smiling row.
    table = tiny(expression=["smiling", "neutral"] * 4)
    rows = select_matched(table, {"smiling": 0.25}, 4, seed=0)
    assert binary_views(table.iloc[rows])["smiling"].sum() == 1
    # Only 2 smiling rows exist: a 50% target over 8 of 10 rows takes both and 6 others.
    table = tiny(expression=["smiling"] * 2 + ["neutral"] * 8)
    rows = select_matched(table, {"smiling": 0.5}, 8, seed=0)
    assert {0, 1} <= set(rows.tolist()) and len(rows) == 8
    # A view the table lacks cannot be matched; the rest still is.
    rows = select_matched(table, {"grey_hair": 0.2, "smiling": 0.2}, 5, seed=0)
    assert marginal_gap(table.iloc[rows], {"grey_hair": 0.2, "smiling": 0.2}) == {
        "grey_hair": pytest.approx(0.2),
        "smiling": pytest.approx(0.0),
    }
    assert len(select_matched(table, {}, 0, seed=0)) == 0


def test_errors():
    table = tiny(expression=["smiling", "neutral"] * 5)
    with pytest.raises(ValueError, match="cannot select 11 images from 10"):
        select_matched(table, {"male": 0.5}, 11, 0)
    with pytest.raises(ValueError, match="n must be a non-negative integer, got -1"):
        select_matched(table, {"male": 0.5}, -1, 0)
    with pytest.raises(ValueError, match=r"unknown target keys \['bald'\]"):
        select_matched(table, {"bald": 0.5}, 5, 0)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\], got \{'male': 1.2\}"):
        select_matched(table, {"male": 1.2}, 5, 0)
    with pytest.raises(ValueError, match="hair-colour targets sum to 1.2 > 1"):
        select_matched(table, {"black_hair": 0.6, "brown_hair": 0.6}, 5, 0)
    with pytest.raises(
        ValueError, match=r"gender has values \['M'\], allowed \['female', 'male'\]"
    ):
        select_matched(tiny(gender=["M", "male"]), {"male": 0.5}, 1, 0)
    # Text that merely looks like a bool is refused, not read as True.
    with pytest.raises(
        ValueError, match=r"glasses has values \['False'\], allowed \[False, True\]"
    ):
        select_matched(tiny(glasses=["False", False]), {"eyeglasses": 0.5}, 1, 0)
    with pytest.raises(ValueError, match=r"lacks columns \['age'\]"):
        select_matched(table.drop(columns="age"), {"male": 0.5}, 1, 0)
    with_na = table.astype({"gender": "string"})
    with_na.loc[3, "gender"] = pd.NA
    with pytest.raises(
        ValueError, match=r"gender has missing \(NA\) values in 1 of 10 rows; matching needs known"
    ):
        select_matched(with_na, {"male": 0.5}, 5, 0)


def test_the_lfw_stand_in_cannot_be_matched():
    lfw = expand_with_augmentation(np.zeros((2, 5, 5), np.uint8), 4, 8, seed=0)
    with pytest.raises(ValueError, match=r"expression has missing \(NA\) values in 4 of 4 rows"):
        select_matched(lfw.attributes, {"smiling": 0.5}, 2, 0)
