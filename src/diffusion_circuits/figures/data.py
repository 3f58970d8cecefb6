"""Everything the figures read, loaded once from the pipeline's outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffusion_circuits.stats.compare import ALPHA
from diffusion_circuits.stats.loading import DATASETS, analysis_table, load_study_inputs
from diffusion_circuits.stats.study import StudyInputs

__all__ = ["FigureData", "load_figure_data"]


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


def load_figure_data(root: str | Path, seeds, alpha: float = ALPHA) -> FigureData:
    """Read every table and tensor the figures draw from the pipeline's ``data/`` folder."""
    root = Path(root)
    seed = seeds[0]
    tensors = {}
    for dataset in DATASETS:
        with np.load(root / f"cache/{dataset}-seed{seed}/figure_tensors.npz") as archive:
            tensors[dataset] = {key: archive[key] for key in archive.files}

    cross = root / "cross_dataset"
    return FigureData(
        study=load_study_inputs(root, seeds),
        comparisons=pd.read_parquet(root / "stats/comparisons.parquet"),
        top_components=analysis_table(root, "top_components", seeds),
        cross_accuracy=pd.read_parquet(cross / "accuracy.parquet"),
        cka=pd.read_parquet(cross / "cka.parquet"),
        patching=pd.read_parquet(cross / "patching.parquet"),
        robustness=pd.read_parquet(cross / "robustness.parquet"),
        tensors=tensors,
        attention_share=analysis_table(root, "attention_share", seeds),
        sample_impact=analysis_table(root, "sample_impact", seeds),
        seed_swap=pd.read_parquet(cross / "seed_swap.parquet"),
        alpha=alpha,
    )
