"""metrics/summary.json and the verdict sentence: counted from the data, small, short keys."""

import json

import pandas as pd
import pytest

from diffusion_circuits import layout
from diffusion_circuits.report.headline import grouped_verdicts, summary_metrics, verdict_sentence

VERDICTS = ["replicated", "consistent", "contradicted", "contradicted", "opposite",
            "inconclusive", "not comparable", "not comparable (design input)"]  # fmt: skip


def claims(verdicts=VERDICTS) -> pd.DataFrame:
    rows = [{"claim_id": f"c{i}", "verdict": v, "same_as": None, "quantity": "x",
             "statistic": "mean", "ours": 1.0, "ci_low": 0.5, "ci_high": 1.5, "paper_value": 2.0}
            for i, v in enumerate(verdicts)]  # fmt: skip
    rows[-1]["same_as"] = "c0"  # a repeated claim counts once among distinct assertions
    rows[0].update(quantity="circuit_complexity_ratio", statistic="ratio", ours=1.03,
                   ci_low=0.79, ci_high=1.42, paper_value=1.084)  # fmt: skip
    return pd.DataFrame(rows)


def test_every_claim_falls_in_exactly_one_group():
    grouped = grouped_verdicts(VERDICTS)
    assert (grouped["agree"], grouped["against"], grouped["inconclusive"]) == (2, 3, 1)
    assert grouped["untested"] == 2 and grouped["claims"] == len(VERDICTS)
    assert grouped["untested_by_verdict"] == {"not comparable": 1,
                                              "not comparable (design input)": 1}  # fmt: skip


def test_the_sentence_counts_what_it_is_given():
    assert verdict_sentence(VERDICTS) == (
        "Of the paper's 8 claims, 2 replicated or are consistent with our data, 3 are "
        "contradicted or go the opposite way, 1 is inconclusive and 2 could not be tested "
        "(1 not comparable, 1 not comparable (design input))."
    )
    assert verdict_sentence(["replicated"]) == (
        "Of the paper's 1 claim, 1 replicated or is consistent with our data, 0 are "
        "contradicted or go the opposite way and 0 are inconclusive."
    )


def write_metrics(root, dataset, seed, margins, beats, uniform_rise):
    model = layout.model_name(dataset, seed)
    evaluate = layout.stage_metrics("evaluate", model, root)
    evaluate.parent.mkdir(parents=True, exist_ok=True)
    evaluate.write_text(json.dumps({"margin_over_best_baseline": margins,
                                    "beats_baselines_everywhere_by_ci": beats}))  # fmt: skip
    analyze = layout.stage_metrics("analyze", model, root)
    analyze.parent.mkdir(parents=True, exist_ok=True)
    one_step = {f"attention.uniform.t{t}": {"mse_rise": uniform_rise * t / 900} for t in (100, 900)}
    one_step["mid.attn.0.uniform.t900"] = {"mse_rise": 9.0}  # one layer alone: not the headline
    analyze.write_text(json.dumps({"attention_share": {"one_step": one_step}}))


@pytest.fixture
def metrics_root(tmp_path):
    for seed, (low, beats) in enumerate([(0.002, True), (-0.001, False)]):
        for dataset in layout.DATASETS:
            write_metrics(tmp_path, dataset, seed, {"t100": 0.6 + seed, "t900": low}, beats,
                          0.03 + 0.01 * seed)  # fmt: skip
    layout.stage_metrics("cross_dataset", root=tmp_path).write_text(
        json.dumps({"circuit_robustness": 0.77, "feature_transferability": 0.91, "seeds": [0, 1]})
    )
    return tmp_path


def flatten(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_the_summary_reads_the_worst_seed_and_the_all_layer_edit(metrics_root):
    summary = summary_metrics(claims(), seeds=[0, 1], root=metrics_root)
    synthetic = summary["synthetic"]
    assert synthetic["margin_min"] == {"t100": 0.6, "t900": -0.001}
    assert synthetic["seeds"] == 2 and synthetic["seeds_beating_baselines"] == 1
    assert synthetic["attention"]["uniform_max_rise"] == pytest.approx(0.04)
    assert summary["verdicts"] == {"claims": 8, "agree": 2, "against": 3, "inconclusive": 1,
                                   "untested": 2}  # fmt: skip
    assert summary["distinct_assertions"]["claims"] == 7
    assert summary["cross_dataset"] == {"circuit_robustness": 0.77, "feature_transferability": 0.91}
    assert summary["circuit_complexity_ratio"]["ours"] == 1.03
    assert summary["circuit_complexity_ratio"]["verdict"] == "replicated"


def test_the_summary_is_small_with_short_keys_and_json_ready(metrics_root):
    summary = summary_metrics(claims(), seeds=[0, 1], root=metrics_root)
    keys = dict(flatten(json.loads(json.dumps(summary))))  # plain JSON types only
    assert 20 <= len(keys) <= 60
    # dvc exp show prints "metrics/summary.json:<key>" headers; short keys keep columns narrow
    assert max(len(k) for k in keys) <= 40, max(keys, key=len)


def test_missing_stage_metrics_leave_keys_out(tmp_path):
    summary = summary_metrics(claims(), seeds=[0], root=tmp_path)
    assert summary["synthetic"] == {"seeds": 0, "attention": {}}
    assert "cross_dataset" not in summary
