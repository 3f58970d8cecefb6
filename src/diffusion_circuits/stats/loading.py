"""Read the analysis outputs of every dataset and seed into one :class:`StudyInputs`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffusion_circuits.stats.study import StudyInputs

__all__ = ["load_study_inputs", "analysis_table"]

DATASETS = ("synthetic", "natural")


def _concat(root: Path, pattern: str, seeds) -> pd.DataFrame:
    paths = [root / pattern.format(dataset=d, seed=s) for d in DATASETS for s in seeds]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing analysis output {missing[0]} (run the earlier stages)")
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def analysis_table(root: str | Path, table: str, seeds) -> pd.DataFrame:
    """``data/analysis/<model>/<table>.parquet`` of every dataset and seed, concatenated."""
    return _concat(Path(root), f"analysis/{{dataset}}-seed{{seed}}/{table}.parquet", seeds)


def load_study_inputs(root: str | Path, seeds) -> StudyInputs:
    root = Path(root)
    name = "{dataset}-seed{seed}"
    return StudyInputs(
        accuracy=_concat(root, f"eval/{name}/accuracy.parquet", seeds),
        activations=_concat(root, f"cache/{name}/activations.parquet", seeds),
        attention=_concat(root, f"cache/{name}/attention.parquet", seeds),
        information_flow=_concat(root, f"cache/{name}/information_flow.parquet", seeds),
        interventions=_concat(root, f"analysis/{name}/interventions.parquet", seeds),
        circuit_complexity=_concat(root, f"analysis/{name}/circuit_complexity.parquet", seeds),
        head_roles=_concat(root, f"analysis/{name}/head_roles.parquet", seeds),
    )
