"""Every statistic of the study from the pipeline's tidy tables (what the stats stage runs)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from diffusion_circuits.stats.compare import compare_datasets
from diffusion_circuits.stats.corrections import adjust_family
from diffusion_circuits.stats.tables import (
    table1_circuit_complexity,
    table2_head_specialisation,
    table3_layer_ablation,
    table4_cross_dataset,
    unit_note,
)

__all__ = ["StudyInputs", "study_statistics"]


@dataclass(frozen=True)
class StudyInputs:
    """Concatenated tidy tables of both datasets (columns ``dataset`` and ``seed`` included)."""

    accuracy: pd.DataFrame  # held-out accuracy(t) from the train stage
    activations: pd.DataFrame
    attention: pd.DataFrame
    information_flow: pd.DataFrame
    interventions: pd.DataFrame
    circuit_complexity: pd.DataFrame
    head_roles: pd.DataFrame


def _unit(inputs: StudyInputs) -> str:
    return "seed" if inputs.circuit_complexity["seed"].nunique() > 1 else "image_id"


def study_statistics(
    inputs: StudyInputs,
    *,
    n_resamples: int,
    seed: int,
    confidence: float,
    table3_timestep: int = 300,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Tables 1-4 and one long table of every dataset comparison, Holm within families.

    Families: ``accuracy``, ``feature_complexity``, ``information_flow``, ``entropy``,
    ``specialisation`` and ``circuit_complexity`` (each compared per timestep), and the
    layer-ablation impacts (per timestep and group).
    """
    unit = _unit(inputs)
    common = dict(n_resamples=n_resamples, seed=seed, confidence=confidence, unit=unit)
    activations = inputs.activations
    feature = activations[activations["metric"] == "feature_complexity"]
    attention = inputs.attention
    impacts = inputs.interventions[
        (inputs.interventions["metric"] == "impact")
        & (inputs.interventions["family"] == "layer_ablation")
        & (inputs.interventions["method"] == "zero")
    ]
    comparisons = pd.concat(
        [
            compare_datasets(inputs.accuracy[inputs.accuracy["metric"] == "accuracy"], **common),
            compare_datasets(feature, **common),
            compare_datasets(inputs.information_flow, **common),
            compare_datasets(attention, **common),
            compare_datasets(inputs.circuit_complexity, **common),
            compare_datasets(
                impacts.assign(metric="layer_ablation_impact"),
                by=["metric", "timestep", "target"],
                **common,
            ),
        ],
        ignore_index=True,
    )
    comparisons = adjust_family(comparisons, family="metric")
    timesteps = sorted(impacts["timestep"].unique())
    t3 = min(timesteps, key=lambda t: abs(t - table3_timestep))
    tables = {
        "table1_circuit_complexity": table1_circuit_complexity(inputs.circuit_complexity, **common),
        # The paper's Table 2 is "t=300 representative": the same timestep as Table 3.
        "table2_head_specialisation": table2_head_specialisation(
            attention, inputs.head_roles, unit=unit, timestep=t3
        ),
        "table3_layer_ablation": pd.concat(
            [
                table3_layer_ablation(
                    inputs.interventions, dataset=d, timestep=t3, n_resamples=n_resamples, seed=seed
                ).assign(dataset=d, timestep=t3)
                for d in ("synthetic", "natural")
            ],
            ignore_index=True,
        ),
        "table4_cross_dataset": table4_cross_dataset(
            {
                "circuit_complexity": inputs.circuit_complexity,
                "attention_entropy": attention[attention["metric"] == "entropy"],
                "feature_complexity": feature,
                "intervention_impact": impacts,
            },
            **common,
        ),
        "comparisons": comparisons,
    }
    tables["table3_layer_ablation"].attrs["unit_note"] = unit_note(unit)
    return tables, comparisons
