"""The claims table and report on synthetic studies with one and with three seeds."""

import dataclasses
import math

import pandas as pd
import pytest
from scipy import stats

from diffusion_circuits.report.build import CLAIM_COLUMNS, claims_table
from diffusion_circuits.report.claims import load_claims
from diffusion_circuits.report.inputs import distinct_sources
from diffusion_circuits.report.measure import _effect_size_range
from diffusion_circuits.report.render import render_report
from diffusion_circuits.report.summary import changed_verdicts, summary_lines, top_findings
from diffusion_circuits.report.verdict import RULE_TEXT

CLAIMS = load_claims()


@pytest.fixture(scope="module")
def single(one_seed) -> pd.DataFrame:
    return claims_table(CLAIMS, one_seed)


@pytest.fixture(scope="module")
def triple(three_seeds) -> pd.DataFrame:
    return claims_table(CLAIMS, three_seeds)


def _row(table: pd.DataFrame, claim_id: str) -> pd.Series:
    return table.set_index("claim_id").loc[claim_id]


def test_columns_and_row_order_are_stable(single, triple):
    assert list(single.columns) == [*CLAIM_COLUMNS, "verdict_seed0", "seeds_agreeing",
                                    "seed_dependent"]  # fmt: skip
    assert list(triple.columns)[-5:] == ["verdict_seed0", "verdict_seed1", "verdict_seed2",
                                         "seeds_agreeing", "seed_dependent"]  # fmt: skip
    assert single["claim_id"].tolist() == [c.id for c in CLAIMS]


def test_one_seed_model_level_claims_are_not_testable_but_each_seed_is_judged(single):
    model = single[single["model_level"]]
    assert (model["verdict"] == "not testable: one model per dataset").all()
    assert not (single.loc[~single["model_level"], "verdict"] == "not testable: one model per dataset").any()  # fmt: skip
    # what the one pair of models says on its own: natural complexity is lower (fixture)
    assert _row(single, "t1_ratio_t100")["verdict_seed0"] == "opposite"
    assert _row(single, "t1_ratio_t100")["unit"] == "image"


def test_three_seeds_use_the_seed_unit_and_holm_adjusted_p(triple, three_seeds):
    ratio = _row(triple, "t1_ratio_t100")
    assert ratio["unit"] == "seed" and ratio["ci_method"].startswith("Fieller")
    assert ratio["verdict"] == "opposite" and ratio["ci_high"] < 1
    inference = three_seeds.inference
    test = inference[(inference["family"] == "circuit_complexity") & (inference["timestep"] == 100)
                     & (inference["unit"] == "seed") & (inference["seed_scope"] == "all")]  # fmt: skip
    p = _row(triple, "t1_p_t100")
    assert float(p["p_adj"]) == pytest.approx(test["p_holm"].iloc[0], rel=1e-2)
    assert test["p_holm"].iloc[0] > test["p_value"].iloc[0]  # Holm over four timesteps
    assert p["tests"] == "circuit_complexity t=100"
    # the per-seed verdicts are recomputed on each seed's models, at the image unit
    assert _row(triple, "t1_ratio_t100")["seeds_agreeing"] == 3


def test_head_importance_respects_the_claims_timestep(triple):
    # fixture: a head's impact is 1e-3 * t / 100, so t = 300 gives 3e-3 (all four: 4.75e-3)
    assert _row(triple, "t2_edge_importance")["ours"] == pytest.approx(3e-3, rel=0.01)


def test_sample_sizes_state_distinct_sources(single):
    row = _row(single, "abs_n_celeba")
    assert row["verdict"] == "not comparable (design input)"
    assert "2000 images = 100 distinct source images x 20 augmentations" in row["reason"]


def test_distinct_sources_from_metrics_else_attributes(tmp_path):
    assert distinct_sources({"n_distinct_sources": 100}, tmp_path / "none.parquet") == 100
    path = tmp_path / "attributes.parquet"
    pd.DataFrame({"source": ["a", "a", "b", "c"]}).to_parquet(path)
    assert distinct_sources({}, path) == 3
    assert distinct_sources({}, tmp_path / "none.parquet") is None


def test_changed_verdicts_against_the_previous_table(single):
    previous = single[["claim_id", "verdict"]].copy()
    previous.loc[previous["claim_id"] == "abs_n_roles", "verdict"] = "replicated"
    previous = previous[previous["claim_id"] != "cross_acc"]
    changes = changed_verdicts(single, previous)
    assert changes.set_index("claim_id").to_dict("index") == {
        "abs_n_roles": {"before": "replicated", "after": "inconclusive"},  # one model: no CI
        "cross_acc": {"before": "(new)", "after": "not testable: one model per dataset"},
    }
    assert changed_verdicts(single, None).empty
    assert "None: no previous committed claims table." in summary_lines(single, None)


def test_top_findings_follow_the_documented_order(triple):
    findings = top_findings(triple)
    assert len(findings) == 5
    # headline claims first, the dataset comparisons among them first, most severe first
    assert findings[0].startswith("**opposite** — Abstract")
    assert all("Abstract" in f or "6 Conclusion" in f for f in findings)


def test_seed_dependent_claims_are_flagged(triple):
    table = triple.copy()
    assert not table.loc[0, "seed_dependent"]  # a design input: the same under every seed
    table.loc[0, ["verdict_seed1", "seed_dependent"]] = ["replicated", True]
    text = "\n".join(summary_lines(table, None))
    assert f"{int(triple['seed_dependent'].sum()) + 1} claims change verdict with the seed" in text
    assert f"| {table.loc[0, 'claim_id']} | not comparable (design input) |" in text
    # the flag follows from the per-seed columns
    seeds = triple[["verdict_seed0", "verdict_seed1", "verdict_seed2"]]
    assert (triple["seed_dependent"] == (seeds.nunique(axis=1) > 1)).all()


def test_report_states_the_rule_and_each_rows_unit(triple):
    text = render_report(triple, CLAIMS, {"git commit": "abc"}, 8_600_000, None)
    assert RULE_TEXT in text
    assert "percentile bootstraps over images" not in text
    assert "| seed: Fieller interval on crossed seeds x images means" in text
    assert "| seed: t interval on per-seed means" in text
    assert "percentile bootstrap over seeds" not in text
    assert "### One test, one verdict" in text and "`table4 circuit_complexity`" in text


def test_a_missing_inference_column_is_a_clear_error(one_seed):
    broken = dataclasses.replace(one_seed, inference=one_seed.inference.drop(columns="p_holm"))
    with pytest.raises(ValueError, match="p_holm"):
        claims_table(CLAIMS, broken)


def test_seeds_agreeing_counts_seeds_and_is_na_for_untestable_rows(single, triple):
    untestable = single["verdict"] == "not testable: one model per dataset"
    assert single.loc[untestable, "seeds_agreeing"].isna().all()
    judged = single.loc[~untestable]
    assert (judged["seeds_agreeing"] == (judged["verdict"] == judged["verdict_seed0"])).all()
    seeds = triple[["verdict_seed0", "verdict_seed1", "verdict_seed2"]]
    expected = seeds.eq(triple["verdict"], axis=0).sum(axis=1)
    assert (triple["seeds_agreeing"] == expected).all()


def test_untestable_findings_say_what_the_one_pair_of_models_shows(single):
    first = top_findings(single)[0]
    assert first.startswith("**not testable: one model per dataset** — Abstract")
    assert "(abs_cc_ratio)" in first and "Each seed's models alone: opposite" in first


def test_role_claims_no_head_earns_are_judged_inconclusive_with_the_reason(triple):
    # fixture: the semantic test (p 0.2) and texture never survive Holm over the heads
    for claim_id in ("t2_semantic_entropy", "t2_semantic_importance", "abs_semantic_entropy",
                     "t2_texture_entropy"):  # fmt: skip
        row = _row(triple, claim_id)
        assert row["verdict"] == "inconclusive"
        assert "after Holm over its 4 heads" in row["why"] and "null threshold" in row["why"]


def test_head_roles_are_corrected_across_heads_and_global_needs_its_null(three_seeds):
    from diffusion_circuits.report.heads import all_heads

    heads = all_heads(three_seeds)
    edge = heads[heads["head"] == 0]
    # p = 0.001 over 4 heads: Holm 0.004, the edge role survives
    assert (
        list(edge["p_role_adj"]) == pytest.approx([0.004] * len(edge))
        and (edge["role_corrected"] == "edge").all()
    )
    # the fixture's "global" head has specialisation about 0.1 + seed offset > 0.05: not shown global
    assert not (heads.loc[heads["head"] == 2, "role_corrected"] == "global").any()


def test_only_assigned_roles_count_as_roles(triple):
    # fixture: per model one edge head, one "none", one global, one "undetermined"
    assert _row(triple, "abs_n_roles")["ours"] == 1


def test_head_importance_uses_mean_ablation_only(single):
    # zero-ablation rows of the fixture are 1.0: averaged in, the mean would be ~0.5
    assert _row(single, "t2_edge_importance")["ours"] == pytest.approx(3e-3, rel=0.01)


def test_pooled_intervention_impact_leaves_out_output_constant_runs(triple):
    # fixture: decoder_late's zero-ablation impact is 50; the other groups 0.2-0.7
    assert _row(triple, "t4_intervention_impact_synthetic")["ours"] < 1


def test_transferability_is_cka_above_the_untrained_baseline(single, triple):
    one = _row(single, "feature_transfer")
    assert one["ours"] == pytest.approx(15.0)
    # one seed: the cross_dataset stage's image-bootstrap interval of the same value
    assert (one["ci_low"], one["ci_high"]) == pytest.approx((13.0, 17.0))
    assert one["ci_method"].startswith("basic bootstrap over images")
    assert "raw cka 80.0%" in one["reason"] and "baseline 65.0%" in one["reason"]
    three = _row(triple, "feature_transfer")
    assert three["unit"] == "seed" and three["ours"] == pytest.approx(16.0)  # seeds 0, 1, 2
    # t over the per-seed values 15, 16, 17 (var 1 / 3 of their mean) with each seed's
    # image error added (bootstrap intervals +-2: se 2 / 1.96), at the seed term's df
    seed_part, image_part = 1 / 3, (2 / stats.norm.ppf(0.975)) ** 2
    df = (seed_part + image_part) ** 2 / (seed_part**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(seed_part + image_part)
    assert (three["ci_low"], three["ci_high"]) == pytest.approx((16 - half, 16 + half), abs=1e-6)
    assert half > 2.38 and three["ci_method"].startswith(
        "t interval over seeds with the shared image error"
    )
    raw = _row(triple, "feature_transfer_raw")
    assert raw["ours"] == pytest.approx(81.0) and raw["same_as"] == "feature_transfer"
    assert "baseline is 66.0%" in raw["reason"]


def test_robustness_is_all_components_with_chance_beside_it(single, triple):
    one = _row(single, "circuit_robust")
    assert one["ours"] == pytest.approx(75.0)  # the head-only overlap (10%) is not pooled in
    assert "chance (two random k-subsets) 20.0%" in one["reason"]
    assert (
        "type-aware chance (random sets with the same numbers of ResNets and heads) 50.0%"
        in one["reason"]
    )
    assert pd.isna(one["ci_low"])  # no interval over timesteps
    assert _row(triple, "circuit_robust")["unit"] == "seed"


def test_alpha_comes_from_the_context_and_is_printed(three_seeds):
    strict = dataclasses.replace(three_seeds, alpha=0.01)
    table = claims_table(CLAIMS, strict)
    exact = _row(table, "t1_p_t600")  # the paper prints p = 0.023: threshold = alpha
    assert exact["threshold"] == pytest.approx(0.01)
    text = render_report(table, CLAIMS, {"git commit": "abc"}, 8_600_000, None, alpha=0.01)
    assert "or 0.01 where it prints an exact p" in text


def test_cross_dataset_accuracy_has_no_interval_over_cells(single, triple):
    one = _row(single, "cross_acc")
    assert one["ours"] == pytest.approx(90.0) and pd.isna(one["ci_low"])
    assert "none is taken over cells" in one["reason"]
    assert _row(triple, "cross_acc")["unit"] == "seed"


def test_medium_to_large_effects_need_the_papers_direction(three_seeds):
    """The smallest Table 4 d taken in the paper's direction, with a CI from the d CIs."""
    inference = three_seeds.inference.copy()
    table4 = (inference["family"] == "table4") & (inference["unit"] == "seed")
    inference.loc[table4, ["effect_size", "ci_low", "ci_high"]] = [0.9, 0.1, 0.5]
    metrics = sorted(inference.loc[table4, "metric"].unique())
    directions = {f"table4 {m}": 1.0 for m in metrics}
    ctx = dataclasses.replace(three_seeds, inference=inference, paper_directions=directions)
    result = _effect_size_range(ctx)
    assert result.value == pytest.approx(0.9) and result.ci_low < 0.9 < result.ci_high
    reversed_ = table4 & (inference["metric"] == metrics[0])
    inference.loc[reversed_, ["effect_size", "ci_low", "ci_high"]] = [-0.9, -0.5, -0.1]
    result = _effect_size_range(dataclasses.replace(ctx, inference=inference))
    assert result.value == pytest.approx(-0.9) and "reversed" in result.reason
    assert result.ci_low < -0.9 < result.ci_high  # 3 vs 3 seeds: a wide CI of d


def test_inconclusive_rows_state_what_the_design_detects(triple):
    rows = triple[triple["verdict"] == "inconclusive"]
    assert len(rows) and rows["why"].str.contains("power 0.8|null threshold").all()
    judged = rows[rows["detectable_effect"].notna()]
    assert len(judged) and (judged["units_needed"] >= 2).all()
    # no row is judged on power at the observed effect
    power = _row(triple, "intro_power")
    assert power["verdict"] == "not comparable (design input)" and "prospective" in power["reason"]


def test_no_folded_intervals_and_no_replicated_claim_across_its_null(triple):
    assert not triple["ci_method"].str.contains("folded").any()
    directional = triple[triple["kind"] == "directional"]
    null = directional["statistic"].map({"ratio": 1.0}).fillna(0.0)
    across = (directional["ci_low"] <= null) & (null <= directional["ci_high"])
    assert not (across & (directional["verdict"] == "replicated")).any()
    seed_rows = triple[triple["unit"] == "seed"]
    assert (
        not seed_rows["ci_method"]
        .str.contains("percentile bootstrap over seeds|hierarchical percentile")
        .any()
    )


def test_claims_at_unprobed_timesteps_are_not_comparable(three_seeds):
    """probe.timesteps without the paper's t = 100: those rows say so instead of failing."""
    study = three_seeds.study
    circuit = study.circuit_complexity[study.circuit_complexity["timestep"] != 100]
    ctx = dataclasses.replace(
        three_seeds, study=dataclasses.replace(study, circuit_complexity=circuit)
    )
    table = claims_table(load_claims(), ctx)
    at_100 = table[table["timestep"] == 100]
    assert len(at_100) > 0 and (at_100["verdict"] == "not comparable").all()
    assert (
        at_100["why"].str.contains("not probed").all()
        or at_100["reason"].str.contains("not probed").all()
    )
