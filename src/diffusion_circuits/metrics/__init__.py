"""Metric primitives: pure functions on tensors batched over images (docs/METRICS.md)."""

from diffusion_circuits.metrics.accuracy import noise_mse, noise_prediction_accuracy
from diffusion_circuits.metrics.attention_entropy import (
    head_entropy,
    key_saliency,
    max_entropy,
    specialisation,
)
from diffusion_circuits.metrics.cka import cka_by_layer, linear_cka
from diffusion_circuits.metrics.feature_complexity import feature_complexity, hoyer_sparsity
from diffusion_circuits.metrics.impact import impact, participation_ratio
from diffusion_circuits.metrics.information_flow import information_flow_efficiency

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
    "impact",
    "participation_ratio",
    "information_flow_efficiency",
]
