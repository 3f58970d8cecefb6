"""Figure 7's panels on what attention and the interventions do to the model's output:
attention's causal share at one step, and every intervention's effect on the samples."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from diffusion_circuits.figures.panels import DATASETS, PALETTE, note, panel_title
from diffusion_circuits.stats.attention_share import attention_share_table, run_kinds

__all__ = ["attention_share_panel", "sample_impact_panel", "SHARE_GOAL"]

# issue 20's bar for attention whose routing matters: uniform patterns raise the error 5%
SHARE_GOAL = 0.05
_SHARE_STYLES = {"uniform": "-", "branch_zero": "--", "resnet_zero": ":"}
_SHARE_LABELS = {
    "uniform": "uniform patterns",
    "branch_zero": "branches removed",
    "resnet_zero": "ResNet of attention's size removed",
}


def attention_share_panel(ax: plt.Axes, share: pd.DataFrame) -> None:
    """Noise-MSE rise (mean over images, then seeds) when every attention layer is made
    uniform or removed, beside the ResNet yardstick, per timestep and dataset."""
    if share.empty:
        note(ax, "no attention-share rows")
        return
    whole = share[share["target"].eq("attention") | share["method"].eq("resnet_zero")]
    per_model = attention_share_table(whole)
    rise = per_model.groupby(["dataset", "method", "timestep"])["mse_rise"].mean()
    for (dataset, method), series in rise.groupby(level=["dataset", "method"]):
        series = series.droplevel(["dataset", "method"])
        ax.plot(series.index, 100 * series.to_numpy(), _SHARE_STYLES[method], marker="o",
                color=PALETTE[dataset], label=f"{dataset}: {_SHARE_LABELS[method]}")  # fmt: skip
    ax.axhline(100 * SHARE_GOAL, color="grey", lw=0.8, ls="-.", label="5% (issue 20's bar)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set(xlabel="timestep t", ylabel="noise-MSE rise, % (symlog)")
    panel_title(ax, "Attention's causal share (one step, mean of seeds)")
    ax.legend(fontsize=5, loc="best", framealpha=0.6)


def sample_impact_panel(ax: plt.Axes, samples: pd.DataFrame, seed_swap: pd.DataFrame) -> None:
    """Median per-image RMS distance of intervened samples to the intact ones (same noise),
    per kind of intervention (mean over targets and seeds), with the seed-swap yardstick."""
    rms = samples[(samples["metric"] == "rms_distance") & (samples["sample"] >= 0)]
    if rms.empty:
        note(ax, "no sample-level rows")
        return
    medians = rms.groupby(["dataset", "seed", "family", "target", "method"])["value"].median()
    frame = medians.reset_index()
    frame["kind"] = run_kinds(frame, samples)
    table = frame.groupby(["kind", "dataset"])["value"].mean().unstack("dataset")
    table = table.reindex(columns=[d for d in DATASETS if d in table.columns])
    table = table.sort_values(table.columns[0])
    positions = range(len(table))
    height = 0.8 / max(len(table.columns), 1)
    for i, dataset in enumerate(table.columns):
        ax.barh([p + i * height for p in positions], table[dataset], height=height,
                color=PALETTE[dataset], label=dataset)  # fmt: skip
    ax.set_yticks([p + height * (len(table.columns) - 1) / 2 for p in positions])
    ax.set_yticklabels(table.index, fontsize=5.5)
    swaps = seed_swap[seed_swap["metric"] == "rms_distance"]
    for dataset, values in swaps.groupby("dataset")["value"]:
        ax.axvline(values.median(), color=PALETTE[dataset], ls="--", lw=0.9,
                   label=f"{dataset}: training-seed swap")  # fmt: skip
    ax.set_xscale("log")
    # two lines: on one, the end of the label ran past the figure's right edge
    ax.set_xlabel("median RMS distance\nto the intact sample (log)")
    panel_title(ax, "Impact on samples (same noise)")
    # below the axes: inside, it would cover bars of some kind whatever the corner
    ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
