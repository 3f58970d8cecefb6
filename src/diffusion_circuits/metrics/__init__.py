"""Metric primitives: pure functions on tensors batched over images (docs/METRICS.md).

The first axis of every input is the image, the statistical unit; each function returns
one value per image (or per image and head) in float64.
"""

from diffusion_circuits.metrics.accuracy import noise_mse, noise_prediction_accuracy
from diffusion_circuits.metrics.attention_entropy import (
    head_entropy,
    key_saliency,
    max_entropy,
    specialisation,
)
from diffusion_circuits.metrics.cka import cka_by_layer, linear_cka
from diffusion_circuits.metrics.feature_complexity import feature_complexity, hoyer_sparsity
from diffusion_circuits.metrics.head_roles import (
    assign_roles,
    attention_grid,
    edge_map,
    role_scores,
    texture_map,
)
from diffusion_circuits.metrics.impact import impact, participation_ratio
from diffusion_circuits.metrics.information_flow import (
    equal_frequency_bins,
    first_principal_component,
    information_flow_efficiency,
    plugin_entropy,
    plugin_mutual_information,
)

__all__ = [
    "noise_mse",
    "noise_prediction_accuracy",
    "head_entropy",
    "key_saliency",
    "max_entropy",
    "specialisation",
    "cka_by_layer",
    "linear_cka",
    "feature_complexity",
    "hoyer_sparsity",
    "assign_roles",
    "attention_grid",
    "edge_map",
    "role_scores",
    "texture_map",
    "impact",
    "participation_ratio",
    "equal_frequency_bins",
    "first_principal_component",
    "information_flow_efficiency",
    "plugin_entropy",
    "plugin_mutual_information",
]
