"""Causal interventions and their impact per image (paper 3.2.4, 4.6, Table 3).

For every batch of probe images at one timestep the clean run and each intervened run
see the same ``x_t`` (common random numbers), so ``impact = (MSE_int - MSE_base) /
MSE_base`` measures the intervention alone. Families:

- ``layer_ablation``: each of the 7 layer groups, zero / mean / resample ablated
  (every main-path hook point of the group; mean and resample from a reference set of
  training images at the same timestep);
- ``component_ablation``: each attention head and each ResNet block mean-ablated, the
  K components of the circuit-complexity participation ratio;
- ``attention_perturbation``: each attention layer, all heads, with a uniform pattern,
  logit noise or a temperature;
- ``feature_scaling``: the output of each layer group (its last main-path hook point)
  scaled by each factor;
- ``circuit_interruption``: each encoder->decoder skip edge cut where the decoder
  consumes it, and the bottleneck, zero and mean ablated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from diffusers import DDPMScheduler, UNet2DModel
from tqdm.auto import tqdm

from diffusion_circuits.analysis.probing import ProbeSet, main_path, noised_batches
from diffusion_circuits.metrics.accuracy import noise_mse
from diffusion_circuits.metrics.impact import impact
from diffusion_circuits.model.noise import add_noise
from diffusion_circuits.params import AnalyzeParams
from diffusion_circuits.probe import (
    AttentionPerturbation,
    BottleneckCut,
    FeatureScaling,
    HeadAblation,
    MeanAblation,
    Probe,
    ResampleAblation,
    SkipCut,
    ZeroAblation,
)

__all__ = ["InterventionSpec", "intervention_specs", "run_interventions", "GROUP_ORDER"]

GROUP_ORDER = (
    "encoder_early",
    "encoder_middle",
    "encoder_late",
    "middle",
    "decoder_early",
    "decoder_middle",
    "decoder_late",
)


@dataclass(frozen=True)
class InterventionSpec:
    """One intervention: where it belongs and how to build it from the reference data."""

    family: str
    target: str
    method: str
    build: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Generator], list]


def _group_hooks(probe: Probe) -> dict[str, list[str]]:
    path = [h for h in main_path(probe.hook_points) if h not in ("conv_in", "conv_out")]
    groups = {group: [h for h in path if probe.group_of(h) == group] for group in GROUP_ORDER}
    return {group: hooks for group, hooks in groups.items() if hooks}


def _skip_index(name: str) -> int:
    return int(name.split(".")[1])


def intervention_specs(probe: Probe, params: AnalyzeParams) -> list[InterventionSpec]:
    """Every intervention the analysis runs, in a fixed order."""
    specs: list[InterventionSpec] = []
    for group, hooks in _group_hooks(probe).items():
        specs.append(
            InterventionSpec(
                "layer_ablation",
                group,
                "zero",
                lambda m, r, g, hooks=hooks: [ZeroAblation(h) for h in hooks],
            )
        )
        specs.append(
            InterventionSpec(
                "layer_ablation",
                group,
                "mean",
                lambda m, r, g, hooks=hooks: [MeanAblation(h, m[h]) for h in hooks],
            )
        )
        specs.append(
            InterventionSpec(
                "layer_ablation",
                group,
                "resample",
                lambda m, r, g, hooks=hooks: [ResampleAblation(h, r[h], g) for h in hooks],
            )
        )
        for factor in params.scaling_factors:
            specs.append(
                InterventionSpec(
                    "feature_scaling",
                    group,
                    f"x{factor:g}",
                    lambda m, r, g, last=hooks[-1], f=factor: [FeatureScaling(last, f)],
                )
            )
    for attn, n_heads in probe.attention_heads.items():
        for head in range(n_heads):
            specs.append(
                InterventionSpec(
                    "component_ablation",
                    f"{attn}.head.{head}",
                    "mean",
                    lambda m, r, g, attn=attn, head=head: [
                        HeadAblation(attn, head, mode="mean", mean=m[f"{attn}.z"])
                    ],
                )
            )
        heads = {"layer": [None], "head": list(range(n_heads))}[params.perturbation_scope]
        for head in heads:
            for kind, strength in (
                ("uniform", 1.0),
                ("logit_noise", params.logit_noise),
                ("temperature", params.temperature),
            ):
                specs.append(
                    InterventionSpec(
                        "attention_perturbation",
                        attn if head is None else f"{attn}.head.{head}",
                        kind,
                        lambda m, r, g, attn=attn, kind=kind, s=strength, head=head: [
                            AttentionPerturbation(attn, kind=kind, head=head, strength=s, seed=0)
                        ],
                    )
                )
    for resnet in probe.resnets:
        specs.append(
            InterventionSpec(
                "component_ablation",
                resnet,
                "mean",
                lambda m, r, g, h=resnet: [MeanAblation(h, m[h])],
            )
        )
    skips = [h for h in probe.hook_points if h.startswith("skip.")]
    for skip in skips:
        k = _skip_index(skip)
        specs.append(
            InterventionSpec(
                "circuit_interruption", skip, "zero", lambda m, r, g, k=k: [SkipCut(k, mode="zero")]
            )
        )
        specs.append(
            InterventionSpec(
                "circuit_interruption",
                skip,
                "mean",
                lambda m, r, g, k=k, s=skip: [SkipCut(k, mode="mean", mean=m[s])],
            )
        )
    specs.append(
        InterventionSpec(
            "circuit_interruption",
            "bottleneck",
            "zero",
            lambda m, r, g: [BottleneckCut(mode="zero")],
        )
    )
    specs.append(
        InterventionSpec(
            "circuit_interruption",
            "bottleneck",
            "mean",
            lambda m, r, g: [BottleneckCut(mode="mean", mean=m["mid"])],
        )
    )
    return specs


def _reference(
    probe: Probe, unet: UNet2DModel, reference_x0: torch.Tensor, scheduler, timestep: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-hook means and the raw activations of the reference images at ``timestep``."""
    x_t, _, t = add_noise(scheduler, reference_x0, timestep, seed + 1)
    names = [h for h in probe.hook_points if h.split(".")[-1] not in ("q", "k", "v", "pattern")]
    with probe.capture(names=names) as cache:
        unet(x_t, t)
    means = {name: value.mean(dim=0) for name, value in cache.items()}
    return means, cache


@torch.no_grad()
def run_interventions(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    probe_set: ProbeSet,
    reference_x0: torch.Tensor,
    timesteps,
    seed: int,
    batch_size: int,
    params: AnalyzeParams,
    autocast_bf16: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Impact of every intervention on every probe image at every timestep.

    Returns
    -------
    Tidy DataFrame: ``image_id, timestep, family, target, method, metric, value`` with
    metric in ``mse_base``, ``mse_int``, ``impact``.
    """
    unet.eval()
    probe = Probe(unet)
    specs = intervention_specs(probe, params)
    rows = []
    batches = list(noised_batches(scheduler, probe_set, timesteps, seed, batch_size))
    bar = tqdm(total=len(batches) * len(specs), desc="interventions", disable=not progress)
    references: dict[int, tuple] = {}
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
            if batch.timestep not in references:
                references = {
                    batch.timestep: _reference(
                        probe, unet, reference_x0, scheduler, batch.timestep, seed
                    )
                }
            means, activations = references[batch.timestep]
            with probe.record() as clean:
                base = noise_mse(unet(batch.x_t, batch.t).sample.float(), batch.eps)
            for spec in specs:
                generator = torch.Generator().manual_seed(seed * 7919 + batch.timestep)
                # Replay skips what lies upstream of the intervention: same result, less work.
                with probe.intervene(*spec.build(means, activations, generator), replay=clean):
                    mse = noise_mse(unet(batch.x_t, batch.t).sample.float(), batch.eps)
                for metric, values in (
                    ("mse_base", base),
                    ("mse_int", mse),
                    ("impact", impact(mse, base)),
                ):
                    rows.append(
                        pd.DataFrame(
                            {
                                "image_id": batch.image_ids,
                                "timestep": batch.timestep,
                                "family": spec.family,
                                "target": spec.target,
                                "method": spec.method,
                                "metric": metric,
                                "value": values.double().numpy(),
                            }
                        )
                    )
                bar.update()
    bar.close()
    return pd.concat(rows, ignore_index=True)
