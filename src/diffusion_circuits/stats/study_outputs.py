"""The stats stage's work: every comparison of the study, Tables 1-4 (CSV and Markdown)
and the attention-share tables, ready to be written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from diffusion_circuits.params import Params
from diffusion_circuits.stats.attention_share import (
    attention_share_markdown,
    attention_share_tables,
    with_sample_impact,
)
from diffusion_circuits.stats.loading import load_study_inputs
from diffusion_circuits.stats.study import study_statistics
from diffusion_circuits.stats.summary import stats_metrics, table_captions
from diffusion_circuits.stats.tables import to_markdown

__all__ = ["StudyOutputs", "study_outputs"]


@dataclass(frozen=True)
class StudyOutputs:
    table_files: dict[str, str]  # file name under reports/tables/ -> its text
    comparisons: pd.DataFrame  # data/stats/comparisons.parquet
    inference: pd.DataFrame  # data/stats/inference.parquet
    metrics: dict[str, Any]  # metrics/stats.json


def study_outputs(params: Params, root: str | Path) -> StudyOutputs:
    """Compare the datasets on every model's outputs under ``root`` (the ``data/`` folder)."""
    inputs = load_study_inputs(root, params.train.seeds)
    tables, comparisons = study_statistics(
        inputs,
        n_resamples=params.stats.n_resamples,
        seed=params.stats.seed,
        confidence=params.stats.confidence,
        alpha=params.stats.alpha,
    )
    share = attention_share_tables(root, params.train.seeds)
    tables["table3_layer_ablation"] = with_sample_impact(
        tables["table3_layer_ablation"], share["sample_impact"]
    )
    captions = table_captions()
    inference = tables.pop("inference")
    files = {}
    for name, table in tables.items():
        files[f"{name}.csv"] = table.to_csv(index=False)
        if name in captions:
            files[f"{name}.md"] = to_markdown(table, captions[name])
    for name, table in share.items():
        files[f"{name}.csv"] = table.to_csv(index=False)
    files["attention_share.md"] = attention_share_markdown(
        share["attention_share"], share["sample_impact"]
    )
    return StudyOutputs(files, comparisons, inference, stats_metrics(tables))
