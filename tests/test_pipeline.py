"""End-to-end: every stage script on the tiny profile in a scratch folder, then checks
that recompute the outputs independently (statistics with scipy, figures against tables)."""

import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from diffusion_circuits.figures.data import load_figure_data
from diffusion_circuits.figures.overview import figure1, figure3
from diffusion_circuits.profiles import apply_profile, load_profile
from diffusion_circuits.report.verdict import VERDICTS

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    ["generate_synthetic"], ["prepare_natural"],
    ["train", "--dataset", "synthetic", "--seed", "0"], ["train", "--dataset", "natural", "--seed", "0"],
    ["evaluate", "--dataset", "synthetic", "--seed", "0"], ["evaluate", "--dataset", "natural", "--seed", "0"],
    ["feature_net", "--dataset", "synthetic"], ["feature_net", "--dataset", "natural"],
    ["samples", "--dataset", "synthetic", "--seed", "0"], ["samples", "--dataset", "natural", "--seed", "0"],
    ["cache_activations", "--dataset", "synthetic", "--seed", "0"],
    ["cache_activations", "--dataset", "natural", "--seed", "0"],
    ["analyze", "--dataset", "synthetic", "--seed", "0"], ["analyze", "--dataset", "natural", "--seed", "0"],
    ["cross_dataset"], ["stats"], ["figures"], ["report"],
]  # fmt: skip


def run_stage(workdir: Path, stage: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "stages" / f"{stage[0]}.py"), *stage[1:]]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("pipeline")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = apply_profile(raw, load_profile("tiny", ROOT / "profiles"))
    params["runtime"]["num_threads"] = 1
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in STAGES:
        result = run_stage(workdir, stage)
        assert result.returncode == 0, f"{stage}: {result.stderr[-2000:]}"
    return workdir


def test_every_output_is_written(pipeline):
    for path in (
        "data/synthetic/images.npz",
        "data/models/natural-seed0/unet/config.json",
        "data/eval/natural-seed0/accuracy.parquet",
        "plots/samples/synthetic-seed0.png",
        "metrics/samples/natural-seed0.json",
        "data/cache/synthetic-seed0/attention.parquet",
        "data/stats/comparisons.parquet",
        "reports/tables/table3_layer_ablation.md",
        "reports/replication.md",
    ):
        assert (pipeline / path).is_file(), path
    assert len(list((pipeline / "plots/figures").glob("*.png"))) == 9


def test_statistics_recomputed_independently(pipeline):
    comparisons = pd.read_parquet(pipeline / "data/stats/comparisons.parquet")
    circuit = pd.concat(pd.read_parquet(pipeline / f"data/analysis/{d}-seed0/circuit_complexity.parquet")
                        for d in ("synthetic", "natural"))  # fmt: skip
    for t, part in circuit.groupby("timestep"):
        a = part.loc[part.dataset == "synthetic"].groupby("image_id")["value"].mean()
        b = part.loc[part.dataset == "natural"].groupby("image_id")["value"].mean()
        row = comparisons[
            (comparisons.metric == "circuit_complexity") & (comparisons.timestep == t)
        ].iloc[0]
        assert row["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
        assert row["estimate"] == pytest.approx(b.mean() - a.mean())


def test_attention_patterns_in_cache_are_distributions(pipeline):
    attention = pd.read_parquet(pipeline / "data/cache/synthetic-seed0/attention.parquet")
    entropy = attention[attention.metric == "entropy"]["value"]
    assert (entropy >= 0).all() and (entropy <= np.log2(64) + 1e-9).all()
    with np.load(pipeline / "data/cache/synthetic-seed0/figure_tensors.npz") as archive:
        pattern = archive["pattern:mid.attn.0"].astype(np.float32)
    assert np.allclose(pattern.sum(-1), 1.0, atol=1e-2)


def test_figures_plot_the_tables(pipeline):
    data = load_figure_data(pipeline / "data", [0])
    fig = figure1(data)
    assert len(fig.axes) >= 6
    line = fig.axes[0].get_lines()[0]
    expected = (data.study.circuit_complexity.query("dataset == 'synthetic'")
                .groupby(["timestep", "image_id"])["value"].mean().groupby("timestep").mean())  # fmt: skip
    assert np.allclose(line.get_ydata(), expected.to_numpy())
    assert fig.axes[0].get_xlabel() == "timestep t"
    plt.close(fig)
    fig = figure3(data)
    assert fig.axes[1].get_ylabel().startswith("C_l") and len(fig.axes[2].images) == 1
    plt.close(fig)


def test_report_puts_every_claim_beside_a_measurement(pipeline):
    claims = pd.read_csv(pipeline / "reports/replication_claims.csv")
    assert len(claims) >= 40
    assert set(claims["verdict"]) <= set(VERDICTS)
    judged = claims[~claims.verdict.str.startswith("not comparable")]
    # a role no head earns has no value to show: inconclusive, and the row says why
    absent = judged["ours"].isna()
    assert (judged.loc[absent, "verdict"] == "inconclusive").all()
    assert judged.loc[absent, "why"].str.contains("earns the role").all()
    # one seed: no model-level claim is judged on image-level p values
    model_level = claims[claims["model_level"].astype(bool)]
    unprobed = model_level["reason"].fillna("").str.contains("not probed")  # tiny: 2 timesteps
    assert (model_level.loc[~unprobed, "verdict"] == "not testable: one model per dataset").all()
    assert (model_level.loc[unprobed, "verdict"] == "not comparable").all()
    text = (pipeline / "reports/replication.md").read_text()
    assert "LFW stand-in" in text and "Internal inconsistencies" in text


def test_stage_on_missing_inputs_fails_with_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    result = run_stage(tmp_path, ["stats"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing analysis output" in result.stderr


def test_models_have_one_channel_and_are_evaluated_against_baselines(pipeline):
    config = (pipeline / "data/models/synthetic-seed0/unet/config.json").read_text()
    assert '"in_channels": 1' in config and '"out_channels": 1' in config
    accuracy = pd.read_parquet(pipeline / "data/eval/natural-seed0/accuracy.parquet")
    assert {"accuracy", "accuracy_identity", "accuracy_gaussian", "accuracy_margin"} <= set(
        accuracy.metric
    )
    heldout = pd.read_parquet(pipeline / "data/natural/attributes.parquet").query(
        "split == 'heldout'"
    )
    assert set(accuracy.image_id) <= set(heldout.image_id)  # held-out sources only
