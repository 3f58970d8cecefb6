"""Statistics over tidy tables: comparisons, corrections and the paper's tables."""

from diffusion_circuits.stats.compare import cohen_label, compare_datasets, compare_groups
from diffusion_circuits.stats.corrections import adjust_family

__all__ = ["cohen_label", "compare_datasets", "compare_groups", "adjust_family"]
