"""Tables 1-4 on hand-made tidy inputs, checked against values worked out by hand."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from diffusion_circuits.stats.compare import COLUMNS
from diffusion_circuits.stats.seed_level import crossed_difference, crossed_table
from diffusion_circuits.stats.tables import (
    TABLE1_COLUMNS,
    table1_circuit_complexity,
    table2_head_specialisation,
    table3_layer_ablation,
    table4_cross_dataset,
    to_markdown,
)
from diffusion_circuits.stats.unit_comparison import BY_UNIT_COLUMNS

FAST = {"n_resamples": 300, "seed": 0}


def _circuit() -> pd.DataFrame:
    values = {
        ("synthetic", 100): [0.10, 0.12, 0.14],
        ("natural", 100): [0.12, 0.13, 0.14],
        ("synthetic", 300): [0.20, 0.21, 0.25],
        ("natural", 300): [0.10, 0.12, 0.11],
    }
    rows = [
        (dataset, image, t, "circuit_complexity", v)
        for (dataset, t), vs in values.items()
        for image, v in enumerate(vs)
    ]
    rows.append(("synthetic", 0, 100, "n_components", 99.0))  # another metric: ignored
    return pd.DataFrame(rows, columns=["dataset", "image_id", "timestep", "metric", "value"])


def test_table1_ratio_and_holm_by_hand():
    full = table1_circuit_complexity(_circuit(), **FAST)
    assert list(full.columns) == TABLE1_COLUMNS
    assert full["unit"].tolist() == ["image", "seed"] * 2
    table = full[full["unit"] == "image"]
    assert table["timestep"].tolist() == [100, 300]
    assert table["mean_a"].tolist() == pytest.approx([0.12, 0.22])
    assert table["sd_a"].iloc[0] == pytest.approx(0.02)
    assert table["ratio"].tolist() == pytest.approx([0.13 / 0.12, 0.11 / 0.22])
    assert table["estimate"].tolist() == pytest.approx([0.01, -0.11])
    assert table["p_holm"].tolist() == pytest.approx(
        multipletests(table["p_value"], method="holm")[1].tolist()
    )
    assert table["effect_size"].iloc[1] < 0 and table["effect_label"].iloc[1] == "large"
    assert "image" in full.attrs["unit_note"]
    # A table without a seed column is one model per dataset: no seed-level inference.
    seed_rows = full[full["unit"] == "seed"]
    assert seed_rows["p_value"].isna().all() and seed_rows["p_holm"].isna().all()
    assert seed_rows["note"].str.contains("no seed-level inference").all()


def test_table1_seed_rows_test_the_per_seed_means():
    df = pd.concat(
        [_circuit().assign(seed=s, value=lambda t, s=s: t["value"] + 0.01 * s * (s - 1))
         for s in range(3)], ignore_index=True,
    )  # fmt: skip
    table = table1_circuit_complexity(df, **FAST)
    seed_rows = table[table["unit"] == "seed"]
    assert seed_rows["n_a"].tolist() == [3, 3]
    rows = df[(df["metric"] == "circuit_complexity") & (df["timestep"] == 100)]
    tables = [crossed_table(rows[rows["dataset"] == d]) for d in ("synthetic", "natural")]
    assert tables[0].shape[0] == 3 and tables[0].shape[1] > 1  # the same images in every seed
    assert seed_rows["p_value"].iloc[0] == pytest.approx(crossed_difference(*tables)["p_value"])
    assert seed_rows["p_holm"].tolist() == pytest.approx(
        multipletests(seed_rows["p_value"], method="holm")[1].tolist()
    )
    assert seed_rows["ci_method"].str.startswith("crossed seeds x images").all()
    assert "seed" in table.attrs["unit_note"]


def test_table1_holm_runs_within_each_component_type():
    df = pd.concat([_circuit().assign(component_type=t, value=lambda d, k=k: d["value"] * (1 + k),
                                      metric=lambda d, t=t: d["metric"].where(
                                          (d["metric"] != "circuit_complexity") | (t == "all"),
                                          f"circuit_complexity_{t}"))
                    for k, t in enumerate(["all", "head", "resnet"])], ignore_index=True)  # fmt: skip
    table = table1_circuit_complexity(df, **FAST)
    assert table["component_type"].drop_duplicates().tolist() == ["head", "resnet", "all"]
    for _, part in table[table["unit"] == "image"].groupby("component_type"):
        assert part["p_holm"].tolist() == pytest.approx(
            multipletests(part["p_value"], method="holm")[1].tolist()
        )  # m = 2 timesteps, not 6


def test_table1_without_circuit_rows_names_what_is_present():
    with pytest.raises(ValueError, match="n_components"):
        table1_circuit_complexity(_circuit().query("metric == 'n_components'"))


def _attention() -> pd.DataFrame:
    rows = []
    for dataset in ("synthetic", "natural"):
        for head in (0, 1):
            for image in range(3):
                for t in (100, 300):
                    entropy = 2 + head + 0.5 * image + (0.2 if t == 300 else 0.0)
                    rows.append((dataset, "down.1.attn.0", "encoder_middle", head, image, t,
                                 "entropy", entropy))  # fmt: skip
                    rows.append((dataset, "down.1.attn.0", "encoder_middle", head, image, t,
                                 "specialisation", 0.1 * head + 0.01 * image))  # fmt: skip
    columns = ["dataset", "hook", "layer_group", "head", "image_id", "timestep", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def _roles(**extra) -> pd.DataFrame:
    return pd.DataFrame(
        {"hook": "down.1.attn.0", "head": [0, 1], "role": ["edge", "global"],
         "edge_score": [0.4, 0.0], "texture_score": [0.1, 0.0], "role_candidate": "edge",
         "role_score": [0.4, 0.0], "null_threshold": [0.1, 0.1], "p_value": [0.001, 0.6],
         "semantic_score": [0.2, 0.1], "semantic_part": "eyes", "semantic_p_value": [0.2, 0.9],
         "n_images": 3, "n_permutations": 999, **extra}
    )  # fmt: skip


def test_table2_entropy_per_image_then_over_images():
    table = table2_head_specialisation(_attention(), _roles())
    assert len(table) == 4  # 2 datasets x 2 heads
    row = table[(table["dataset"] == "synthetic") & (table["head"] == 1)].iloc[0]
    # per image: mean over timesteps = 3 + 0.5 * image + 0.1; over images 0, 1, 2
    assert row["entropy_mean"] == pytest.approx(3.6)
    assert row["entropy_sd"] == pytest.approx(0.5)
    assert row["specialisation_mean"] == pytest.approx(0.11)
    assert row["n"] == 3 and row["role"] == "global" and row["layer_group"] == "encoder_middle"
    assert row["edge_score"] == 0.0


def test_table2_one_timestep_and_roles_per_dataset():
    roles = pd.concat(
        [_roles(dataset="synthetic"), _roles(dataset="natural").assign(role=["texture", "edge"])]
    )
    table = table2_head_specialisation(_attention(), roles, timestep=300)
    natural = table[(table["dataset"] == "natural") & (table["head"] == 0)].iloc[0]
    assert natural["role"] == "texture"
    assert natural["entropy_mean"] == pytest.approx(2 + 0.5 + 0.2)
    with pytest.raises(ValueError, match=r"present: \[100, 300\]"):
        table2_head_specialisation(_attention(), _roles(), timestep=600)


def test_table2_keeps_the_heads_of_each_seed_apart():
    attention = pd.concat([_attention().assign(seed=s) for s in (0, 1)], ignore_index=True)
    roles = pd.concat([_roles(seed=0), _roles(seed=1).assign(role=["semantic", "edge"])])
    table = table2_head_specialisation(attention, roles)
    assert len(table) == 8 and set(table["seed"]) == {0, 1}
    picked = table[(table["seed"] == 1) & (table["head"] == 0) & (table["dataset"] == "natural")]
    assert picked["role"].tolist() == ["semantic"]
    with pytest.raises(ValueError, match="unit"):
        table2_head_specialisation(attention, roles, unit="seed")


def test_table2_shows_the_role_test_and_counts_every_label():
    roles = _roles(dataset="synthetic").assign(role=["none", "undetermined"])
    table = table2_head_specialisation(_attention(), roles)
    row = table[(table["dataset"] == "synthetic") & (table["head"] == 0)].iloc[0]
    assert row["role"] == "none" and row["p_value"] == 0.001 and row["null_threshold"] == 0.1
    assert table.attrs["role_counts"]["semantic"] == 0
    assert (
        table.attrs["role_counts"]["none"] == 1 and table.attrs["role_counts"]["undetermined"] == 1
    )
    assert "semantic 0" in table.attrs["unit_note"]
    bare = _roles().drop(columns=["semantic_score", "semantic_part", "semantic_p_value"])
    assert "semantic_score" not in table2_head_specialisation(_attention(), bare).columns
    with pytest.raises(ValueError, match="unknown role label"):
        table2_head_specialisation(_attention(), _roles().assign(role=["edge", "eyes"]))


IMPACTS = {"encoder_early": 0.235, "encoder_middle": 0.863, "middle": 1.538,
           "decoder_early": 0.373, "decoder_late": 0.863}  # fmt: skip


def _interventions() -> pd.DataFrame:
    rows = []
    for group, impact in IMPACTS.items():
        for image, jitter in enumerate((-0.01, 0.01)):
            base = 0.02 + 0.01 * image
            value = impact + jitter
            for metric, v in (("mse_base", base), ("mse_int", base * (1 + value)), ("impact", value)):  # fmt: skip
                rows.append(("synthetic", 300, "layer_ablation", group, "zero", image, metric, v))
                rows.append(("synthetic", 300, "layer_ablation", group, "mean", image, metric, 9.0))
    rows.append(("synthetic", 300, "component_ablation", "mid.attn.0", "zero", 0, "impact", 50.0))
    columns = ["dataset", "timestep", "family", "target", "method", "image_id", "metric", "value"]
    table = pd.DataFrame(rows, columns=columns)
    constant = (table["target"] == "decoder_late") & (table["method"] == "zero")
    return table.assign(output_constant=constant)


def test_table3_ranking_with_ties_and_means():
    table = table3_layer_ablation(_interventions(), **FAST)
    assert table["layer_group"].tolist() == [
        "encoder_early", "encoder_middle", "middle", "decoder_early", "decoder_late"
    ]  # fmt: skip
    assert table["rank"].tolist() == [5, 2, 1, 4, 2]
    assert table["impact"].tolist() == pytest.approx([IMPACTS[g] for g in table["layer_group"]])
    assert table["mse_base"].tolist() == pytest.approx([0.025] * 5)
    middle = table[table["layer_group"] == "middle"].iloc[0]
    assert middle["mse_ablated"] == pytest.approx((0.02 * 2.528 + 0.03 * 2.548) / 2)
    assert middle["n"] == 2 and middle["ci_low"] <= 1.538 <= middle["ci_high"]


def test_table3_absent_timestep_names_what_is_present():
    with pytest.raises(ValueError, match=r"timestep=600.*'timestep': \[300\]"):
        table3_layer_ablation(_interventions(), timestep=600)
    with pytest.raises(ValueError, match="natural"):
        table3_layer_ablation(_interventions(), dataset="natural")


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    frames = {}
    for k, label in enumerate(["circuit_complexity", "attention_entropy", "feature_complexity",
                               "intervention_impact"]):  # fmt: skip
        rows = [
            (dataset, image, t, head, label, rng.normal(k * (dataset == "natural"), 1.0))
            for dataset in ("synthetic", "natural")
            for image in range(10)
            for t in (100, 300)
            for head in range(3)
        ]
        frames[label] = pd.DataFrame(
            rows, columns=["dataset", "image_id", "timestep", "head", "metric", "value"]
        )
    return frames


def test_table4_pools_per_image_and_corrects_over_four_rows():
    frames = _frames()
    full = table4_cross_dataset(frames, **FAST)
    rest = [c for c in (*COLUMNS, *BY_UNIT_COLUMNS) if c != "unit"]
    assert list(full.columns) == ["metric", "unit", *rest, "p_bonferroni", "p_holm", "significant"]
    assert full["unit"].tolist() == ["image", "seed"] * 4
    table = full[full["unit"] == "image"]
    assert table["metric"].tolist() == list(frames)
    assert table["n_a"].tolist() == [10] * 4
    per_image = frames["feature_complexity"].groupby(["dataset", "image_id"])["value"].mean()
    assert table["mean_b"].iloc[2] == pytest.approx(per_image["natural"].mean())
    assert table["p_holm"].tolist() == pytest.approx(
        multipletests(table["p_value"], method="holm")[1].tolist()
    )
    assert table["p_bonferroni"].tolist() == pytest.approx(
        np.minimum(table["p_value"] * 4, 1).tolist()
    )


def test_table4_rejects_an_unfiltered_frame():
    frame = _frames()["circuit_complexity"]
    mixed = pd.concat([frame, frame.assign(metric="other")])
    with pytest.raises(ValueError, match="several metrics"):
        table4_cross_dataset({"circuit_complexity": mixed})


def test_markdown_has_headers_and_formatted_numbers():
    table = table1_circuit_complexity(_circuit(), **FAST).query("unit == 'image'")
    text = to_markdown(table, "Table 1. Circuit complexity", note="toy data")
    lines = text.splitlines()
    assert lines[0] == "**Table 1. Circuit complexity**"
    header = lines[2]
    for name in ("timestep", "synthetic (mean ± sd)", "natural (mean ± sd)", "95% CI",
                 "ratio", "p_holm", "effect_label"):  # fmt: skip
        assert f" {name} |" in header
    assert "sd_a" not in header and "ci_high" not in header and "note" not in header
    assert "| 0.120 ± 0.020 |" in lines[4]  # synthetic, t = 100
    assert f"| {table['ratio'].iloc[0]:.4g} |" in lines[4]
    ci = f"[{table['ci_low'].iloc[0]:.4g}, {table['ci_high'].iloc[0]:.4g}]"
    assert ci in lines[4]
    assert len({line.count("|") for line in lines[2:6]}) == 1
    assert "_toy data_" in text and "_unit: image rows" in text


def test_markdown_p_values_missing_values_and_constant_columns():
    table = pd.DataFrame(
        {"metric": ["a", "b"], "test": "welch_t", "contrast": "natural - synthetic",
         "estimate": [12345.6, np.nan], "p_value": [0.0001, 0.04567], "note": ["", "x|y"],
         "significant": pd.array([True, pd.NA], dtype="boolean")}
    )  # fmt: skip
    text = to_markdown(table, "T")
    assert "| a | 12346 | <0.001 | x" not in text  # note column kept: not all empty
    assert "| a | 12346 | <0.001 |  | yes |" in text
    assert "| b | NA | 0.046 | x\\|y | NA |" in text
    assert "_test: welch_t_" in text and "_contrast: natural - synthetic_" in text


def test_table3_flags_output_constant_layer_groups():
    table = table3_layer_ablation(_interventions(), **FAST)
    flagged = table.loc[table["output_constant"], "layer_group"].tolist()
    assert flagged == ["decoder_late"]
