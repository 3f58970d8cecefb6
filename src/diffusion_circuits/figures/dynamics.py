"""Figures 5-9 of the paper: hierarchy, temporal dynamics, interventions, cross-dataset,
and attention along real denoising trajectories."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from diffusion_circuits.figures.data import FigureData
from diffusion_circuits.figures.overview import image_grid
from diffusion_circuits.figures.panels import (
    DATASETS,
    PALETTE,
    bars,
    heatmap,
    line_by_dataset,
    new_figure,
    note,
)
from diffusion_circuits.stats.tables import GROUP_ORDER

__all__ = ["figure5", "figure6", "figure7", "figure8", "figure9"]


def _present(order, values) -> list[str]:
    return [g for g in order if g in set(values)]


def figure5(data: FigureData):
    """Feature hierarchy: complexity by depth, role selectivity, emergence over time."""
    s = data.study
    feature = s.activations[s.activations["metric"] == "feature_complexity"]
    fig, ax = new_figure(4, "Figure 5. Feature hierarchy and emergence", ncols=2)
    depth = feature.groupby(["dataset", "hook"], sort=False)["value"].mean().reset_index()
    for dataset in DATASETS:
        part = depth[depth["dataset"] == dataset]
        ax[0].plot(range(len(part)), part["value"], marker="o", color=PALETTE[dataset],
                   label=dataset)  # fmt: skip
    ax[0].set(xlabel="hook point (forward order)", ylabel="feature complexity C_l")
    ax[0].set_title("Complexity by layer depth", fontsize=9)
    ax[0].legend(fontsize=8)
    roles = s.head_roles.melt(id_vars=["dataset", "hook", "head"],
                              value_vars=["edge_score", "texture_score", "semantic_score"],
                              var_name="feature_type")  # fmt: skip
    bars(ax[1], roles, "feature_type", "Feature-type selectivity of heads",
         "mean correlation with saliency")  # fmt: skip
    for panel, dataset in zip(ax[2:], DATASETS, strict=True):
        part = feature[feature["dataset"] == dataset]
        matrix = part.groupby(["layer_group", "timestep"])["value"].mean().unstack("timestep")
        matrix = matrix.loc[_present(GROUP_ORDER, matrix.index)]
        heatmap(panel, matrix, f"Emergence timeline ({dataset})", "C_l", cmap="viridis")
    fig.tight_layout()
    return fig


def _group_of_pair(hook: str) -> str:
    target = hook.split("->")[-1]
    if target.startswith(("conv_in", "down.0")):
        return "early layers"
    if target.startswith(("up.", "conv_out")) and not target.startswith("up.0"):
        return "late layers"
    return "middle layers"


def figure6(data: FigureData):
    """Temporal dynamics: information flow, circuit activation, temporal stability."""
    s = data.study
    fig, ax = new_figure(4, "Figure 6. Temporal dynamics and circuit evolution", ncols=2)
    flow = s.information_flow.assign(band=lambda f: f["hook"].map(_group_of_pair))
    for band, style in (("early layers", "-"), ("middle layers", "--"), ("late layers", ":")):
        part = flow[flow["band"] == band].groupby(["dataset", "timestep"])["value"].mean()
        for dataset in DATASETS:
            if dataset in part.index.get_level_values(0):
                series = part.loc[dataset]
                ax[0].plot(series.index, series.to_numpy(), style, marker="o",
                           color=PALETTE[dataset], label=f"{dataset}, {band}")  # fmt: skip
    ax[0].set(xlabel="timestep t", ylabel="IFE")
    ax[0].set_title("Information flow efficiency by depth", fontsize=9)
    ax[0].legend(fontsize=6)
    components = s.interventions[(s.interventions["family"] == "component_ablation")
                                 & (s.interventions["metric"] == "impact")]  # fmt: skip
    for panel, dataset in zip(ax[1:3], DATASETS, strict=True):
        matrix = (components[components["dataset"] == dataset]
                  .groupby(["target", "timestep"])["value"].mean().unstack("timestep"))  # fmt: skip
        heatmap(panel, matrix, f"Circuit activation: component impact ({dataset})",
                "impact", cmap="rocket_r")  # fmt: skip
    stability = []
    for dataset in DATASETS:
        matrix = (components[components["dataset"] == dataset]
                  .groupby(["target", "timestep"])["value"].mean().unstack("timestep"))  # fmt: skip
        times = list(matrix.columns)
        for a, b in zip(times[:-1], times[1:], strict=True):
            r = np.corrcoef(matrix[a], matrix[b])[0, 1]
            stability.append({"dataset": dataset, "pair": f"{a}-{b}", "value": r})
    if stability:
        bars(ax[3], pd.DataFrame(stability), "pair", "Temporal stability of the circuit",
             "corr. of component impacts")  # fmt: skip
    else:
        note(ax[3], "temporal stability needs >= 2 timesteps")
    fig.tight_layout()
    return fig


def figure7(data: FigureData):
    """Interventions: layer ablation, head roles, scaling, distribution, robustness, timeline."""
    s = data.study
    impact = s.interventions[s.interventions["metric"] == "impact"]
    fig, ax = new_figure(6, "Figure 7. Intervention analysis and causal validation")
    layer = impact[(impact["family"] == "layer_ablation") & (impact["method"] == "zero")]
    synthetic = layer[layer["dataset"] == "synthetic"]
    for group in _present(GROUP_ORDER, synthetic["target"]):
        series = synthetic[synthetic["target"] == group].groupby("timestep")["value"].mean()
        ax[0].plot(series.index, series.to_numpy(), marker="o", label=group)
    ax[0].set(xlabel="timestep t", ylabel="impact (zero ablation)")
    ax[0].set_title("Layer ablation across timesteps (synthetic)", fontsize=9)
    ax[0].legend(fontsize=6)
    heads = impact[(impact["family"] == "component_ablation")
                   & impact["target"].str.contains(".head.", regex=False)].copy()  # fmt: skip
    parts = heads["target"].str.rsplit(".head.", n=1, expand=True)
    heads["hook"], heads["head"] = parts[0], parts[1].astype(int)
    heads = heads.merge(s.head_roles[["dataset", "hook", "head", "role"]],
                        on=["dataset", "hook", "head"])  # fmt: skip
    bars(ax[1], heads, "role", "Head ablation impact by role", "impact")
    scaling = impact[impact["family"] == "feature_scaling"]
    scaling = scaling.assign(factor=scaling["method"])
    bars(ax[2], scaling[scaling["dataset"] == "synthetic"], "target",
         "Feature scaling impact (synthetic)", "impact", hue="factor",
         order=_present(GROUP_ORDER, scaling["target"]))  # fmt: skip
    for dataset in DATASETS:
        values = impact.loc[impact["dataset"] == dataset, "value"]
        ax[3].hist(np.log10(values.clip(lower=1e-4)), bins=40, alpha=0.5,
                   color=PALETTE[dataset], label=dataset)  # fmt: skip
    ax[3].set(xlabel="log10 impact (clipped at 1e-4)", ylabel="count")
    ax[3].set_title("Intervention impact distribution", fontsize=9)
    ax[3].legend(fontsize=7)
    across = data.robustness[data.robustness["comparison"] == "across_datasets"]
    if across.empty:
        note(ax[4], "no cross-dataset robustness rows")
    else:
        ax[4].plot(across["timestep"], across["value"], marker="o", color="#7570b3")
        ax[4].set(xlabel="timestep t", ylabel="top-k overlap (Jaccard)", ylim=(0, 1.05))
        ax[4].set_title("Circuit robustness across datasets", fontsize=9)
    line_by_dataset(ax[5], layer, "timestep", "Mean layer-ablation impact", "impact")
    fig.tight_layout()
    return fig


def figure8(data: FigureData):
    """Cross-dataset comparison and transfer."""
    s = data.study
    fig, ax = new_figure(7, "Figure 8. Cross-dataset comparison and generalisation", ncols=4)
    line_by_dataset(ax[0], s.circuit_complexity, "timestep", "Circuit complexity",
                    "participation ratio")  # fmt: skip
    divergence = data.comparisons[data.comparisons["metric"].isin(["entropy", "specialisation"])]
    for metric, colour in (("entropy", "#e7298a"), ("specialisation", "#66a61e")):
        part = divergence[divergence["metric"] == metric]
        ax[1].errorbar(part["timestep"], part["estimate"],
                       yerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]],
                       marker="o", capsize=3, color=colour, label=metric)  # fmt: skip
    ax[1].axhline(0, color="k", lw=0.8)
    ax[1].set(xlabel="timestep t", ylabel="natural - synthetic (95% CI)")
    ax[1].set_title("Attention divergence", fontsize=9)
    ax[1].legend(fontsize=7)
    layer = s.interventions[(s.interventions["family"] == "layer_ablation")
                            & (s.interventions["method"] == "zero")
                            & (s.interventions["metric"] == "impact")]  # fmt: skip
    bars(ax[2], layer, "target", "Layer ablation impact", "impact",
         order=_present(GROUP_ORDER, layer["target"]))  # fmt: skip
    feature = s.activations[s.activations["metric"] == "feature_complexity"]
    bars(ax[3], feature, "layer_group", "Feature hierarchy", "C_l",
         order=_present(GROUP_ORDER, feature["layer_group"]))  # fmt: skip
    accuracy = data.cross_accuracy[data.cross_accuracy["metric"] == "accuracy"]
    matrix = accuracy.groupby(["model", "dataset"])["value"].mean().unstack("dataset")
    heatmap(ax[4], matrix, "Generalisation: accuracy (model x data)", "R^2", annot=True,
            fmt=".3f", cmap="mako")  # fmt: skip
    cka = data.cka.pivot_table(index="hook", columns="timestep", values="value", sort=False)
    heatmap(ax[5], cka, "Cross-model similarity (linear CKA)", "CKA", vmin=0, vmax=1,
            cmap="mako")  # fmt: skip
    patching = data.patching.assign(dataset=data.patching["model"])
    bars(ax[6], patching, "target", "Transfer: patch layer group from the other model",
         "impact on receiver", order=_present(GROUP_ORDER, patching["target"]))  # fmt: skip
    fig.tight_layout()
    return fig


def _overlay(pattern: np.ndarray, size: int) -> np.ndarray:
    """Key saliency of one head (mean over queries) upsampled to the image: [size, size]."""
    saliency = pattern.astype(np.float32).mean(axis=0)
    side = math.isqrt(saliency.size)
    tensor = torch.from_numpy(saliency.reshape(1, 1, side, side))
    return F.interpolate(tensor, size=(size, size), mode="nearest")[0, 0].numpy()


def figure9(data: FigureData, head: tuple[str, int] | None = None):
    """Real denoising trajectories with the attention of one head at each recorded timestep."""
    n_rows = 2 * len(DATASETS)
    first = data.tensors[DATASETS[0]]
    timesteps = list(first["timesteps"])
    fig, ax = new_figure(n_rows * len(timesteps), "Figure 9. Attention along denoising",
                         ncols=len(timesteps))  # fmt: skip
    if head is None:
        roles = data.study.head_roles
        ranked = roles[roles["dataset"] == "synthetic"].sort_values("specialisation")
        head = (ranked.iloc[-1]["hook"], int(ranked.iloc[-1]["head"]))
    hook, index = head
    for d, dataset in enumerate(DATASETS):
        tensors = data.tensors[dataset]
        states, patterns = tensors["states"], tensors[f"pattern:{hook}"]
        size = states.shape[-1]
        for i, t in enumerate(tensors["timesteps"]):
            top, bottom = ax[(2 * d) * len(timesteps) + i], ax[(2 * d + 1) * len(timesteps) + i]
            picture = image_grid(states[i][:1])
            top.imshow(picture, cmap="gray")
            top.set_title(f"{dataset}, x_t at t={int(t)}", fontsize=8)
            top.set_axis_off()
            bottom.imshow(picture, cmap="gray")
            bottom.imshow(_overlay(patterns[i, 0, index], size), cmap="inferno", alpha=0.6)
            bottom.set_title(f"{hook} head {index}: attention received", fontsize=7)
            bottom.set_axis_off()
    fig.tight_layout()
    return fig
