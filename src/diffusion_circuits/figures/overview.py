"""Figures 1-4 of the paper: overview, statistics, dataset comparison, attention heads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg

from diffusion_circuits.figures.data import FigureData
from diffusion_circuits.figures.panels import (
    DATASETS,
    PALETTE,
    bars,
    heatmap,
    line_by_dataset,
    new_figure,
    note,
)

__all__ = ["figure1", "figure2", "figure3", "figure4", "image_grid"]


def _metric(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    return frame[frame["metric"] == metric]


def figure1(data: FigureData):
    """Overview: complexity, specialisation, hierarchy, robustness, entropy, information flow."""
    s = data.study
    fig, ax = new_figure(6, "Figure 1. Circuit discovery overview")
    line_by_dataset(ax[0], s.circuit_complexity, "timestep", "Circuit complexity",
                    "participation ratio")  # fmt: skip
    line_by_dataset(ax[1], _metric(s.attention, "specialisation"), "timestep",
                    "Attention specialisation", "S = (Hmax - H) / Hmax")  # fmt: skip
    bars(ax[2], _metric(s.activations, "feature_complexity"), "layer_group",
         "Feature hierarchy (complexity by layer group)", "C_l")  # fmt: skip
    across = data.robustness[data.robustness["comparison"] == "across_timesteps"]
    if across.empty:
        note(ax[3], "circuit robustness needs >= 2 timesteps")
    else:
        across = across.assign(pair=across["timestep"].astype(str) + "-" +
                               across["timestep_b"].astype(str))  # fmt: skip
        bars(ax[3], across, "pair", "Circuit robustness across timesteps",
             "top-k overlap (Jaccard)")  # fmt: skip
    entropy = _metric(s.attention, "entropy")
    for dataset in DATASETS:
        values = entropy.loc[entropy["dataset"] == dataset, "value"]
        ax[4].hist(values, bins=30, alpha=0.5, color=PALETTE[dataset], label=dataset)
    ax[4].set(xlabel="head entropy (bits)", ylabel="count (image x head x t)")
    ax[4].set_title("Attention entropy distribution", fontsize=9)
    ax[4].legend(fontsize=8)
    flow = s.information_flow.groupby(["dataset", "hook"], as_index=False, sort=False)[
        "value"
    ].mean()
    bars(ax[5], flow, "hook", "Information flow efficiency per layer pair", "IFE")
    ax[5].tick_params(axis="x", labelsize=5)
    fig.tight_layout()
    return fig


def figure2(data: FigureData):
    """Statistical framework: p-values, effect sizes, CIs, KS, correlations, power."""
    table = data.comparisons.dropna(subset=["p_value"]).copy()
    table["label"] = table["metric"] + " t=" + table["timestep"].astype("Int64").astype(str)
    table = table[~table["metric"].eq("layer_ablation_impact")].head(40)
    fig, ax = new_figure(6, "Figure 2. Statistical analysis (natural - synthetic)")
    y = np.arange(len(table))
    ax[0].barh(y, -np.log10(table["p_holm"].clip(lower=1e-300)), color="#7570b3")
    ax[0].axvline(-np.log10(0.05), color="k", ls="--", lw=0.8, label="p = 0.05")
    ax[0].set(yticks=y, xlabel="-log10 p (Holm)")
    ax[0].set_yticklabels(table["label"], fontsize=5)
    ax[0].legend(fontsize=7)
    ax[1].barh(y, table["effect_size"], color="#e7298a")
    for edge in (-0.8, -0.5, -0.2, 0.2, 0.5, 0.8):
        ax[1].axvline(edge, color="grey", lw=0.5, ls=":")
    ax[1].set(yticks=[], xlabel="Cohen's d")
    ax[2].errorbar(table["estimate"], y, xerr=[table["estimate"] - table["ci_low"],
                   table["ci_high"] - table["estimate"]], fmt="o", ms=3)  # fmt: skip
    ax[2].axvline(0, color="k", lw=0.8)
    ax[2].set(yticks=[], xlabel="mean difference, 95% bootstrap CI")
    ax[3].barh(y, table["ks_stat"], color="#66a61e")
    ax[3].set(yticks=[], xlabel="KS statistic D")
    per_image = _per_image_metrics(data)
    if per_image.shape[1] > 1:
        heatmap(ax[4], per_image.corr(), "Metric correlation (per image)", "Pearson r",
                cmap="vlag", vmin=-1, vmax=1)  # fmt: skip
    else:
        note(ax[4], "not enough per-image metrics")
    sizes = np.arange(5, 400, 5)
    for d in sorted(table["effect_size"].abs().dropna().unique())[-4:]:
        ax[5].plot(sizes, [pg.power_ttest2n(nx=n, ny=n, d=d) for n in sizes], label=f"d={d:.2f}")
    ax[5].axhline(0.95, color="k", ls="--", lw=0.8)
    ax[5].set(xlabel="images per group", ylabel="power (two-sided, alpha .05)")
    ax[5].set_title("Power for the largest observed effects", fontsize=9)
    ax[5].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _per_image_metrics(data: FigureData) -> pd.DataFrame:
    s = data.study
    frames = {
        "accuracy": _metric(s.activations, "accuracy"),
        "feature_complexity": _metric(s.activations, "feature_complexity"),
        "entropy": _metric(s.attention, "entropy"),
        "specialisation": _metric(s.attention, "specialisation"),
        "ife": s.information_flow,
        "circuit_complexity": s.circuit_complexity,
    }
    columns = {
        name: f.groupby(["dataset", "timestep", "image_id"])["value"].mean()
        for name, f in frames.items() if not f.empty
    }  # fmt: skip
    return pd.DataFrame(columns).dropna()


def image_grid(images: np.ndarray) -> np.ndarray:
    """[n, C, H, W] in [-1, 1] or [n, H, W, 3] uint8 -> one row image in [0, 1]."""
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    else:
        images = (np.transpose(images.astype(np.float32), (0, 2, 3, 1)) + 1) / 2
    return np.clip(np.concatenate(list(images), axis=1), 0, 1)


def figure3(data: FigureData):
    """Model performance and feature complexity over timesteps, with sample generations."""
    s = data.study
    fig, ax = new_figure(4, "Figure 3. Dataset comparison and model performance", ncols=2)
    acc = _metric(s.accuracy, "accuracy").assign(value=lambda f: 100 * f["value"])
    line_by_dataset(ax[0], acc, "timestep", "Noise-prediction accuracy (held-out)", "R^2 (%)")
    line_by_dataset(ax[1], _metric(s.activations, "feature_complexity"), "timestep",
                    "Feature complexity (mean over layers)", "C_l")  # fmt: skip
    for panel, dataset in zip(ax[2:], DATASETS, strict=True):
        tensors = data.tensors[dataset]
        grid = np.concatenate([image_grid(tensors["samples"]), image_grid(tensors["real"])])
        panel.imshow(grid, cmap="gray")
        panel.set_axis_off()
        panel.set_title(f"{dataset}: samples (top), training images (bottom)", fontsize=9)
    fig.tight_layout()
    return fig


def figure4(data: FigureData):
    """Attention heads: entropy over time, importance ranking, inter-head correlation."""
    s = data.study
    fig, ax = new_figure(3, "Figure 4. Attention head analysis (synthetic model)")
    entropy = _metric(s.attention, "entropy")
    synthetic = entropy[entropy["dataset"] == "synthetic"].copy()
    synthetic["head_id"] = synthetic["hook"] + "/h" + synthetic["head"].astype(str)
    means = synthetic.groupby(["head_id", "timestep"])["value"].mean().unstack("head_id")
    means.plot(ax=ax[0], legend=False, lw=0.8, marker=".")
    ax[0].set(xlabel="timestep t", ylabel="entropy (bits)")
    ax[0].set_title("Per-head entropy across timesteps", fontsize=9)
    impacts = s.interventions[
        (s.interventions["family"] == "component_ablation")
        & (s.interventions["metric"] == "impact")
        & s.interventions["target"].str.contains(".head.", regex=False)
    ]
    ranking = impacts.groupby("target")["value"].mean().sort_values(ascending=False).head(12)
    ax[1].barh(ranking.index[::-1], ranking.to_numpy()[::-1], color=PALETTE["synthetic"])
    ax[1].set(xlabel="mean impact of mean-ablating the head")
    ax[1].tick_params(axis="y", labelsize=6)
    ax[1].set_title("Head importance (intervention impact)", fontsize=9)
    wide = synthetic.pivot_table(index=["image_id", "timestep"], columns="head_id", values="value")
    heatmap(ax[2], wide.corr(), "Inter-head correlation of entropy", "Pearson r",
            cmap="vlag", vmin=-1, vmax=1)  # fmt: skip
    fig.tight_layout()
    return fig
