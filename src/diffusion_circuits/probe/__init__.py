"""Probe library: named hook points, capture and interventions for diffusers UNet2DModels.

Imports only torch and diffusers-compatible modules; see docs/PROBE.md.
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
from diffusion_circuits.probe.names import ATTENTION_SITES, LAYER_GROUPS
from diffusion_circuits.probe.probe import NamesFilter, Probe, run_with_cache

__all__ = [
    "Probe",
    "run_with_cache",
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
