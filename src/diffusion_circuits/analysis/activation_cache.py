"""The cache_activations stage's work: one model's per-image activation, attention and
information-flow summaries, its key saliency and the tensors the figures draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from diffusion_circuits.analysis.activations import summarise_activations
from diffusion_circuits.analysis.figure_tensors import figure_tensors
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.params import Params

__all__ = ["ActivationCache", "cache_model"]


@dataclass(frozen=True)
class ActivationCache:
    tables: dict[str, pd.DataFrame]  # table name -> rows, with dataset and seed columns
    saliency: dict[str, np.ndarray]
    figure_tensors: dict[str, np.ndarray]
    metrics: dict[str, Any]  # metrics/cache/<model>.json


def cache_model(params: Params, dataset: str, seed: int) -> ActivationCache:
    model = load_trained(params, dataset, seed)
    summaries = summarise_activations(
        model.network,
        model.scheduler,
        model.probe_set,
        params.probe.timesteps,
        seed=params.probe.seed,
        batch_size=params.probe.batch_size,
        ife_bins=params.analyze.ife_bins,
    )
    tensors = figure_tensors(model, params)
    tables = {
        "activations": summaries.activations,
        "attention": summaries.attention,
        "information_flow": summaries.information_flow,
    }
    for table in tables.values():
        table.insert(0, "dataset", dataset)
        table.insert(1, "seed", seed)
    probed_sources = model.faces.attributes.set_index("image_id").loc[
        model.probe_set.image_ids, "source_id"
    ]
    metrics = {
        "n_images": len(model.probe_set.image_ids),
        "n_distinct_sources": int(probed_sources.nunique()),
        "image_selection": model.probe_set.selection,
        "rows": {name: len(table) for name, table in tables.items()},
        # IFE is chance-adjusted; bins per grid are capped at sqrt(positions).
        "information_flow_bins": sorted(
            int(b) for b in summaries.information_flow["bins"].unique()
        ),
    }
    return ActivationCache(tables, summaries.saliency, tensors, metrics)
