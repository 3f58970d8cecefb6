import numpy as np
import pandas as pd
import pytest
from scipy import stats

from diffusion_circuits.analysis.circuits import (
    baseline_agreement,
    circuit_complexity,
    circuit_robustness,
    expected_jaccard,
    expected_jaccard_by_type,
    top_components,
)


def component_rows(
    impacts: dict[str, list[float]], timestep: int = 100, method: str = "mean"
) -> pd.DataFrame:
    rows = []
    for target, values in impacts.items():
        for image, value in enumerate(values):
            rows.append(
                {
                    "image_id": image,
                    "timestep": timestep,
                    "family": "component_ablation",
                    "target": target,
                    "method": method,
                    "metric": "impact",
                    "value": value,
                }
            )
    return pd.DataFrame(rows)


HEADS = {"mid.attn.0.head.0": [1.0, 2.0], "mid.attn.0.head.1": [1.0, 0.0]}
RESNETS = {"mid.resnet.0.residual": [1.0, -1.0], "up.0.resnet.0.residual": [1.0, 0.0]}
# component -> type, as analysis.circuits.component_types reads it from a probe
TYPES = {**dict.fromkeys(HEADS, "head"), **dict.fromkeys(RESNETS, "resnet")}


def test_circuit_complexity_is_the_participation_ratio_per_image_and_type():
    table = component_rows({**HEADS, **RESNETS})
    out = circuit_complexity(table, TYPES).sort_values(["metric", "image_id"])
    combined = out[out.metric == "circuit_complexity"]
    assert combined["value"].tolist() == pytest.approx([1.0, 0.25])
    assert set(combined["n_components"]) == {4}
    heads = out[out.metric == "circuit_complexity_head"]
    assert heads["value"].tolist() == pytest.approx([1.0, 0.5])  # [1, 1] and [2, 0]
    resnets = out[out.metric == "circuit_complexity_resnet"]
    assert resnets["value"].tolist()[0] == pytest.approx(1.0) and np.isnan(resnets["value"].iloc[1])
    assert set(out["component_type"]) == {"all", "head", "resnet"}
    # Zero and resample rows do not enter the (mean-ablation) ratio.
    extra = component_rows({**HEADS, **RESNETS}, method="zero").assign(value=5.0)
    assert circuit_complexity(pd.concat([table, extra]), TYPES)["value"].equals(
        circuit_complexity(table, TYPES)["value"]
    )
    with pytest.raises(ValueError, match="no component_ablation"):
        circuit_complexity(table.assign(family="layer_ablation"), TYPES)


def test_a_component_of_no_known_type_is_an_error_not_a_guess():
    table = component_rows({**HEADS, **RESNETS})
    with pytest.raises(ValueError, match="no known type.*mid.resnet.0.residual"):
        circuit_complexity(table, {**dict.fromkeys(HEADS, "head")})


def test_feed_forward_branches_are_their_own_type():
    branches = {"block.0.ff": [1.0, 1.0], "block.1.ff": [3.0, 1.0]}
    types = {**dict.fromkeys(HEADS, "head"), **dict.fromkeys(branches, "ff")}
    out = circuit_complexity(component_rows({**HEADS, **branches}), types)
    assert set(out["component_type"]) == {"all", "head", "ff"}
    ff = out[out.metric == "circuit_complexity_ff"].sort_values("image_id")
    assert ff["value"].tolist() == pytest.approx([0.8, 1.0])  # (1+3)^2/(2*(1+9)), [1, 1]


def test_expected_jaccard_by_enumeration():
    import itertools

    n, k = 6, 2
    subsets = [set(c) for c in itertools.combinations(range(n), k)]
    brute = np.mean([len(a & b) / len(a | b) for a in subsets for b in subsets])
    assert expected_jaccard(k, k, n) == pytest.approx(brute)
    assert expected_jaccard(3, 3, 3) == 1.0


ABC = dict.fromkeys("abc", "resnet")


def test_top_components_and_robustness_against_chance():
    early = component_rows({"a": [3.0], "b": [2.0], "c": [1.0]}, 100)
    late = component_rows({"a": [1.0], "b": [2.0], "c": [3.0]}, 900)
    tops = pd.concat(
        [
            top_components(pd.concat([early, late]), k=2, types=ABC).assign(dataset="synthetic"),
            top_components(early, k=2, types=ABC).assign(dataset="natural"),
        ]
    )
    tops = tops[tops.component_type == "all"]
    assert set(tops["n_components"]) == {3}
    assert tops[(tops.dataset == "synthetic") & (tops.timestep == 100)]["target"].tolist() == [
        "a",
        "b",
    ]
    robust = circuit_robustness(tops)
    across = robust[robust["comparison"] == "across_datasets"]
    assert across["value"].tolist() == [1.0]  # same top-2 at t=100
    # Two random 2-subsets of 3 share 1 element (J = 1/3) with p 2/3, 2 (J = 1) with p 1/3.
    assert across["chance"].tolist() == pytest.approx([2 / 3 * 1 / 3 + 1 / 3])
    assert across["value_minus_chance"].tolist() == pytest.approx([1 - 5 / 9])
    within = robust[
        (robust["comparison"] == "across_timesteps") & (robust["dataset"] == "synthetic")
    ]
    assert within["value"].tolist() == pytest.approx([1 / 3])  # {a,b} vs {b,c}
    assert np.isfinite(robust["value"]).all()


def test_baseline_agreement_is_spearman_of_mean_importance():
    mean = component_rows(
        {"a": [1.0, 3.0], "b": [2.0, 2.0], "c.head.0": [0.0, 1.0], "d": [5.0, 5.0]}
    )
    zero = component_rows({"a": [4.0], "b": [3.0], "c.head.0": [1.0], "d": [9.0]}, method="zero")
    resample = component_rows(
        {"a": [0.0], "b": [1.0], "c.head.0": [2.0], "d": [3.0]}, method="resample"
    )
    types = {"a": "resnet", "b": "resnet", "c.head.0": "head", "d": "resnet"}
    out = baseline_agreement(pd.concat([mean, zero, resample]), types)
    combined = out[out.component_type == "all"].set_index(["method_a", "method_b"])
    # Only image 0 had every baseline: mean (1, 2, 0, 5) vs zero (4, 3, 1, 9).
    expected = stats.spearmanr([1, 2, 0, 5], [4, 3, 1, 9])[0]
    assert combined.loc[("mean", "zero"), "value"] == pytest.approx(expected)
    assert combined.loc[("mean", "zero"), "n_images"] == 1
    assert set(out["metric"]) == {"baseline_rank_agreement"}
    assert len(combined) == 3


def test_type_aware_chance_draws_within_each_type():
    # 4 ResNets carry every large impact, 6 heads barely matter: both datasets' top-2 are
    # ResNets, so chance is two random 2-subsets of the 4 ResNets, not of all 10 components
    impacts = {f"r{i}": [5.0 - i] for i in range(4)}
    impacts |= {f"a.head.{h}": [0.01 * h] for h in range(6)}
    rows = component_rows(impacts)
    types = {t: "head" if ".head." in t else "resnet" for t in impacts}
    tops = pd.concat(
        [top_components(rows, k=2, types=types).assign(dataset=d) for d in ("synthetic", "natural")]
    )
    across = circuit_robustness(tops).query("comparison == 'across_datasets'")
    every = across[across.component_type == "all"].iloc[0]
    assert every["chance"] == pytest.approx(expected_jaccard(2, 2, 10))
    assert every["chance_by_type"] == pytest.approx(expected_jaccard(2, 2, 4))
    assert every["value_minus_chance_by_type"] == pytest.approx(1.0 - expected_jaccard(2, 2, 4))
    resnets = across[across.component_type == "resnet"].iloc[0]
    assert resnets["chance_by_type"] == resnets["chance"]
    # a mixed set: the resnets overlap with p 1/2, the heads with p 1/3, independently, so
    # m = 0, 1, 2 with p 1/3, 1/2, 1/6 and J = m / (4 - m): 1/2 * 1/3 + 1/6 = 1/3
    mixed = expected_jaccard_by_type({"resnet": 1, "head": 1}, {"resnet": 1, "head": 1},
                                     {"resnet": 2, "head": 3})  # fmt: skip
    assert mixed == pytest.approx(1 / 3)
