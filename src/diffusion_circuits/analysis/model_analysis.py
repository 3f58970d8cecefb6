"""The analyze stage's work: one model's interventions, circuit complexity, head roles and
attention's causal share, as tables and the metrics that summarise them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from diffusion_circuits import layout
from diffusion_circuits.analysis.attention_share import NO_RESNET_YARDSTICK
from diffusion_circuits.analysis.circuits import (
    baseline_agreement,
    circuit_complexity,
    component_types,
    top_components,
)
from diffusion_circuits.analysis.interventions import run_interventions
from diffusion_circuits.analysis.model_io import load_trained, reference_images
from diffusion_circuits.analysis.roles import head_roles
from diffusion_circuits.analysis.sample_impact import attention_share_and_sample_impact
from diffusion_circuits.analysis.sample_quality import load_feature_space
from diffusion_circuits.io import read_parquet
from diffusion_circuits.model.device import bf16_pays
from diffusion_circuits.params import Params
from diffusion_circuits.probe import Probe

__all__ = ["ModelAnalysis", "analyze_model", "analysis_metrics", "absent_quantities"]


@dataclass(frozen=True)
class ModelAnalysis:
    tables: dict[str, pd.DataFrame]  # data/analysis/<model>/<name>.parquet
    intact_samples: torch.Tensor  # samples from the common noise: cross_dataset's seed swap
    metrics: dict[str, Any]  # metrics/analyze/<model>.json


def _cached_attention(dataset: str, seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The cache_activations stage's attention table and key saliency of this model."""
    folder = layout.cache_dir(dataset, seed)
    attention = read_parquet(folder / "attention.parquet")
    with np.load(folder / "saliency.npz") as archive:
        saliency = {key: archive[key] for key in archive.files}
    return attention, saliency


def analyze_model(params: Params, dataset: str, seed: int) -> ModelAnalysis:
    model = load_trained(params, dataset, seed)
    bf16 = bf16_pays(params.analyze.mixed_precision, model.network.device)
    reference = reference_images(
        model.faces, params.analyze.n_reference, model.network.config.in_channels
    )
    interventions = run_interventions(
        model.network,
        model.scheduler,
        model.probe_set,
        reference,
        params.probe.timesteps,
        seed=params.probe.seed,
        batch_size=params.probe.batch_size,
        params=params.analyze,
        autocast_bf16=bf16,
    )
    types = component_types(Probe(model.network))
    complexity = circuit_complexity(interventions, types)
    tops = top_components(interventions, params.analyze.top_k, types)
    agreement = baseline_agreement(interventions, types)
    attention, saliency = _cached_attention(dataset, seed)
    scores, roles = head_roles(
        saliency,
        model.probe_set.images,
        model.probe_set.masks,
        attention,
        params.analyze.global_threshold,
        alpha=params.analyze.role_alpha,
        n_permutations=params.analyze.null_permutations,
        seed=params.probe.seed,
    )
    generation, share, intact = attention_share_and_sample_impact(
        model.network,
        model.scheduler,
        model.probe_set,
        reference,
        params,
        load_feature_space(layout.features_dir(dataset)),
    )
    metrics = analysis_metrics(interventions, complexity, roles, agreement, share, bf16)
    absent = absent_quantities(Probe(model.network))
    if absent:  # a U-Net has every quantity: its metrics file keeps its keys
        metrics["absent_for_backbone"] = absent
    is_all = complexity.component_type == "all"
    tables = {
        **generation,
        "interventions": interventions,
        # All components together (Table 1); per component type in its own table.
        "circuit_complexity": complexity[is_all].reset_index(drop=True),
        "circuit_complexity_by_type": complexity[~is_all].reset_index(drop=True),
        "top_components": tops,
        "baseline_agreement": agreement,
        "head_role_scores": scores,
        "head_roles": roles,
    }
    for table in tables.values():
        table.insert(0, "dataset", dataset)
        table.insert(1, "seed", seed)
    return ModelAnalysis(tables, intact, metrics)


def absent_quantities(probe: Probe) -> dict[str, str]:
    """The study's quantities this model's architecture does not have -> why, read from the
    probe's structure (a DiT: no ResNet blocks, skip edges or bottleneck). Their tables
    hold no rows for them: no zeros stand in for what does not exist."""
    absent = {}
    if not probe.resnets:
        absent["resnet_components"] = "no ResNet blocks: circuit complexity has no resnet type"
        absent["attention_share.resnet_zero"] = NO_RESNET_YARDSTICK
    if not probe.skip_edges:
        absent["circuit_interruption.skip"] = "no encoder->decoder skip edges to cut"
    if probe.bottleneck is None:
        absent["circuit_interruption.bottleneck"] = "no bottleneck (U-Net mid block) to cut"
    return absent


def analysis_metrics(
    interventions: pd.DataFrame,
    complexity: pd.DataFrame,
    roles: pd.DataFrame,
    agreement: pd.DataFrame,
    share: dict[str, Any],
    bf16: bool,
) -> dict[str, Any]:
    """``metrics/analyze/<model>.json``: per-timestep means of the model's tables."""
    impacts = interventions[interventions.metric == "impact"]
    layer = impacts[(impacts.family == "layer_ablation") & (impacts.method == "zero")]
    is_all = complexity.component_type == "all"
    return {
        # fp32 unless analyze.mixed_precision is bf16 on a GPU or a CPU with native bf16.
        "intervention_precision": "bf16" if bf16 else "fp32",
        "circuit_complexity": complexity[is_all]
        .groupby("timestep")["value"]
        .mean()
        .rename(lambda t: f"t{t}")
        .to_dict(),
        "circuit_complexity_by_type": complexity[~is_all]
        .groupby(["component_type", "timestep"])["value"]
        .mean()
        .pipe(lambda s: {f"{c}.t{t}": v for (c, t), v in s.items()}),
        "layer_ablation_zero_impact": layer.groupby(["timestep", "target"])["value"]
        .mean()
        .pipe(lambda s: {f"t{t}.{g}": v for (t, g), v in s.items()}),
        "output_constant_runs": int(
            impacts.drop_duplicates(["timestep", "family", "target", "method"])[
                "output_constant"
            ].sum()
        ),
        "head_roles": roles["role"].value_counts().to_dict(),
        "baseline_rank_agreement": agreement[agreement.component_type == "all"]
        .groupby(["method_a", "method_b"])["value"]
        .mean()
        .pipe(lambda s: {f"{a}|{b}": v for (a, b), v in s.items()}),
        "attention_share": share,
        "attention_perturbation_impact": impacts[impacts.family == "attention_perturbation"]
        .groupby("method")["value"]
        .mean()
        .to_dict(),
    }
