"""Probe library: named hook points, capture and interventions for diffusers UNet2DModels.

What TransformerLens is for language models, for any diffusers ``UNet2DModel``: canonical
hook-point names (``probe.names``), capture of activations and per-head attention
patterns through a recording attention processor, and scoped, composable interventions.
Imports only torch, diffusers, numpy and the standard library; see docs/PROBE.md.
"""

from diffusion_circuits.probe.interventions import (
    AttentionPerturbation,
    BottleneckCut,
    FeatureScaling,
    HeadAblation,
    Intervention,
    MeanAblation,
    Patch,
    ResampleAblation,
    SkipCut,
    ZeroAblation,
)
from diffusion_circuits.probe.names import ATTENTION_SITES, LAYER_GROUPS, NamesFilter
from diffusion_circuits.probe.probe import ActivationCache, Probe, run_with_cache

__all__ = [
    "Probe",
    "run_with_cache",
    "ActivationCache",
    "NamesFilter",
    "ATTENTION_SITES",
    "LAYER_GROUPS",
    "Intervention",
    "ZeroAblation",
    "MeanAblation",
    "ResampleAblation",
    "FeatureScaling",
    "Patch",
    "SkipCut",
    "BottleneckCut",
    "HeadAblation",
    "AttentionPerturbation",
]
