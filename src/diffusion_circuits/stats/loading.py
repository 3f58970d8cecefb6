"""Read the analysis outputs of every dataset and seed into one :class:`StudyInputs`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from diffusion_circuits.io import read_parquet
from diffusion_circuits.layout import DATASETS, analysis_dir, cache_dir, eval_dir
from diffusion_circuits.stats.study import StudyInputs

__all__ = ["load_study_inputs", "analysis_table"]


def _concat(root: Path, folder: Callable[..., Path], file_name: str, seeds) -> pd.DataFrame:
    """``<folder of each model>/<file_name>`` of every dataset and seed, concatenated;
    ``folder`` is a per-model folder of :mod:`diffusion_circuits.layout`."""
    paths = [folder(d, s, root) / file_name for d in DATASETS for s in seeds]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing analysis output {missing[0]} (run the earlier stages)")
    return pd.concat([read_parquet(p) for p in paths], ignore_index=True)


def analysis_table(root: str | Path, table: str, seeds) -> pd.DataFrame:
    """``data/analysis/<model>/<table>.parquet`` of every dataset and seed, concatenated."""
    return _concat(Path(root), analysis_dir, f"{table}.parquet", seeds)


def load_study_inputs(root: str | Path, seeds) -> StudyInputs:
    root = Path(root)
    return StudyInputs(
        accuracy=_concat(root, eval_dir, "accuracy.parquet", seeds),
        activations=_concat(root, cache_dir, "activations.parquet", seeds),
        attention=_concat(root, cache_dir, "attention.parquet", seeds),
        information_flow=_concat(root, cache_dir, "information_flow.parquet", seeds),
        interventions=analysis_table(root, "interventions", seeds),
        circuit_complexity=analysis_table(root, "circuit_complexity", seeds),
        head_roles=analysis_table(root, "head_roles", seeds),
    )
