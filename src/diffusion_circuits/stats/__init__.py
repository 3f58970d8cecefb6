"""Statistics over tidy tables: comparisons, corrections and the paper's tables."""

from diffusion_circuits.stats.accuracy import accuracy_table
from diffusion_circuits.stats.compare import (
    bootstrap_ci,
    cohen_label,
    compare_datasets,
    compare_groups,
)
from diffusion_circuits.stats.corrections import adjust_family
from diffusion_circuits.stats.tables import (
    table1_circuit_complexity,
    table2_head_specialisation,
    table3_layer_ablation,
    table4_cross_dataset,
    to_markdown,
)
from diffusion_circuits.stats.unit_comparison import (
    compare_by_unit,
    seed_level_comparison,
)

__all__ = [
    "accuracy_table",
    "adjust_family",
    "bootstrap_ci",
    "cohen_label",
    "compare_by_unit",
    "compare_datasets",
    "compare_groups",
    "seed_level_comparison",
    "table1_circuit_complexity",
    "table2_head_specialisation",
    "table3_layer_ablation",
    "table4_cross_dataset",
    "to_markdown",
]
