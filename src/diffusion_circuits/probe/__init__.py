"""Probe library: named hook points, capture and interventions for diffusers denoisers.

What TransformerLens is for language models, for diffusers ``UNet2DModel``,
``UNet2DConditionModel`` (Stable Diffusion), ``DiTTransformer2DModel`` and
``PixArtTransformer2DModel`` (one adapter per family in ``probe.adapters``): canonical
hook-point names (``probe.names``), capture of activations and per-head attention
patterns through a recording attention processor, and scoped, composable interventions.
Whole sampling trajectories stream to memory or to disk shards (``Probe.stream``,
``probe.sinks``). Imports only torch, diffusers, numpy, pyarrow and the standard
library; see docs/PROBE.md.
"""

from diffusion_circuits.probe.adapters import SUPPORTED_MODELS
from diffusion_circuits.probe.edits import HookContext
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
    TokenAblation,
    ZeroAblation,
)
from diffusion_circuits.probe.names import ATTENTION_SITES, LAYER_GROUPS, NamesFilter
from diffusion_circuits.probe.probe import ActivationCache, Probe, run_with_cache
from diffusion_circuits.probe.schedule import Scheduled
from diffusion_circuits.probe.sinks import DiskSink, MemorySink, load_tensors, read_manifest

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
    "TokenAblation",
    "Scheduled",
    "HookContext",
    "MemorySink",
    "DiskSink",
    "read_manifest",
    "load_tensors",
    "SUPPORTED_MODELS",
]
