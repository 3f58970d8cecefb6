"""The samples stage's work: one model's DDIM samples, scored against held-out real images
with the feature network of its dataset (analysis/sample_quality.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from diffusion_circuits import layout
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.analysis.sample_quality import (
    attribute_fidelity,
    load_feature_space,
    max_frequency_error,
    quality_scores,
)
from diffusion_circuits.data.store import heldout_originals
from diffusion_circuits.io import read_json
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.params import Params

__all__ = ["ModelSamples", "sample_model"]


@dataclass(frozen=True)
class ModelSamples:
    samples: torch.Tensor  # [n_samples, C, H, W] in [-1, 1]
    attributes: pd.DataFrame  # predicted attribute frequencies; empty without attribute heads
    metrics: dict[str, Any]  # metrics/samples/<model>.json


def sample_model(params: Params, dataset: str, seed: int) -> ModelSamples:
    """DDIM samples (EMA weights) of one model, scored against held-out real images and
    set beside the feature_net stage's real-vs-real ceiling."""
    cfg = params.samples
    model = load_trained(params, dataset, seed)
    channels = model.network.config.in_channels
    samples = sample_trajectory(
        model.network, model.scheduler, cfg.n_samples, seed=cfg.seed,
        num_inference_steps=cfg.ddim_steps, record=[],
    ).samples  # fmt: skip
    feature_space = load_feature_space(layout.features_dir(dataset))
    scores = quality_scores(feature_space, model.faces, samples, channels, cfg.k)
    controls = read_json(layout.stage_metrics("feature_net", dataset))
    ceiling = controls["real_vs_real"]
    fidelity = attribute_fidelity(feature_space, model.faces, samples, channels)
    metrics = {
        **scores,
        "fraction_of_ceiling": {
            key: scores[key] / ceiling[key] if ceiling.get(key) else None
            for key in ("precision", "recall", "clean_fraction")
        },
        "n_samples": cfg.n_samples,
        "n_heldout_sources": len(heldout_originals(model.faces.attributes)),
    }
    if not fidelity.empty:
        fidelity.insert(0, "dataset", dataset)
        fidelity.insert(1, "seed", seed)
        metrics["max_attribute_frequency_error"] = max_frequency_error(
            fidelity["sample_frequency"], fidelity["heldout_predicted_frequency"]
        )
        metrics["max_attribute_frequency_error_vs_labels"] = max_frequency_error(
            fidelity["sample_frequency"], fidelity["data_frequency"]
        )
        # What n real held-out faces score on the same measure: the floor of a perfect sampler.
        metrics["max_attribute_frequency_error_of_real_draws"] = controls[
            "attribute_error_of_real_draws"
        ]
    return ModelSamples(samples, fidelity, metrics)
