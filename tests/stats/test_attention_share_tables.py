"""The attention-share and sample-impact tables, by hand."""

import pandas as pd
import pytest

from diffusion_circuits.stats.attention_share import (
    attention_share_markdown,
    attention_share_table,
    sample_impact_table,
    sample_kind,
    with_sample_impact,
)


def share_rows() -> pd.DataFrame:
    # two images: the rise is taken on the image means (1.0 -> 1.5), not per image
    return pd.DataFrame(
        {"dataset": "synthetic", "seed": 0, "image_id": [0, 1], "timestep": 600,
         "target": "attention", "method": "uniform", "mse_base": [0.5, 1.5],
         "mse_int": [1.0, 2.0], "mse_output_zero": [3.0, 3.0]}
    )  # fmt: skip


def test_rise_and_share_come_from_image_means():
    row = attention_share_table(share_rows()).iloc[0]
    assert row["mse_rise"] == pytest.approx(0.5)
    assert row["share"] == pytest.approx(0.5 / 2.0)


def test_sample_table_compares_each_run_with_the_dataset_seed_swap():
    samples = pd.DataFrame(
        {"dataset": "synthetic", "seed": 0, "family": "attention_share", "target": "attention",
         "method": ["uniform"] * 3 + ["uniform"], "sample": [0, 1, 2, -1],
         "metric": ["rms_distance"] * 3 + ["clean_fraction_change"], "value": [0.1, 0.3, 0.2, -0.25]}
    )  # fmt: skip
    swap = pd.DataFrame(
        {"dataset": "synthetic", "metric": "rms_distance", "value": [0.1, 0.15, 0.5]}
    )
    row = sample_impact_table(samples, swap).iloc[0]
    assert row["median_rms_distance"] == pytest.approx(0.2)
    assert row["clean_fraction_change"] == pytest.approx(-0.25)
    assert row["seed_swap_rms"] == pytest.approx(0.15) and row["beyond_seed_swap"]
    assert row["kind"] == "all attention: uniform patterns"
    text = attention_share_markdown(
        attention_share_table(share_rows()), sample_impact_table(samples, swap)
    )
    assert "+50.00% [+50.00, +50.00]" in text and "| synthetic | attention | uniform |" in text


def test_kinds_name_what_was_done():
    assert (
        sample_kind("attention_share", "mid.attn.0", "branch_zero")
        == "one attention layer: branch removed"
    )
    assert (
        sample_kind("attention_share", "up.1.resnet.0", "resnet_zero")
        == "ResNet of attention's size: removed"
    )
    # the type is the analysis stage's (from the probe), never read off the name
    assert (
        sample_kind("component_ablation", "up.1.resnet.0.residual", "mean", "resnet")
        == "one ResNet branch: mean"
    )
    assert sample_kind("component_ablation", "blocks.2.ff", "mean", "ff") == "one feed-forward branch: mean"  # fmt: skip
    assert sample_kind("component_ablation", "x.head.1", "mean") == "one component: mean"
    assert sample_kind("feature_scaling", "middle", "x2") == "layer-group output: x2"


def test_table3_gets_the_sample_impact_of_each_group_mean_over_seeds():
    table3 = pd.DataFrame({"dataset": "synthetic", "layer_group": ["middle", "decoder_late"],
                           "impact": [0.1, 2.0]})  # fmt: skip
    samples = pd.DataFrame(
        {"dataset": "synthetic", "seed": [0, 1], "family": "layer_ablation", "target": "middle",
         "method": "mean", "median_rms_distance": [0.2, 0.4], "beyond_seed_swap": [True, False]}
    )  # fmt: skip

    joined = with_sample_impact(table3, samples).set_index("layer_group")
    assert joined.loc["middle", "sample_rms"] == pytest.approx(0.3)
    assert joined.loc["middle", "sample_beyond_seed_swap"] == 1
    assert pd.isna(joined.loc["decoder_late", "sample_rms"])
