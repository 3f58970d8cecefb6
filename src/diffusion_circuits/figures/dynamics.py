"""Figures 5-8 of the paper: hierarchy, temporal dynamics, interventions, cross-dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from diffusion_circuits.figures.data import FigureData, unit_caption
from diffusion_circuits.figures.generation import attention_share_panel, sample_impact_panel
from diffusion_circuits.figures.overview import FEATURE_LABEL, ife_chance_line
from diffusion_circuits.figures.panels import (
    DATASETS,
    PALETTE,
    bars,
    chance_line,
    forward_order,
    heatmap,
    line_by_dataset,
    log_scale,
    new_figure,
    note,
    panel_title,
    present_in_order,
)
from diffusion_circuits.stats.study import (
    FEATURE_COMPLEXITY,
    all_components,
    component_impacts,
    head_impacts,
    pooled_impacts,
)
from diffusion_circuits.stats.tables import GROUP_ORDER
from diffusion_circuits.vocabulary import DEPTH_BAND_OF_GROUP, DEPTH_BANDS

__all__ = ["figure5", "figure6", "figure7", "figure8"]

SCORE_COLUMNS = ("edge_score", "texture_score", "semantic_score")
# Impacts below this are drawn at it on log colour scales (0 and negatives have no log).
IMPACT_FLOOR = 1e-4


def figure5(data: FigureData):
    """Feature hierarchy: complexity by depth, role selectivity, emergence over time."""
    s = data.study
    feature = s.activations[s.activations["metric"] == FEATURE_COMPLEXITY]
    fig, ax = new_figure(4, "Figure 5. Feature hierarchy and emergence", ncols=2)
    depth = feature.groupby(["dataset", "hook"], sort=False)["value"].mean().unstack("dataset")
    # Hooks in forward order, named on the axis rather than numbered.
    hooks = forward_order(feature["hook"], s.information_flow["hook"])
    depth = depth.reindex(hooks)
    for dataset in DATASETS:
        if dataset in depth.columns:
            ax[0].plot(range(len(hooks)), depth[dataset].to_numpy(), marker="o",
                       color=PALETTE[dataset], label=dataset)  # fmt: skip
    ax[0].set_xticks(range(len(hooks)))
    ax[0].set_xticklabels(hooks, rotation=90, fontsize=5)
    ax[0].set(xlabel="hook point (forward order)", ylabel=FEATURE_LABEL)
    panel_title(ax[0], "Complexity by layer depth")
    ax[0].legend(fontsize=8)
    scores = [c for c in SCORE_COLUMNS if c in s.head_roles.columns]
    if scores:
        roles = s.head_roles.melt(id_vars=["dataset", "hook", "head"], value_vars=scores,
                                  var_name="feature_type")  # fmt: skip
        bars(ax[1], roles, "feature_type", "Feature-type selectivity of heads",
             "mean correlation with saliency")  # fmt: skip
    else:
        note(ax[1], "no per-head feature scores in the head-role table")
    for panel, dataset in zip(ax[2:], DATASETS, strict=True):
        part = feature[feature["dataset"] == dataset]
        matrix = part.groupby(["layer_group", "timestep"])["value"].mean().unstack("timestep")
        matrix = matrix.loc[present_in_order(GROUP_ORDER, matrix.index)]
        heatmap(panel, matrix, f"Emergence timeline ({dataset})", FEATURE_LABEL, cmap="viridis")
    fig.tight_layout()
    return fig


def figure6(data: FigureData):
    """Temporal dynamics: information flow, circuit activation, temporal stability."""
    s = data.study
    fig, ax = new_figure(4, "Figure 6. Temporal dynamics and circuit evolution", ncols=2)
    # the paper's depth bands, from the layer group of each pair's downstream hook
    flow = s.information_flow.assign(
        band=lambda f: f["layer_group"].map(DEPTH_BAND_OF_GROUP) + " layers"
    )
    for band, style in zip([f"{b} layers" for b in DEPTH_BANDS], ("-", "--", ":"), strict=True):
        part = flow[flow["band"] == band].groupby(["dataset", "timestep"])["value"].mean()
        for dataset in DATASETS:
            if dataset in part.index.get_level_values(0):
                series = part.loc[dataset]
                ax[0].plot(series.index, series.to_numpy(), style, marker="o",
                           color=PALETTE[dataset], label=f"{dataset}, {band}")  # fmt: skip
    ax[0].set(xlabel="timestep t", ylabel="IFE")
    panel_title(ax[0], "Information flow efficiency by depth")
    ife_chance_line(ax[0], s.information_flow)
    ax[0].legend(fontsize=6)
    components = component_impacts(s.interventions)
    matrices = {
        dataset: components[components["dataset"] == dataset]
        .groupby(["target", "timestep"])["value"].mean().unstack("timestep")
        for dataset in DATASETS
    }  # fmt: skip
    for panel, dataset in zip(ax[1:3], DATASETS, strict=True):
        _impact_heatmap(panel, matrices[dataset], f"Component impact ({dataset})")
    stability = []
    for dataset, matrix in matrices.items():
        times = list(matrix.columns)
        for a, b in zip(times[:-1], times[1:], strict=True):
            # Rank correlation: one dominant component would make Pearson's r ~1 whatever
            # the rest of the circuit does.
            r = matrix[a].corr(matrix[b], method="spearman")
            stability.append({"dataset": dataset, "pair": f"{a}-{b}", "value": r})
    if stability:
        bars(ax[3], pd.DataFrame(stability), "pair", "Temporal stability of the circuit",
             "Spearman corr. of component impacts")  # fmt: skip
    else:
        note(ax[3], "temporal stability needs >= 2 timesteps")
    fig.tight_layout()
    return fig


def _impact_heatmap(ax, matrix: pd.DataFrame, title: str) -> None:
    """Component x timestep impacts on a log colour scale (one component dominates)."""
    if matrix.empty:
        note(ax, "no component-ablation rows")
        return
    clipped = matrix.clip(lower=IMPACT_FLOOR)
    norm = LogNorm(vmin=IMPACT_FLOOR, vmax=max(float(clipped.max().max()), 10 * IMPACT_FLOOR))
    heatmap(ax, clipped, title, f"impact (log; < {IMPACT_FLOOR:g} shown at it)",
            cmap="rocket_r", norm=norm)  # fmt: skip


def figure7(data: FigureData):
    """Interventions: layer ablation, head roles, scaling, distribution, robustness, timeline,
    attention's causal share and every intervention's impact on the samples."""
    s = data.study
    impact = s.interventions[s.interventions["metric"] == "impact"]
    fig, ax = new_figure(8, "Figure 7. Intervention analysis and causal validation", ncols=4)
    layer = impact[(impact["family"] == "layer_ablation") & (impact["method"] == "zero")]
    synthetic = layer[layer["dataset"] == "synthetic"]
    for group in present_in_order(GROUP_ORDER, synthetic["target"]):
        series = synthetic[synthetic["target"] == group].groupby("timestep")["value"].mean()
        ax[0].plot(series.index, series.to_numpy(), marker="o", label=group)
    scale = log_scale(ax[0], synthetic["value"].groupby([synthetic["target"],
                                                         synthetic["timestep"]]).mean())  # fmt: skip
    ax[0].set(xlabel="timestep t", ylabel=f"impact (zero ablation, {scale} scale)")
    panel_title(ax[0], "Layer ablation across timesteps (synthetic)")
    ax[0].legend(fontsize=6)
    roles_of = s.head_roles[["dataset", "hook", "head", "role"]]
    heads = head_impacts(s.interventions).merge(roles_of, on=["dataset", "hook", "head"])
    # "none" (no role beats its null) and "global" go last, after the specific roles.
    roles = sorted(heads["role"].unique(), key=lambda r: (r in ("global", "none"), r))
    bars(ax[1], heads, "role", "Head ablation impact by role", "impact (mean ablation)",
         order=roles)  # fmt: skip
    scaling = impact[(impact["family"] == "feature_scaling") & (impact["dataset"] == "synthetic")]
    scaling = scaling.assign(factor=scaling["method"])
    bars(ax[2], scaling, "target", "Feature scaling impact (synthetic)", "impact",
         hue="factor", order=present_in_order(GROUP_ORDER, scaling["target"]))  # fmt: skip
    means = scaling.groupby(["target", "factor"])["value"].mean()
    ax[2].set_ylabel(f"impact ({log_scale(ax[2], means)} scale)")
    for dataset in DATASETS:
        values = impact.loc[impact["dataset"] == dataset, "value"]
        ax[3].hist(np.log10(values.clip(lower=1e-4)), bins=40, alpha=0.5,
                   color=PALETTE[dataset], label=dataset)  # fmt: skip
    ax[3].set(xlabel="log10 impact (clipped at 1e-4)", ylabel="count")
    panel_title(ax[3], "Intervention impact distribution")
    ax[3].legend(fontsize=7)
    robustness = all_components(data.robustness)
    across = robustness[robustness["comparison"] == "across_datasets"]
    if across.empty:
        note(ax[4], "no cross-dataset robustness rows")
    else:
        overlap = across.groupby("timestep")["value"].mean()  # mean over seeds
        ax[4].plot(overlap.index, overlap.to_numpy(), marker="o", color="#7570b3",
                   label="all components")  # fmt: skip
        ax[4].set(xlabel="timestep t", ylabel="top-k overlap (Jaccard)", ylim=(0, 1.05))
        panel_title(ax[4], "Circuit robustness across datasets")
        chance_line(ax[4], across)
    # pooled over groups: output-constant runs (an accuracy measure) left out, as in Table 4
    line_by_dataset(ax[5], pooled_impacts(s), "timestep", "Mean layer-ablation impact", "impact")
    attention_share_panel(ax[6], data.attention_share)
    sample_impact_panel(ax[7], data.sample_impact, data.seed_swap)
    fig.tight_layout()
    return fig


def figure8(data: FigureData):
    """Cross-dataset comparison and transfer."""
    s = data.study
    fig, ax = new_figure(8, "Figure 8. Cross-dataset comparison and generalisation", ncols=4)
    line_by_dataset(ax[0], all_components(s.circuit_complexity), "timestep",
                    "Circuit complexity", "participation ratio")  # fmt: skip
    divergence = data.comparisons[data.comparisons["metric"].isin(["entropy", "specialisation"])]
    for metric, colour in (("entropy", "#e7298a"), ("specialisation", "#66a61e")):
        part = divergence[divergence["metric"] == metric]
        ax[1].errorbar(part["timestep"], part["estimate"],
                       yerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]],
                       marker="o", capsize=3, color=colour, label=metric)  # fmt: skip
    ax[1].axhline(0, color="k", lw=0.8)
    ax[1].set(xlabel="timestep t", ylabel="natural - synthetic (95% CI)")
    panel_title(ax[1], f"Attention divergence ({unit_caption(data)})", fontsize=8)
    ax[1].legend(fontsize=7)
    layer = s.interventions[(s.interventions["family"] == "layer_ablation")
                            & (s.interventions["method"] == "zero")
                            & (s.interventions["metric"] == "impact")]  # fmt: skip
    bars(ax[2], layer, "target", "Layer ablation impact", "impact",
         order=present_in_order(GROUP_ORDER, layer["target"]))  # fmt: skip
    means = layer.groupby(["dataset", "target"])["value"].mean()
    ax[2].set_ylabel(f"impact ({log_scale(ax[2], means)} scale)")
    feature = s.activations[s.activations["metric"] == FEATURE_COMPLEXITY]
    bars(ax[3], feature, "layer_group", "Feature hierarchy", FEATURE_LABEL,
         order=present_in_order(GROUP_ORDER, feature["layer_group"]))  # fmt: skip
    accuracy = data.cross_accuracy[data.cross_accuracy["metric"] == "accuracy"]
    matrix = accuracy.groupby(["model", "dataset"])["value"].mean().unstack("dataset")
    heatmap(ax[4], matrix, "Generalisation: accuracy (model x data)", "R^2", annot=True,
            fmt=".3f", cmap="mako")  # fmt: skip
    cka = _cka_metric(data.cka, "cka").pivot_table(index="hook", columns="timestep",
                                                   values="value", sort=False)  # fmt: skip
    heatmap(ax[5], cka, "Cross-model similarity (linear CKA)", "CKA", vmin=0, vmax=1,
            cmap="mako")  # fmt: skip
    patching = data.patching.assign(dataset=data.patching["model"])
    bars(ax[6], patching, "target", "Transfer: patch group from other model",
         "impact on receiver", order=present_in_order(GROUP_ORDER, patching["target"]))  # fmt: skip
    _cka_by_depth(ax[7], data.cka)
    fig.tight_layout()
    return fig


def _cka_metric(cka: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of one CKA metric (``cka``, ``cka_baseline``, ``cka_above_baseline``, ...)."""
    if "metric" not in cka.columns:
        raise ValueError(f"cka table lacks column 'metric'; it has {list(cka.columns)}")
    return cka[cka["metric"] == metric]


def _cka_by_depth(ax, cka: pd.DataFrame) -> None:
    """CKA per hook (mean over t and seeds) beside the untrained-network control.

    Linear CKA between a trained and an untrained network is far from 0 (the shared
    input dominates), so the trained value only means something beside ``cka_baseline``.
    """
    trained_rows, control_rows = _cka_metric(cka, "cka"), _cka_metric(cka, "cka_baseline")
    hooks = list(dict.fromkeys(trained_rows["hook"]))
    trained = trained_rows.groupby("hook")["value"].mean().reindex(hooks)
    ax.plot(range(len(hooks)), trained.to_numpy(), marker="o", color="#7570b3",
            label="trained models")  # fmt: skip
    if not control_rows.empty:
        control = control_rows.groupby("hook")["value"].mean().reindex(hooks)
        ax.plot(range(len(hooks)), control.to_numpy(), "--", color="grey",
                label="trained vs untrained (control)")  # fmt: skip
    else:
        ax.text(0.02, 0.04, "untrained control not measured", transform=ax.transAxes,
                fontsize=7, color="grey")  # fmt: skip
    ax.set_xticks(range(len(hooks)))
    ax.set_xticklabels(hooks, rotation=90, fontsize=5)
    ax.set(ylabel="linear CKA", ylim=(0, 1.05))
    panel_title(ax, "CKA by depth vs. control")
    ax.legend(fontsize=6)
