"""The evaluate stage's work: one model's held-out accuracy(t) beside the no-learning baselines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from diffusion_circuits.analysis.accuracy import BASELINES, accuracy_table, pixel_moments
from diffusion_circuits.analysis.model_io import load_trained
from diffusion_circuits.data.store import split_images
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.params import Params
from diffusion_circuits.stats.accuracy import margin_intervals

__all__ = ["evaluate_model", "evaluation_metrics"]


def evaluate_model(params: Params, dataset: str, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The accuracy table (``data/eval/<model>/accuracy.parquet``) and its metrics."""
    model = load_trained(params, dataset, seed, n_probe=params.evaluate.n_images)
    channels = model.network.config.in_channels
    accuracy = accuracy_table(
        model.network,
        model.scheduler,
        model.probe_set.x0,
        model.probe_set.image_ids,
        params.probe.timesteps,
        seed=params.probe.seed,
        moments=pixel_moments(images_to_tensor(split_images(model.faces, "train"), channels)),
    )
    accuracy.insert(0, "dataset", dataset)
    accuracy.insert(1, "seed", seed)
    return accuracy, evaluation_metrics(accuracy, model.probe_set.image_ids, params)


def evaluation_metrics(accuracy: pd.DataFrame, image_ids, params: Params) -> dict[str, Any]:
    """``metrics/evaluate/<model>.json``: mean accuracy and baselines per timestep, and
    whether the model beats both baselines everywhere (by its mean, and by its CI)."""
    means = accuracy.groupby(["metric", "timestep"])["value"].mean()
    margin_ci = margin_intervals(
        accuracy,
        n_resamples=params.stats.n_resamples,
        seed=params.stats.seed,
        confidence=params.stats.confidence,
    )
    return {
        "n_eval_images": len(image_ids),
        "n_distinct_sources": len(np.unique(image_ids)),
        "accuracy": {f"t{t}": v for t, v in means["accuracy"].items()},
        **{b: {f"t{t}": v for t, v in means[b].items()} for b in BASELINES},
        "margin_over_best_baseline": {f"t{t}": v for t, v in means["accuracy_margin"].items()},
        "margin_ci_over_images": margin_ci,
        "beats_baselines_everywhere": bool(means["accuracy_margin"].min() > 0),
        "beats_baselines_everywhere_by_ci": all(low > 0 for low, _ in margin_ci.values()),
    }
