"""Attention's causal share and the sample-level impacts as one tidy table (issue 20).

Per dataset, seed and run: the one-step noise-MSE rise and share at each probed
timestep (``analysis.attention_share``), and on generated samples the median RMS and
feature distances to the intact samples from the same noise, the clean-fraction and
attribute-frequency changes (``analysis.sample_impact``); the training-seed swap beside
them as the yardstick.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffusion_circuits.io import read_parquet
from diffusion_circuits.layout import cross_dataset_dir
from diffusion_circuits.stats.loading import analysis_table

__all__ = [
    "run_kinds",
    "sample_kind",
    "attention_share_table",
    "sample_impact_table",
    "attention_share_tables",
    "attention_share_markdown",
    "with_sample_impact",
]


# component_type (analysis/circuits.py, from the probe's roles) -> a reader's word
COMPONENT_WORDS = {"head": "one head", "resnet": "one ResNet branch", "ff": "one feed-forward branch"}  # fmt: skip


def sample_kind(family: str, target: str, method: str, component_type: str | None = None) -> str:
    """A reader's label for a sample-level run: what was done, at what scale.

    ``component_type``: the analysis stage's type of an ablated component (tables of
    component ablations written before it was recorded say "one component").

    Examples
    --------
    >>> sample_kind("attention_share", "attention", "uniform")
    'all attention: uniform patterns'
    >>> sample_kind("component_ablation", "mid.attn.0.head.3", "mean", "head")
    'one head: mean'
    """
    if family == "attention_share":
        what = {"uniform": "uniform patterns", "branch_zero": "branch removed"}.get(method)
        if method == "resnet_zero":
            return "ResNet of attention's size: removed"
        return f"{'all attention' if target == 'attention' else 'one attention layer'}: {what}"
    if family == "component_ablation":
        return f"{COMPONENT_WORDS.get(component_type, 'one component')}: {method}"
    scope = {
        "layer_ablation": "layer group",
        "feature_scaling": "layer-group output",
        "attention_perturbation": "one attention layer",
        "circuit_interruption": "skip / bottleneck cut",
    }[family]
    return f"{scope}: {method}"


def run_kinds(runs: pd.DataFrame, samples: pd.DataFrame) -> list[str]:
    """:func:`sample_kind` of each ``family, target, method`` row of ``runs``, with the
    component types recorded in the sample-impact table ``samples``."""
    recorded = "component_type" in samples.columns  # not in tables written before 2026-12-03
    types = (
        samples.drop_duplicates("target").set_index("target")["component_type"] if recorded else {}
    )
    return [sample_kind(f, t, m, types.get(t))
            for f, t, m in zip(runs.family, runs.target, runs.method, strict=True)]  # fmt: skip


def attention_share_table(share: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, seed, run and timestep: ``mse_rise`` and ``share`` from the
    image means of the MSEs (``analysis.attention_share.share_summary`` per model)."""
    keys = ["dataset", "seed", "target", "method", "timestep"]
    means = share.groupby(keys, sort=False)[["mse_base", "mse_int", "mse_output_zero"]].mean()
    return means.assign(
        mse_rise=means["mse_int"] / means["mse_base"] - 1.0,
        share=(means["mse_int"] - means["mse_base"])
        / (means["mse_output_zero"] - means["mse_base"]),
    ).reset_index()


def sample_impact_table(samples: pd.DataFrame, seed_swap: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, seed and run: the median per-image distances, the run-level
    changes, and the median seed-swap distance of the dataset (``seed_swap_rms``) with
    whether the run moved the samples further (``beyond_seed_swap``)."""
    keys = ["dataset", "seed", "family", "target", "method"]
    per_image = samples[samples["sample"] >= 0].groupby([*keys, "metric"])["value"].median()
    per_run = samples[samples["sample"] < 0].groupby([*keys, "metric"])["value"].first()
    wide = (
        pd.concat([per_image.rename(lambda m: f"median_{m}", level="metric"), per_run])
        .unstack("metric")
        .reset_index()
    )
    wide.columns.name = None
    wide.insert(3, "kind", run_kinds(wide, samples))
    swap = seed_swap[seed_swap["metric"] == "rms_distance"].groupby("dataset")["value"].median()
    wide["seed_swap_rms"] = wide["dataset"].map(swap)
    wide["beyond_seed_swap"] = wide["median_rms_distance"] > wide["seed_swap_rms"]
    return wide


def attention_share_tables(root: str | Path, seeds) -> dict[str, pd.DataFrame]:
    """Both tables from the analyze and cross_dataset outputs under ``root`` (``data``)."""
    root = Path(root)
    seed_swap = read_parquet(cross_dataset_dir(root) / "seed_swap.parquet")
    return {
        "attention_share": attention_share_table(analysis_table(root, "attention_share", seeds)),
        "sample_impact": sample_impact_table(
            analysis_table(root, "sample_impact", seeds), seed_swap
        ),
    }


def attention_share_markdown(share: pd.DataFrame, samples: pd.DataFrame) -> str:
    """Per dataset and run: the one-step MSE rise at each timestep (mean over seeds, with
    the range across seeds) and the median sample distance beside the seed swap."""
    rise = 100 * share.groupby(["dataset", "target", "method", "timestep"], sort=False)[
        "mse_rise"
    ].agg(["mean", "min", "max"])
    cells = rise.apply(lambda r: f"{r['mean']:+.2f}% [{r['min']:+.2f}, {r['max']:+.2f}]", axis=1)
    wide = cells.unstack("timestep")
    wide.columns = [f"t = {t}" for t in wide.columns]
    runs = samples[samples["family"] == "attention_share"]
    rms = runs.groupby(["dataset", "target", "method"])["median_rms_distance"].mean()
    wide["samples: median RMS"] = rms.reindex(wide.index).round(4)
    swap = runs.groupby("dataset")["seed_swap_rms"].first()
    wide["seed swap RMS"] = [swap.get(d) for d, _, _ in wide.index]
    header = "| " + " | ".join(["dataset", "target", "intervention", *wide.columns]) + " |"
    lines = [header, "|" + "---|" * (len(wide.columns) + 3)]
    for (dataset, target, method), row in wide.iterrows():
        values = ["" if pd.isna(v) else str(v) for v in row]
        lines.append("| " + " | ".join([dataset, target, method, *values]) + " |")
    caption = (
        "Attention's causal share: held-out noise-MSE rise (mean over seeds, range across "
        "seeds) when every attention layer (target `attention`) or one layer is made uniform "
        "or removed, beside the ResNet branch nearest an attention layer in size; median RMS "
        "distance of DDIM samples from the same noise to the intact ones, beside the "
        "distance between two training seeds' samples."
    )
    return f"{caption}\n\n" + "\n".join(lines) + "\n"


def with_sample_impact(table3: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Table 3 with the sample-level impact of each layer group beside its one-step impact:
    ``sample_rms`` (median RMS distance of the group's mean-ablated samples to the intact
    ones, mean over seeds) and ``sample_beyond_seed_swap`` (seeds where it exceeds the
    training-seed swap). The one-step rows are zero ablations; the sample runs mean
    ablations (a zero-ablated decoder_late draws a constant image)."""
    groups = samples[(samples["family"] == "layer_ablation") & (samples["method"] == "mean")]
    summary = groups.groupby(["dataset", "target"]).agg(
        sample_rms=("median_rms_distance", "mean"),
        sample_beyond_seed_swap=("beyond_seed_swap", "sum"),
    )
    summary.index.names = ["dataset", "layer_group"]
    return table3.join(summary, on=["dataset", "layer_group"])
