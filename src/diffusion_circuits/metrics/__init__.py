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
    attention_grid,
    edge_map,
    pool_to_grid,
    role_scores,
    texture_map,
)
from diffusion_circuits.metrics.impact import impact, participation_ratio
from diffusion_circuits.metrics.information_flow import (
    InformationFlow,
    effective_bins,
    equal_frequency_bins,
    expected_mutual_information,
    first_principal_component,
    information_flow,
    information_flow_efficiency,
    plugin_entropy,
    plugin_mutual_information,
)
from diffusion_circuits.metrics.role_significance import assign_roles, max_score_test, score_matrix

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
    "attention_grid",
    "edge_map",
    "pool_to_grid",
    "role_scores",
    "texture_map",
    "assign_roles",
    "max_score_test",
    "score_matrix",
    "impact",
    "participation_ratio",
    "InformationFlow",
    "effective_bins",
    "equal_frequency_bins",
    "expected_mutual_information",
    "first_principal_component",
    "information_flow",
    "information_flow_efficiency",
    "plugin_entropy",
    "plugin_mutual_information",
]
