"""The cross_dataset stage's work: every training seed's synthetic and natural models
compared (cross accuracy, CKA, cross-model patching, circuit robustness), and the
seed-swap yardstick of attention's causal share. Every table carries a ``seed`` column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from diffusion_circuits import layout
from diffusion_circuits.analysis.attention_share import seed_swap_distances
from diffusion_circuits.analysis.circuits import circuit_robustness
from diffusion_circuits.analysis.cross_dataset import (
    cross_accuracy,
    cross_model_patching,
    feature_transferability,
    summarise_cross,
)
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.analysis.sample_quality import load_feature_space
from diffusion_circuits.io import read_parquet
from diffusion_circuits.model.device import bf16_pays, resolve_device
from diffusion_circuits.model.factory import build_network
from diffusion_circuits.params import Params

__all__ = ["compare_datasets", "cross_dataset_metrics"]


def _one_seed(params: Params, seed: int, device: torch.device, bf16: bool) -> dict[str, pd.DataFrame]:  # fmt: skip
    models = [load_trained(params, dataset, seed) for dataset in layout.DATASETS]
    common = dict(
        timesteps=params.probe.timesteps, seed=params.probe.seed, batch_size=params.probe.batch_size
    )
    accuracy = cross_accuracy(models, **common)
    summary = summarise_cross(
        accuracy, params.analyze.cka_bootstrap, params.stats.confidence, params.probe.seed
    )
    # The untrained baseline is the initialisation both models of this seed started from.
    cka, cka_summary = feature_transferability(
        models,
        build_network(params.model, seed=seed).to(device),
        **common,
        n_resamples=params.analyze.cka_bootstrap,
        confidence=params.stats.confidence,
    )
    patching = cross_model_patching(models, **common, autocast_bf16=bf16)
    tops = pd.concat(
        [
            read_parquet(layout.analysis_dir(dataset, seed) / "top_components.parquet")
            for dataset in layout.DATASETS
        ]
    )
    tables = {
        "accuracy": accuracy,
        "summary": summary,
        "cka": cka,
        "cka_summary": cka_summary,
        "patching": patching,
        "robustness": circuit_robustness(tops.drop(columns="seed", errors="ignore")),
    }
    return {name: table.assign(seed=seed) for name, table in tables.items()}


def _seed_swaps(seeds) -> pd.DataFrame:
    """The seed-swap yardstick of attention's causal share: intact samples of every pair of
    training seeds, drawn by analyze from the same noise."""
    tables = []
    for dataset in layout.DATASETS:
        intact = {}
        for seed in seeds:
            path = layout.analysis_dir(dataset, seed) / "share_intact_samples.npz"
            with np.load(path) as archive:
                intact[seed] = torch.from_numpy(archive["samples"])
        space = load_feature_space(layout.features_dir(dataset))
        tables.append(seed_swap_distances(intact, space.features).assign(dataset=dataset))
    return pd.concat(tables, ignore_index=True)


def compare_datasets(params: Params) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """``data/cross_dataset/<name>.parquet`` tables and ``metrics/cross_dataset.json``."""
    device = resolve_device(params.runtime.device)
    bf16 = bf16_pays(params.analyze.mixed_precision, device)
    per_seed = [_one_seed(params, seed, device, bf16) for seed in params.train.seeds]
    tables = {
        name: pd.concat([t[name] for t in per_seed], ignore_index=True) for name in per_seed[0]
    }
    tables["seed_swap"] = _seed_swaps(params.train.seeds)
    return tables, cross_dataset_metrics(tables, params.train.seeds, bf16)


def cross_dataset_metrics(tables: dict[str, pd.DataFrame], seeds, bf16: bool) -> dict[str, Any]:
    cka = tables["cka_summary"]
    overall = cka[cka["scope"] == "all"].groupby("metric")["value"].mean()
    robustness = tables["robustness"]
    across = robustness[
        (robustness.comparison == "across_datasets") & (robustness.component_type == "all")
    ]
    return {
        "seeds": list(seeds),
        "intervention_precision": "bf16" if bf16 else "fp32",
        "cross_dataset_accuracy": tables["summary"]["value"].mean(),
        "feature_transferability": overall.get("cka"),
        "feature_transferability_baseline": overall.get("cka_baseline"),
        "feature_transferability_above_baseline": overall.get("cka_above_baseline"),
        "circuit_robustness": across["value"].mean(),
        "circuit_robustness_chance": across["chance"].mean(),
        # median over images and seed pairs; None with one seed (no pair)
        "seed_swap_median_distance": {
            f"{dataset}.{metric}": float(values.median())
            for (dataset, metric), values in tables["seed_swap"].groupby(["dataset", "metric"])[
                "value"
            ]
        },
    }
