"""Figures 1-4 of the paper: overview, statistics, dataset comparison, attention heads."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from diffusion_circuits.figures.data import FigureData, unit_caption
from diffusion_circuits.figures.panels import (
    DATASETS,
    PALETTE,
    bars,
    chance_line,
    heatmap,
    line_by_dataset,
    new_figure,
    note,
    panel_title,
    present_in_order,
    reference_line,
)
from diffusion_circuits.stats.seed_level import detectable_d
from diffusion_circuits.stats.study import FEATURE_COMPLEXITY, all_components, head_impacts
from diffusion_circuits.stats.tables import GROUP_ORDER

__all__ = ["figure1", "figure2", "figure3", "figure4", "image_grid"]

# No-learning predictors the accuracy table carries beside the model (metric -> label):
# a model is only worth reading above the better of them (``accuracy_margin``).
ACCURACY_BASELINES = {
    "accuracy_identity": ("identity predictor", "--"),
    "accuracy_gaussian": ("Gaussian predictor", ":"),
}
# Feature complexity drawn across the two networks: the unit-free form.
FEATURE_LABEL = "C_l / s_l^2 (unit-free)"


def _metric(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    return frame[frame["metric"] == metric]


def figure1(data: FigureData):
    """Overview: complexity, specialisation, hierarchy, robustness, entropy, information flow."""
    s = data.study
    fig, ax = new_figure(6, "Figure 1. Circuit discovery overview")
    line_by_dataset(ax[0], all_components(s.circuit_complexity), "timestep",
                    "Circuit complexity", "participation ratio")  # fmt: skip
    line_by_dataset(ax[1], _metric(s.attention, "specialisation"), "timestep",
                    "Attention specialisation", "S = (Hmax - H) / Hmax")  # fmt: skip
    complexity = _metric(s.activations, FEATURE_COMPLEXITY)
    bars(ax[2], complexity, "layer_group", "Feature complexity by layer group", FEATURE_LABEL,
         order=present_in_order(GROUP_ORDER, complexity["layer_group"]))  # fmt: skip
    robustness = all_components(data.robustness)
    across = robustness[robustness["comparison"] == "across_timesteps"]
    if across.empty:
        note(ax[3], "circuit robustness needs >= 2 timesteps")
    else:
        across = across.assign(pair=across["timestep"].astype(str) + "-" +
                               across["timestep_b"].astype(str))  # fmt: skip
        bars(ax[3], across, "pair", "Circuit robustness across timesteps",
             "top-k overlap (Jaccard)")  # fmt: skip
        chance_line(ax[3], across)
    entropy = _metric(s.attention, "entropy")
    for dataset in DATASETS:
        values = entropy.loc[entropy["dataset"] == dataset, "value"]
        ax[4].hist(values, bins=30, alpha=0.5, color=PALETTE[dataset], label=dataset)
    ax[4].set(xlabel="head entropy (bits)", ylabel="count (image x head x t)")
    panel_title(ax[4], "Attention entropy distribution")
    ax[4].legend(fontsize=8)
    flow = s.information_flow.groupby(["dataset", "hook"], as_index=False, sort=False)[
        "value"
    ].mean()
    bars(ax[5], flow, "hook", "Information flow efficiency per layer pair", "IFE")
    ife_chance_line(ax[5], s.information_flow)
    ax[5].tick_params(axis="x", labelsize=5, rotation=90)
    fig.tight_layout()
    return fig


def ife_chance_line(ax, flow: pd.DataFrame) -> None:
    """Mark the chance level of IFE when the table says what it is.

    A table with ``value_null`` holds the chance-adjusted IFE in ``value`` (0 =
    independent maps on any grid); the raw ``value_raw`` is never drawn.
    """
    if "value_null" in flow.columns:
        reference_line(ax, 0.0, "chance (permutation null)")
        ax.legend(fontsize=7)


def figure2(data: FigureData):
    """Statistical framework: p-values, effect sizes, CIs, KS, correlations, and what the design can detect (prospective power)."""
    table = data.comparisons.dropna(subset=["p_value"]).copy()
    table["label"] = table["metric"] + " t=" + table["timestep"].astype("Int64").astype(str)
    table = table[~table["metric"].eq("layer_ablation_impact")].head(40)
    fig, ax = new_figure(6, f"Figure 2. Statistical analysis (natural - synthetic; "
                         f"{unit_caption(data)})", panel_size=(4.8, 3.8))  # fmt: skip
    y = np.arange(len(table))
    alpha = data.alpha
    ax[0].barh(y, -np.log10(table["p_holm"].clip(lower=1e-300)), color="#7570b3")
    ax[0].axvline(-np.log10(alpha), color="k", ls="--", lw=0.8, label=f"p = {alpha:g}")
    ax[0].set(xlabel="-log10 p (Holm)")
    ax[0].legend(fontsize=7)
    panel_title(ax[0], "Significance")
    ax[1].barh(y, table["effect_size"], color="#e7298a")
    for edge in (-0.8, -0.5, -0.2, 0.2, 0.5, 0.8):
        ax[1].axvline(edge, color="grey", lw=0.5, ls=":")
    ax[1].set(xlabel="Cohen's d")
    panel_title(ax[1], "Effect size")
    ax[2].errorbar(table["estimate"], y, xerr=[table["estimate"] - table["ci_low"],
                   table["ci_high"] - table["estimate"]], fmt="o", ms=3)  # fmt: skip
    ax[2].axvline(0, color="k", lw=0.8)
    ax[2].set(xlabel=f"mean difference, 95% CI ({data.comparisons_unit} unit)")
    panel_title(ax[2], "Mean difference")
    ax[3].barh(y, table["ks_stat"], color="#66a61e")
    ax[3].set(xlabel="KS statistic D")
    panel_title(ax[3], "Distribution shift")
    # Every row panel gets the row labels: the reader should not have to count bars
    # back to panel (a).
    for panel in ax[:4]:
        panel.set_yticks(y)
        panel.set_yticklabels(table["label"], fontsize=5)
        panel.set_ylim(len(table) - 0.5, -0.5)
    per_image = _per_image_metrics(data)
    if per_image.shape[1] > 1:
        heatmap(ax[4], per_image.corr(), "Metric correlation (per image)", "Pearson r",
                cmap="vlag", vmin=-1, vmax=1)  # fmt: skip
    else:
        note(ax[4], "not enough per-image metrics")
    _design_panel(ax[5], table, data.comparisons_unit == "seed", alpha)
    fig.tight_layout()
    return fig


def _design_panel(ax: plt.Axes, table: pd.DataFrame, seeds: bool, alpha: float) -> None:
    """The smallest |d| the design detects with power 0.8 against the number of units per
    group (prospective: a property of the design; power at the observed effects would
    only restate the p values), with Cohen's bands and this study's unit count."""
    sizes = np.arange(2, 41) if seeds else np.arange(5, 400, 5)
    ax.plot(sizes, [detectable_d(int(n), int(n), alpha) for n in sizes], color="k", lw=1.2)
    for d, label in ((0.2, "small"), (0.5, "medium"), (0.8, "large")):
        ax.axhline(d, color="grey", ls=":", lw=0.8)
        ax.text(sizes[-1], d, f" {label}", va="bottom", ha="right", fontsize=6, color="grey")
    ours = int(table[["n_a", "n_b"]].min(axis=1).min()) if len(table) else 0
    if ours >= 2:
        ax.axvline(ours, color="tab:red", ls="--", lw=0.9,
                   label=f"this study: {ours} per group, |d| >= {detectable_d(ours, ours, alpha):.2f}")  # fmt: skip
        ax.legend(fontsize=6)
    ax.set_yscale("log")
    ax.set(xlabel="seeds per dataset" if seeds else "images per group",
           ylabel=f"|d| detected with power 0.8 (alpha {alpha:g})")  # fmt: skip
    panel_title(ax, "What the design can detect")


def _per_image_metrics(data: FigureData) -> pd.DataFrame:
    s = data.study
    frames = {
        "accuracy": _metric(s.activations, "accuracy"),
        "feature_complexity": _metric(s.activations, FEATURE_COMPLEXITY),
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
    """[n, C, H, W] in [-1, 1] or [n, H, W, C] uint8 -> one row image in [0, 1].

    One-channel (grey) images come back as [H, n*W], which is what ``imshow`` takes;
    colour ones as [H, n*W, 3].

    Examples
    --------
    >>> image_grid(np.zeros((2, 1, 4, 4), np.float32)).shape
    (4, 8)
    >>> float(image_grid(np.full((2, 4, 4, 3), 255, np.uint8)).max())
    1.0
    """
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    else:
        images = (np.transpose(images.astype(np.float32), (0, 2, 3, 1)) + 1) / 2
    row = np.clip(np.concatenate(list(images), axis=1), 0, 1)
    return row[..., 0] if row.shape[-1] == 1 else row


def figure3(data: FigureData):
    """Model performance and feature complexity over timesteps, with sample generations."""
    s = data.study
    fig, ax = new_figure(4, "Figure 3. Dataset comparison and model performance", ncols=2)
    acc = _metric(s.accuracy, "accuracy").assign(value=lambda f: 100 * f["value"])
    line_by_dataset(ax[0], acc, "timestep", "Noise-prediction accuracy (held-out)", "R^2 (%)")
    _accuracy_baselines(ax[0], s.accuracy)
    line_by_dataset(ax[1], _metric(s.activations, FEATURE_COMPLEXITY), "timestep",
                    "Feature complexity (mean over layers)", FEATURE_LABEL)  # fmt: skip
    for panel, dataset in zip(ax[2:], DATASETS, strict=True):
        tensors = data.tensors[dataset]
        # Stored images are always RGB, a grey model's samples one channel: show both as RGB.
        rows = [image_grid(tensors["samples"]), image_grid(tensors["real"])]
        grid = np.concatenate([r if r.ndim == 3 else np.stack([r] * 3, axis=-1) for r in rows])
        panel.imshow(grid, cmap="gray")
        panel.set_axis_off()
        panel_title(panel, f"{dataset}: samples (top), training (bottom)")
    fig.tight_layout()
    return fig


def _accuracy_baselines(ax, accuracy: pd.DataFrame) -> None:
    """Dashed no-learning baselines per dataset, where the accuracy table has them.

    R^2 is cut at 0: the identity predictor's R^2 at low t is far below it (about -280% at
    t = 100) and would squeeze every other line into the top of the panel; the values cut
    off are written in the panel.
    """
    off_scale = []
    for metric, (label, style) in ACCURACY_BASELINES.items():
        part = _metric(accuracy, metric)
        for dataset in DATASETS:
            series = 100 * part[part["dataset"] == dataset].groupby("timestep")["value"].mean()
            if not series.empty:
                ax.plot(series.index, series.clip(lower=0).to_numpy(), style, lw=1,
                        color=PALETTE[dataset], label=f"{label} ({dataset})")  # fmt: skip
                off_scale += [f"{label} ({dataset}), t = {t}: {v:.0f}%"
                              for t, v in series[series < 0].items()]  # fmt: skip
    if off_scale:
        ax.set_ylim(bottom=0)
        ax.text(0.98, 0.02, "below 0, drawn at 0:\n" + "\n".join(off_scale), fontsize=5,
                ha="right", va="bottom", transform=ax.transAxes)  # fmt: skip
    ax.legend(fontsize=6)


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
    panel_title(ax[0], "Per-head entropy across timesteps")
    impacts = head_impacts(s.interventions)
    impacts = impacts[impacts["dataset"] == "synthetic"]
    ranking = impacts.groupby("target")["value"].mean().sort_values(ascending=False).head(12)
    ax[1].barh(ranking.index[::-1], ranking.to_numpy()[::-1], color=PALETTE["synthetic"])
    ax[1].set(xlabel="mean relative impact of mean-ablating the head")
    ax[1].tick_params(axis="y", labelsize=6)
    panel_title(ax[1], "Head importance (intervention impact)")
    wide = synthetic.pivot_table(index=["image_id", "timestep"], columns="head_id", values="value")
    heatmap(ax[2], wide.corr(), "Inter-head correlation of entropy", "Pearson r",
            cmap="vlag", vmin=-1, vmax=1)  # fmt: skip
    fig.tight_layout()
    return fig
