"""Everything the figures read, loaded once from the pipeline's outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffusion_circuits.io import read_parquet
from diffusion_circuits.layout import DATASETS, cache_dir, cross_dataset_dir, stats_dir
from diffusion_circuits.stats.compare import ALPHA
from diffusion_circuits.stats.loading import analysis_table, load_study_inputs
from diffusion_circuits.stats.study import ALL_SEEDS, StudyInputs

__all__ = ["FigureData", "claim_level_comparisons", "load_figure_data", "unit_caption"]


@dataclass(frozen=True)
class FigureData:
    study: StudyInputs
    comparisons: pd.DataFrame
    top_components: pd.DataFrame
    cross_accuracy: pd.DataFrame
    cka: pd.DataFrame
    patching: pd.DataFrame
    robustness: pd.DataFrame
    tensors: dict[str, dict[str, np.ndarray]]  # dataset -> figure tensors
    attention_share: pd.DataFrame  # one-step attention-share runs, every model
    sample_impact: pd.DataFrame  # sample-level runs, every model
    seed_swap: pd.DataFrame  # distances between intact samples of two training seeds
    alpha: float = ALPHA  # significance level drawn on the figures (params: stats.alpha)
    comparisons_unit: str = "image"  # the unit of ``comparisons``: seed | image


def claim_level_comparisons(inference: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The per-timestep dataset comparisons at the unit the report judges them on.

    ``inference``: the stats stage's ``inference.parquet``. Seed rows (training runs and
    images) when there are two or more seeds per dataset, else the image rows of the one
    model per dataset; returns ``(rows, unit)``.
    """
    rows = inference[(inference["seed_scope"] == ALL_SEEDS) & (inference["family"] != "table4")]
    seed_rows = rows[rows["unit"] == "seed"]
    unit = "seed" if np.isfinite(seed_rows["p_value"].to_numpy(dtype=float)).any() else "image"
    chosen = rows[rows["unit"] == unit].drop(columns=["family", "seed_scope"])
    return chosen.reset_index(drop=True), unit


def unit_caption(data: FigureData) -> str:
    """What one row of ``data.comparisons`` compares, for a figure heading."""
    if data.comparisons_unit == "seed":
        return "seed level: training runs and images"
    return "one model per dataset, these images"


def load_figure_data(root: str | Path, seeds, alpha: float = ALPHA) -> FigureData:
    """Read every table and tensor the figures draw from the pipeline's ``data/`` folder."""
    root = Path(root)
    seed = seeds[0]
    tensors = {}
    for dataset in DATASETS:
        with np.load(cache_dir(dataset, seed, root) / "figure_tensors.npz") as archive:
            tensors[dataset] = {key: archive[key] for key in archive.files}

    cross = cross_dataset_dir(root)
    comparisons, unit = claim_level_comparisons(read_parquet(stats_dir(root) / "inference.parquet"))
    return FigureData(
        study=load_study_inputs(root, seeds),
        comparisons=comparisons,
        comparisons_unit=unit,
        top_components=analysis_table(root, "top_components", seeds),
        cross_accuracy=read_parquet(cross / "accuracy.parquet"),
        cka=read_parquet(cross / "cka.parquet"),
        patching=read_parquet(cross / "patching.parquet"),
        robustness=read_parquet(cross / "robustness.parquet"),
        tensors=tensors,
        attention_share=analysis_table(root, "attention_share", seeds),
        sample_impact=analysis_table(root, "sample_impact", seeds),
        seed_swap=read_parquet(cross / "seed_swap.parquet"),
        alpha=alpha,
    )
