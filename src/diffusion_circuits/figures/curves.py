"""Per-timestep curves as CSV for ``dvc plots``: one file per quantity, wide by dataset.

``dvc plots show`` and ``dvc plots diff`` draw CSV/TSV series, not parquet, and group lines
by column, so each file has one row per timestep and, per dataset, the mean over seeds and
images with its hierarchical-bootstrap interval (seeds, then images within each seed; an
image bootstrap when there is one seed): ``synthetic``, ``synthetic_ci_low``,
``synthetic_ci_high``, ``natural``, ... The PNG figures show the same numbers with bands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from diffusion_circuits.io import write_text
from diffusion_circuits.stats.hierarchical import hierarchical_mean_ci
from diffusion_circuits.stats.study import StudyInputs

__all__ = ["CURVES", "per_image", "timestep_curve", "write_curves"]


def per_image(table: pd.DataFrame, **equal) -> pd.DataFrame:
    """Rows matching ``equal`` (column=value), averaged to one value per seed, image, timestep."""
    for column, value in equal.items():
        table = table[table[column] == value]
    keys = ["dataset", "seed", "image_id", "timestep"]
    return table.groupby(keys, as_index=False)["value"].mean()


# file name -> how to get one value per (dataset, seed, image, timestep) from the study
CURVES: dict[str, Callable[[StudyInputs], pd.DataFrame]] = {
    "accuracy": lambda s: per_image(s.accuracy, metric="accuracy"),
    "accuracy_margin_over_baselines": lambda s: per_image(s.accuracy, metric="accuracy_margin"),
    "attention_entropy": lambda s: per_image(s.attention, metric="entropy"),
    "attention_specialisation": lambda s: per_image(s.attention, metric="specialisation"),
    "feature_complexity_scaled": lambda s: per_image(
        s.activations, metric="feature_complexity_scaled"
    ),
    "information_flow_efficiency": lambda s: per_image(s.information_flow),
    "circuit_complexity": lambda s: per_image(s.circuit_complexity),
    "layer_ablation_mean_impact": lambda s: per_image(
        s.interventions, family="layer_ablation", method="mean", metric="impact"
    ),
}


def timestep_curve(
    values: pd.DataFrame, n_resamples: int, seed: int, confidence: float
) -> pd.DataFrame:
    """Wide per-timestep table of ``per_image`` values: mean and interval per dataset."""
    rows = []
    for (dataset, timestep), part in values.groupby(["dataset", "timestep"]):
        by_seed = [g["value"].to_numpy() for _, g in part.groupby("seed")]
        estimate, low, high = hierarchical_mean_ci(
            by_seed, n_resamples=n_resamples, seed=seed, confidence=confidence
        )
        rows.append({"timestep": timestep, "dataset": dataset, "": estimate,
                     "_ci_low": low, "_ci_high": high})  # fmt: skip
    long = pd.DataFrame(rows).set_index(["timestep", "dataset"]).unstack("dataset")
    long.columns = [f"{dataset}{suffix}" for suffix, dataset in long.columns]
    return long.reset_index()


def write_curves(
    study: StudyInputs, folder: str | Path, n_resamples: int, seed: int, confidence: float
) -> list[Path]:
    """Write ``<folder>/<name>.csv`` for every curve the study has data for."""
    written = []
    for name, extract in CURVES.items():
        values = extract(study)
        if values.empty:
            continue
        path = Path(folder) / f"{name}.csv"
        write_text(timestep_curve(values, n_resamples, seed, confidence).to_csv(index=False), path)
        written.append(path)
    return written
