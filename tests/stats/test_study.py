"""study_statistics / dataset_comparisons: units, seed scopes and Holm families."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from diffusion_circuits.stats.study import (
    StudyInputs,
    dataset_comparisons,
    head_impacts,
    study_statistics,
)
from diffusion_circuits.stats.summary import stats_metrics
from diffusion_circuits.stats.unit_comparison import NO_SEED_INFERENCE


def _tidy(n_seeds: int, metric: str, rng, **extra) -> pd.DataFrame:
    rows = [
        {"dataset": d, "seed": s, "image_id": i, "timestep": t, "metric": metric,
         "value": (d == "natural") * 0.3 + 0.1 * s + rng.normal(), **extra}
        for d in ("synthetic", "natural") for s in range(n_seeds) for i in range(6)
        for t in (100, 300)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _inputs(n_seeds: int) -> StudyInputs:
    rng = np.random.default_rng(n_seeds)
    layer = pd.concat(
        [_tidy(n_seeds, m, rng, family="layer_ablation", method="zero", target="middle",
               output_constant=False) for m in ("impact", "mse_base", "mse_int", "delta_mse")]
        # zero-ablating decoder_late makes the output constant: impact ~ 1 / MSE_base - 1
        + [_tidy(n_seeds, "impact", rng, family="layer_ablation", method="zero",
                 target="decoder_late", output_constant=True).assign(value=1000.0)]
    )  # fmt: skip
    roles = pd.DataFrame({"dataset": "synthetic", "hook": "mid.attn.0", "head": [0],
                          "role": "global", "edge_score": 0.1, "texture_score": 0.1,
                          "role_candidate": "edge", "role_score": 0.1, "null_threshold": 0.2,
                          "p_value": 0.3, "semantic_score": 0.1, "semantic_part": "eyes",
                          "semantic_p_value": 0.5, "n_images": 6, "n_permutations": 999})  # fmt: skip
    attention = pd.concat([_tidy(n_seeds, m, rng, hook="mid.attn.0", head=0)
                           for m in ("entropy", "specialisation")])  # fmt: skip
    activations = pd.concat([_tidy(n_seeds, m, rng, hook="down.0")
                             for m in ("feature_complexity", "feature_complexity_scaled")])  # fmt: skip
    complexity = pd.concat([_tidy(n_seeds, "circuit_complexity", rng, component_type="all"),
                            _tidy(n_seeds, "circuit_complexity_head", rng, component_type="head")])  # fmt: skip
    return StudyInputs(
        accuracy=pd.concat([_tidy(n_seeds, m, rng) for m in
                            ("accuracy", "noise_mse", "accuracy_identity", "accuracy_gaussian",
                             "accuracy_margin")]),  # fmt: skip
        activations=activations,
        attention=attention, information_flow=_tidy(n_seeds, "information_flow_efficiency", rng),
        interventions=layer, circuit_complexity=complexity,
        head_roles=roles,
    )  # fmt: skip


FAST = {"n_resamples": 200, "seed": 0, "confidence": 0.95}


@pytest.fixture(scope="module")
def study() -> tuple[dict, pd.DataFrame]:
    return study_statistics(_inputs(3), **FAST)


@pytest.fixture(scope="module")
def three(study) -> pd.DataFrame:
    return study[0]["inference"]


def test_every_comparison_has_both_units_and_each_seed_alone(three):
    all_seeds = three[three["seed_scope"] == "all"]
    counts = all_seeds.groupby(["family", "unit"]).size().unstack()
    assert (counts["image"] == counts["seed"]).all()
    assert set(three["seed_scope"]) == {"all", "0", "1", "2"}
    assert set(three.loc[three["seed_scope"] != "all", "unit"]) == {"image"}
    table4 = all_seeds[all_seeds["family"] == "table4"]
    assert sorted(table4["metric"].unique()) == sorted(
        ["circuit_complexity", "attention_entropy", "feature_complexity", "intervention_impact"]
    )
    assert table4["timestep"].isna().all()


def test_holm_runs_within_family_unit_and_scope(three):
    families = three.groupby(["family", "unit", "seed_scope"])
    assert len(families) == 8 * 2 + 8 * 3  # 8 families x 2 units on all seeds, images per seed
    for key in (("table4", "seed", "all"), ("circuit_complexity", "image", "all"),
                ("entropy", "image", "1")):  # fmt: skip
        part = families.get_group(key)
        assert len(part) == (4 if key[0] == "table4" else 2)
        assert part["p_holm"].to_numpy() == pytest.approx(
            multipletests(part["p_value"].to_numpy(), method="holm")[1]
        )


def test_study_tables_keep_the_figures_comparisons_image_level(study, three):
    tables, comparisons = study
    assert set(comparisons["unit"]) == {"image"}
    assert not comparisons.duplicated(["metric", "timestep", "target"]).any()
    assert "table4" not in set(comparisons["metric"])
    assert set(tables["table1_circuit_complexity"]["unit"]) == {"image", "seed"}
    # Table 1 and the inference table agree on the same test
    table1 = tables["table1_circuit_complexity"].query(
        "timestep == 100 and component_type == 'all'"
    )
    same = three.query("family == 'circuit_complexity' and timestep == 100 and seed_scope == 'all'")
    assert table1["p_holm"].tolist() == pytest.approx(same["p_holm"].tolist())


def test_one_seed_has_seed_rows_that_say_so():
    table = dataset_comparisons(_inputs(1), **FAST)
    seed_rows = table[table["unit"] == "seed"]
    assert len(seed_rows) and (seed_rows["note"] == NO_SEED_INFERENCE).all()
    assert seed_rows["p_holm"].isna().all()


def test_a_missing_seed_column_is_a_clear_error():
    inputs = _inputs(1)
    broken = StudyInputs(**{**inputs.__dict__, "accuracy": inputs.accuracy.drop(columns="seed")})
    with pytest.raises(ValueError, match="accuracy lacks column"):
        dataset_comparisons(broken, **FAST)


def test_metric_keys_stay_stable_with_the_seed_level_beside_them(study):
    tables, _ = study
    metrics = stats_metrics(tables)
    t100 = metrics["table1"]["all"]["t100"]
    image = tables["table1_circuit_complexity"].query(
        "timestep == 100 and unit == 'image' and component_type == 'all'"
    )
    assert t100["p_value"] == image["p_value"].iloc[0]  # the image-level keys as before
    assert t100["seed_level"]["n_seeds"] == 3
    assert set(metrics["table4"]["circuit_complexity"]) >= {"difference", "p_holm", "seed_level"}


def test_table4_pools_impacts_without_output_constant_runs_and_says_so(study):
    tables, _ = study
    table4 = tables["table4_cross_dataset"]
    impact = table4[(table4["metric"] == "intervention_impact") & (table4["unit"] == "image")]
    assert impact["mean_a"].abs().max() < 100  # the 1000.0 decoder_late rows are left out
    assert "decoder_late" in impact["note"].iloc[0]
    assert "output-constant" in table4.attrs["unit_note"]


def test_table4_compares_the_unit_free_feature_complexity():
    inputs = _inputs(1)
    tables, _ = study_statistics(inputs, **FAST)
    row = tables["table4_cross_dataset"].query("metric == 'feature_complexity' and unit == 'image'")
    acts = inputs.activations
    scaled = acts[
        (acts["metric"] == "feature_complexity_scaled") & (acts["dataset"] == "synthetic")
    ]
    assert row["mean_a"].iloc[0] == pytest.approx(scaled.groupby("image_id")["value"].mean().mean())
    no_scaled = StudyInputs(**{**inputs.__dict__,
                               "activations": acts[acts["metric"] == "feature_complexity"]})  # fmt: skip
    with pytest.raises(ValueError, match="feature_complexity_scaled"):
        study_statistics(no_scaled, **FAST)


def test_table1_puts_each_component_type_first_and_the_combined_ratio_last(study):
    table1 = study[0]["table1_circuit_complexity"]
    inputs = _inputs(3)
    types = inputs.circuit_complexity["component_type"].unique()
    assert set(types) > {"all"}  # the fixture holds per-type rows
    assert len(table1) == len(types) * 2 * 2  # types x two timesteps x two units, none pooled
    assert table1["component_type"].iloc[-1] == "all" and table1["component_type"].iloc[0] != "all"
    # each type's rows are that type's participation ratios, not a pool
    head = table1.query("component_type == 'head' and unit == 'image'").iloc[0]
    rows = inputs.circuit_complexity.query(
        "component_type == 'head' and dataset == 'synthetic' and metric == 'circuit_complexity_head' "
        f"and timestep == {head.timestep}"
    )
    assert head["mean_a"] == pytest.approx(rows.groupby("image_id")["value"].mean().mean())


def test_alpha_is_the_level_of_significant_and_of_the_detectable_effect():
    strict = {**FAST, "alpha": 1e-9}
    table = dataset_comparisons(_inputs(3), **strict)
    tested = table["p_holm"].notna()
    assert not table.loc[tested, "significant"].any()
    stricter = dataset_comparisons(_inputs(3), **{**FAST, "alpha": 0.01})
    loose = dataset_comparisons(_inputs(3), **FAST)
    assert loose["d_for_power_80"].notna().all()
    # a stricter level needs a larger effect for the same power
    assert (stricter["d_for_power_80"] > loose["d_for_power_80"]).all()


def test_table4_without_an_output_constant_column_is_a_clear_error():
    inputs = _inputs(1)
    broken = StudyInputs(**{**inputs.__dict__,
                            "interventions": inputs.interventions.drop(columns="output_constant")})  # fmt: skip
    with pytest.raises(ValueError, match="output_constant"):
        study_statistics(broken, **FAST)


def test_accuracy_table_shows_the_model_beside_both_baselines(study):
    table = study[0]["accuracy_baselines"]
    assert list(table.columns) == ["dataset", "timestep", "n", "model", "identity_predictor",
                                   "gaussian_predictor", "margin"]  # fmt: skip
    assert len(table) == 4 and (table["n"] == 6).all()
    inputs = _inputs(3)
    acc = inputs.accuracy
    rows = acc[(acc["metric"] == "accuracy_identity") & (acc["dataset"] == "natural")
               & (acc["timestep"] == 300)]  # fmt: skip
    natural = table[(table["dataset"] == "natural") & (table["timestep"] == 300)]
    expected = rows.groupby("image_id")["value"].mean().mean()
    assert natural["identity_predictor"].iloc[0] == pytest.approx(expected)


def test_accuracy_comparisons_use_the_model_accuracy_only(three):
    assert "accuracy_identity" not in set(three["metric"])
    assert "noise_mse" not in set(three["metric"])


def test_head_impacts_read_the_probes_head_labels():
    from diffusion_circuits.probe.names import Head

    labels = [Head("mid.attn.0", 3).name, Head("up.0.attn.1", 12).name,
              "up.1.resnet.0.residual", "blocks.head.x"]  # fmt: skip
    interventions = pd.DataFrame({
        "family": "component_ablation", "method": "mean", "metric": "impact",
        "target": labels, "value": [0.1, 0.2, 0.3, 0.4],
    })  # fmt: skip
    heads = head_impacts(interventions)
    assert heads[["hook", "head", "value"]].values.tolist() == [
        ["mid.attn.0", 3, 0.1], ["up.0.attn.1", 12, 0.2],
    ]  # fmt: skip
    rebuilt = [Head(h, i).name for h, i in zip(heads["hook"], heads["head"], strict=True)]
    assert rebuilt == heads["target"].tolist()
