"""The verdict rule, branch by branch, on the rows issue 12 quotes from the landed report."""

import numpy as np
import pytest

from diffusion_circuits.report.build import paper_directions, shared_tests
from diffusion_circuits.report.claims import Claim, load_claims
from diffusion_circuits.report.measure import claim_tests
from diffusion_circuits.report.verdict import (
    DESIGN_INPUTS,
    Measurement,
    claim_kind,
    is_model_level,
    paper_threshold,
    verdict,
)

CLAIMS = {c.id: c for c in load_claims()}


def claim(**kwargs) -> Claim:
    base = dict(id="x", location="here", quote="1", quantity="accuracy", statistic="mean",
                value=1.0)  # fmt: skip
    return Claim(**{**base, **kwargs})


def judge(claim_id: str, ours: Measurement) -> str:
    return verdict(CLAIMS[claim_id], ours)[0]


def significance(p: float, sign: float, paper_sign: float = 1.0, n: int = 1) -> Measurement:
    return Measurement(p, unit="seed", tests=("t",) * n, p_adj=(p,) * n, signs=(sign,) * n,
                       paper_signs=(paper_sign,) * n)  # fmt: skip


# ---- significance -------------------------------------------------------------------------


def test_significant_but_reversed_is_opposite_direction():
    # t1_p_t100: the paper's p < 0.001 with ratio 1.084; ours significant with ratio < 1.
    assert judge("t1_p_t100", significance(1.7e-5, sign=-1.0)) == "opposite direction"
    assert judge("t1_p_t100", significance(1.7e-5, sign=1.0)) == "replicated"


def test_the_papers_own_threshold_is_checked():
    # "p < 0.001" at our p_holm = 0.017: significant at 0.05, not at the paper's bound.
    assert paper_threshold(CLAIMS["abs_cc_ratio_p"]) == 0.001
    assert judge("abs_cc_ratio_p", significance(0.017, sign=1.0)) == "not replicated"
    assert judge("abs_cc_ratio_p", significance(0.0009, sign=1.0)) == "replicated"
    # an exact printed p (= 0.023) asserts significance at 0.05
    assert paper_threshold(CLAIMS["t1_p_t600"]) == 0.05
    assert judge("t1_p_t600", significance(0.04, sign=-1.0, paper_sign=-1.0)) == "replicated"


def test_every_test_of_an_all_metrics_claim_must_pass():
    ours = Measurement(0.2, tests=("a", "b"), p_adj=(0.01, 0.2), signs=(1.0, 1.0),
                       paper_signs=(1.0, 1.0))  # fmt: skip
    assert judge("f2_p_below_005", ours) == "not replicated"
    reversed_one = Measurement(0.01, tests=("a", "b"), p_adj=(0.01, 0.001), signs=(1.0, -1.0),
                               paper_signs=(1.0, 1.0))  # fmt: skip
    assert judge("f2_p_below_005", reversed_one) == "opposite direction"
    assert judge("f2_p_below_005", significance(0.01, 1.0, n=4)) == "replicated"


def test_nan_p_is_not_significant():
    assert judge("t4_attention_entropy_p", significance(np.nan, 1.0)) == "not replicated"


# ---- directional --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim_id", "ours", "expected"),
    [
        # the +8.4 % increase against our -1.2 % [-2.2, -0.3]
        ("d51_cc_increase", Measurement(-1.2, -2.2, -0.3), "opposite direction"),
        ("d51_cc_increase", Measurement(3.0, 1.0, 5.0), "replicated"),
        ("d51_cc_increase", Measurement(1.0, -1.0, 3.0), "not replicated"),
        # the ratio 1.084 against our 0.988 [0.978, 0.997]
        ("abs_cc_ratio", Measurement(0.988, 0.978, 0.997), "opposite direction"),
        ("abs_cc_ratio", Measurement(1.05, 1.01, 1.09), "replicated"),
        ("abs_cc_ratio", Measurement(1.0, 0.95, 1.05), "not replicated"),
        ("abs_cc_ratio", Measurement(1.2), "not replicated"),  # no CI: direction not established
        # a signed difference (paper -0.011)
        ("t4_intervention_impact_difference", Measurement(-0.9, -1.1, -0.7), "replicated"),
        ("t4_intervention_impact_difference", Measurement(0.9, 0.7, 1.1), "opposite direction"),
    ],
)
def test_directional_claims_are_judged_by_the_ci_against_the_null(claim_id, ours, expected):
    assert claim_kind(CLAIMS[claim_id]) == "directional"
    assert judge(claim_id, ours) == expected


# ---- point values -------------------------------------------------------------------------


def test_a_ci_that_excludes_the_papers_value_is_not_overridden_by_a_tolerance():
    # accuracy 97.6 against our 94.69 [94.46, 94.92]: within 10 %, but outside the CI.
    assert judge("acc_synthetic_t300", Measurement(94.69, 94.46, 94.92)) == "not replicated"
    assert judge("acc_synthetic_t300", Measurement(97.0, 96.0, 98.0)) == "replicated"


def test_without_a_ci_the_tolerance_is_a_fraction_of_the_papers_value():
    # paper 10: |ours - 10| <= 1 replicates. Relative to ours (9.05 -> 0.905), 0.95 would fail.
    paper = claim(value=10.0)
    assert verdict(paper, Measurement(9.05))[0] == "replicated"
    assert verdict(paper, Measurement(11.0))[0] == "replicated"
    assert verdict(paper, Measurement(8.9))[0] == "not replicated"
    assert judge("abs_n_roles", Measurement(22.0)) == "not replicated"


def test_ranks_and_bounds():
    assert judge("t3_decoder_middle_rank", Measurement(3.0)) == "replicated"
    assert judge("t3_middle_rank", Measurement(7.0)) == "not replicated"
    bound = claim(quantity="head_entropy_range", statistic="range_low", comparator=">", value=2.0)
    assert verdict(bound, Measurement(2.5))[0] == "replicated"
    assert verdict(bound, Measurement(1.5))[0] == "not replicated"


# ---- effect sizes -------------------------------------------------------------------------


def test_effect_sizes_need_label_and_sign():
    # Table 4 prints d = 0.8 for circuit complexity; its difference (+0.002) gives the sign.
    plus = dict(unit="seed", paper_signs=(1.0,))
    assert judge("t4_circuit_complexity_d", Measurement(-0.84, direction_ci=(-0.02, -0.01), **plus)) == "opposite direction"  # fmt: skip
    assert judge("t4_circuit_complexity_d", Measurement(0.85, direction_ci=(0.01, 0.02), **plus)) == "replicated"  # fmt: skip
    assert judge("t4_circuit_complexity_d", Measurement(0.34, direction_ci=(0.01, 0.02), **plus)) == "not replicated"  # fmt: skip
    assert judge("t4_circuit_complexity_d", Measurement(0.9, direction_ci=(-0.01, 0.02), **plus)) == "not replicated"  # fmt: skip
    # intervention impact: |d| = 0.7 printed, difference -0.011: the paper's sign is negative
    minus = dict(unit="seed", paper_signs=(-1.0,))
    assert judge("t4_intervention_impact_d", Measurement(-0.7, direction_ci=(-1.1, -0.7), **minus)) == "replicated"  # fmt: skip
    assert judge("t4_intervention_impact_d", Measurement(-1.48, direction_ci=(-1.1, -0.7), **minus)) == "not replicated"  # fmt: skip


def test_the_papers_direction_of_a_test_comes_from_its_ratio_or_difference():
    directions = paper_directions(list(CLAIMS.values()))
    assert directions["circuit_complexity t=100"] == 1.0  # ratio 1.084
    assert directions["circuit_complexity t=600"] == -1.0  # ratio 0.966
    assert directions["table4 intervention_impact"] == -1.0  # difference -0.011
    assert directions["table4 circuit_complexity"] == 1.0


# ---- not comparable, not testable ---------------------------------------------------------


@pytest.mark.parametrize("claim_id", ["abs_n_synthetic", "m_heads", "m_width", "m_timesteps",
                                      "s33_ci_level", "intro_n_per_condition", "d54_params"])  # fmt: skip
def test_design_inputs_are_not_comparable_even_when_equal(claim_id):
    c = CLAIMS[claim_id]
    assert c.quantity in DESIGN_INPUTS
    assert judge(claim_id, Measurement(c.value)) == "not comparable (design input)"


@pytest.mark.parametrize(("claim_id", "word"), [("fc_synthetic_t100", "activation units^2"),
    ("ife_early_low", "estimator"), ("t4_feature_complexity_natural", "units^2"),
    ("t1_synthetic_t100", "participation ratio")])  # fmt: skip
def test_scale_dependent_quantities_are_not_comparable_with_the_reason(claim_id, word):
    result, kind, why = verdict(CLAIMS[claim_id], Measurement(0.02, 0.01, 0.03))
    assert (result, kind) == ("not comparable", "scale") and word in why


def test_directions_and_effect_sizes_of_scale_dependent_quantities_stay_comparable():
    assert claim_kind(CLAIMS["t4_feature_complexity_difference"]) == "directional"
    assert claim_kind(CLAIMS["t4_feature_complexity_d"]) == "effect size"


def test_model_level_claims_with_one_seed_are_not_testable():
    one = Measurement(1e-6, 0.9, 0.95, unit="image", tests=("t",), p_adj=(1e-6,), signs=(-1.0,),
                      paper_signs=(1.0,), testable=False)  # fmt: skip
    for claim_id in ("abs_cc_ratio", "t1_p_t100", "t4_circuit_complexity_d", "ent_div_t100",
                     "cross_acc", "intro_power"):  # fmt: skip
        assert is_model_level(CLAIMS[claim_id])
        assert judge(claim_id, one) == "not testable: one model per dataset"
    # a claim about one model is judged at the image unit
    assert not is_model_level(CLAIMS["acc_synthetic_t300"])
    assert judge("acc_synthetic_t300", Measurement(97.0, 96.0, 98.0, testable=False)) == "replicated"  # fmt: skip


def test_missing_measurement_is_not_comparable_with_its_reason():
    result, _, why = verdict(CLAIMS["t2_edge_entropy"],
                             Measurement(np.nan, comparable=False, reason="no edge head"))  # fmt: skip
    assert (result, why) == ("not comparable", "no edge head")


# ---- one test, one verdict ----------------------------------------------------------------


def test_claims_about_the_same_test_are_linked_to_the_first():
    links = shared_tests(list(CLAIMS.values()))
    # p < 0.001 on the Table 4 complexity test: abstract and Table 4 make one assertion
    assert claim_tests(CLAIMS["abs_cc_ratio_p"]) == ("table4 circuit_complexity",)
    assert links["t4_circuit_complexity_p"] == "abs_cc_ratio_p"
    # "p < 0.05 across all metrics" twice, "p < 0.001 across all metrics" twice: two assertions
    assert links["s47_all_significant"] == "f2_p_below_005"
    assert links["c_all_p"] == "d51_all_p" and "d51_all_p" not in links
    assert len(claim_tests(CLAIMS["d51_all_p"])) == 4
    # different timesteps are different tests
    assert "t1_p_t300" not in links
