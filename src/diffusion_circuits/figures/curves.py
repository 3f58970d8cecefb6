"""Per-timestep curves as tidy CSV for ``dvc plots``: one file per quantity.

``dvc plots show`` and ``dvc plots diff`` draw CSV/TSV series, not parquet, so each file
has one row per timestep and dataset: ``timestep, dataset, estimate, ci_low, ci_high``,
the mean over seeds and images with its seed-level interval (the crossed seeds x images
model of ``stats/seed_level.py``; t over the images when there is one seed). The
``confidence_band`` template (``.dvc/plots/``) draws one colour per dataset and the
interval as a band; the PNG figures show the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from diffusion_circuits.io import write_text
from diffusion_circuits.stats.seed_level import crossed_mean, crossed_table
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


def timestep_curve(values: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Tidy per-timestep table of ``per_image`` values: estimate and interval per dataset."""
    rows = []
    for (dataset, timestep), part in values.groupby(["dataset", "timestep"]):
        row = crossed_mean(crossed_table(part), confidence)
        rows.append({"timestep": timestep, "dataset": dataset, "estimate": row["estimate"],
                     "ci_low": row["ci_low"], "ci_high": row["ci_high"]})  # fmt: skip
    return pd.DataFrame(rows, columns=["timestep", "dataset", "estimate", "ci_low", "ci_high"])


def write_curves(study: StudyInputs, folder: str | Path, confidence: float) -> list[Path]:
    """Write ``<folder>/<name>.csv`` for every curve the study has data for."""
    written = []
    for name, extract in CURVES.items():
        values = extract(study)
        if values.empty:
            continue
        path = Path(folder) / f"{name}.csv"
        write_text(timestep_curve(values, confidence).to_csv(index=False), path)
        written.append(path)
    return written
