"""Probe library: named hook points, capture and interventions for diffusers denoisers.

What TransformerLens is for language models, for diffusers ``UNet2DModel``,
``UNet2DConditionModel`` (Stable Diffusion), ``DiTTransformer2DModel``,
``PixArtTransformer2DModel``, ``SD3Transformer2DModel`` and ``FluxTransformer2DModel``
(one adapter per family in ``probe.adapters``; any other model by module path):
canonical hook-point names (``probe.names``) and structural queries
(``probe.structure``), capture of activations and per-head attention patterns through a
recording attention processor, and scoped, composable interventions.
Whole sampling trajectories stream to memory or to disk shards (``Probe.stream``,
``probe.sinks``). Imports only torch, diffusers, numpy, pyarrow and the standard
library; see docs/PROBE.md.
"""

from diffusion_circuits.probe.adapters import SUPPORTED_MODELS, GenericAdapter, build_name_map
from diffusion_circuits.probe.edits import HookContext
from diffusion_circuits.probe.interventions import (
    AttentionPerturbation,
    BottleneckCut,
    FeatureScaling,
    HeadAblation,
    HeadPatch,
    Intervention,
    MeanAblation,
    Patch,
    ResampleAblation,
    SkipCut,
    TokenAblation,
    ZeroAblation,
)
from diffusion_circuits.probe.names import (
    ATTENTION_SITES,
    LAYER_GROUPS,
    POINT_KINDS,
    ROLES,
    TRANSFORMER_LAYER_GROUPS,
    Head,
    NamesFilter,
    SkipEdge,
    TokenLayout,
)
from diffusion_circuits.probe.patching import (
    activation_patching,
    attribution_patching,
    rank_agreement,
)
from diffusion_circuits.probe.probe import ActivationCache, Probe, run_with_cache
from diffusion_circuits.probe.protocol import InterventionLike
from diffusion_circuits.probe.schedule import Scheduled
from diffusion_circuits.probe.sinks import DiskSink, MemorySink, load_tensors, read_manifest

__all__ = [
    "Probe",
    "run_with_cache",
    "ActivationCache",
    "NamesFilter",
    "ATTENTION_SITES",
    "LAYER_GROUPS",
    "TRANSFORMER_LAYER_GROUPS",
    "POINT_KINDS",
    "ROLES",
    "Head",
    "SkipEdge",
    "TokenLayout",
    "build_name_map",
    "GenericAdapter",
    "InterventionLike",
    "Intervention",
    "ZeroAblation",
    "MeanAblation",
    "ResampleAblation",
    "FeatureScaling",
    "Patch",
    "SkipCut",
    "BottleneckCut",
    "HeadAblation",
    "HeadPatch",
    "AttentionPerturbation",
    "TokenAblation",
    "Scheduled",
    "activation_patching",
    "attribution_patching",
    "rank_agreement",
    "HookContext",
    "MemorySink",
    "DiskSink",
    "read_manifest",
    "load_tensors",
    "SUPPORTED_MODELS",
]
