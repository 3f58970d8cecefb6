"""Sample-level impact: what an intervention does to the generated samples.

Every run draws ``n`` DDIM samples from the same starting noise as the intact run (the
same ``seed``) with the intervention active at every step, so each intervened sample
has an intact twin that differs from it by the intervention alone. Per image: the RMS
pixel distance to the twin ([-1, 1] units) and the distance in the feature-net space;
per run: the change of the clean fraction and the largest change of an attribute
frequency (datasets with attributes), both against the intact samples.

Interventions that need reference activations (mean ablations) get them at each
sampling timestep, computed once per timestep from the reference images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler
from torch import nn
from tqdm.auto import tqdm

from diffusion_circuits.analysis.attention_share import (
    ShareRun,
    one_step_share,
    share_metrics,
    share_runs,
    share_summary,
)
from diffusion_circuits.analysis.circuits import component_types
from diffusion_circuits.analysis.interventions import (
    InterventionSpec,
    Reference,
    intervention_specs,
    reference_activations,
    sample_level_specs,
)
from diffusion_circuits.analysis.probing import ProbeSet
from diffusion_circuits.analysis.sample_quality import FeatureSpace, attribute_frequencies
from diffusion_circuits.metrics.sample_distance import feature_distance, rms_distance
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.params import Params
from diffusion_circuits.probe import Probe

__all__ = [
    "SampleRun",
    "share_sample_runs",
    "spec_sample_runs",
    "sample_impact",
    "attention_share_and_sample_impact",
]


@dataclass(frozen=True)
class SampleRun:
    """One intervened sampling run; ``step_context(t)`` is entered around the step at ``t``."""

    family: str
    target: str
    method: str
    step_context: Callable[[int], contextlib.AbstractContextManager]


def share_sample_runs(probe: Probe, runs: list[ShareRun]) -> list[SampleRun]:
    """The attention-share runs (family ``attention_share``) on the samples."""
    return [
        SampleRun("attention_share", run.target, run.method, lambda t, run=run: run.enter(probe))
        for run in runs
    ]


def spec_sample_runs(
    probe: Probe,
    scheduler: DDPMScheduler,
    specs: list[InterventionSpec],
    reference_x0: torch.Tensor,
    seed: int,
) -> list[SampleRun]:
    """The study's interventions on the samples, built at each step from the reference
    activations at that step's timestep (no resample specs: they need a probe batch)."""
    references: dict[int, Reference] = {}

    def reference_at(t: int) -> Reference:
        if t not in references:
            means, _ = reference_activations(probe, probe.model, reference_x0, scheduler, t, seed)
            references[t] = Reference(means, {}, torch.zeros(0, dtype=torch.long))
        return references[t]

    return [
        SampleRun(
            spec.family,
            spec.target,
            spec.method,
            lambda t, spec=spec: probe.intervene(*spec.build(reference_at(t))),
        )
        for spec in specs
    ]


def _scores(samples: torch.Tensor, feature_space: FeatureSpace | None):
    if feature_space is None:
        return None, None, None
    return (
        feature_space.features(samples),
        feature_space.clean_fraction(samples),
        attribute_frequencies(feature_space, samples),
    )


@torch.no_grad()
def sample_impact(
    unet: nn.Module,
    scheduler: DDPMScheduler,
    runs: list[SampleRun],
    n: int,
    steps: int,
    seed: int,
    feature_space: FeatureSpace | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, torch.Tensor]:
    """Sample-level impact of every run against the intact samples of the same noise.

    Returns
    -------
    (pandas.DataFrame, torch.Tensor)
        Tidy table ``family, target, method, sample, metric, value``: per image (``sample``
        0..n-1) ``rms_distance`` and ``feature_distance``; per run (``sample`` -1)
        ``clean_fraction_change`` and ``max_attribute_frequency_change`` (NaN without
        attributes). Then the intact samples [n, C, H, W].
    """
    intact = sample_trajectory(unet, scheduler, n, seed, steps, record=[]).samples
    features, clean, frequencies = _scores(intact, feature_space)
    rows = []
    for run in tqdm(runs, desc="sample impact", disable=not progress):
        samples = sample_trajectory(
            unet, scheduler, n, seed, steps, record=[], step_context=run.step_context
        ).samples
        per_image = {"rms_distance": rms_distance(samples, intact)}
        per_run = {"clean_fraction_change": np.nan, "max_attribute_frequency_change": np.nan}
        if feature_space is not None:
            run_features, run_clean, run_frequencies = _scores(samples, feature_space)
            per_image["feature_distance"] = feature_distance(run_features, features)
            per_run["clean_fraction_change"] = run_clean - clean
            if frequencies is not None:
                per_run["max_attribute_frequency_change"] = float(
                    np.abs(run_frequencies - frequencies).max()
                )
        keys = {"family": run.family, "target": run.target, "method": run.method}
        for metric, values in per_image.items():
            rows.append(
                pd.DataFrame({**keys, "sample": np.arange(n), "metric": metric, "value": values})
            )
        for metric, value in per_run.items():
            rows.append(pd.DataFrame({**keys, "sample": [-1], "metric": metric, "value": [value]}))
    columns = ["family", "target", "method", "sample", "metric", "value"]
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    return table, intact


def attention_share_and_sample_impact(
    unet: nn.Module,
    scheduler: DDPMScheduler,
    probe_set: ProbeSet,
    reference_x0: torch.Tensor,
    params: Params,
    feature_space: FeatureSpace | None,
) -> tuple[dict[str, pd.DataFrame], dict, torch.Tensor]:
    """What the analyze stage measures on generation: attention's causal share (one step
    and on ``analyze.share_samples`` samples) and the sample-level impact of the study's
    interventions (``analyze.impact_samples``). Every sampling run starts from the noise
    of ``probe.seed``, so the intact samples of two training seeds share it too.

    Returns the tables (``attention_share``: one step per image; ``sample_impact``: every
    sampling run, with the ablated component's ``component_type`` where there is one), the
    metrics-file entry and the intact samples of the share runs.
    """
    cfg, seed = params.analyze, params.probe.seed
    probe = Probe(unet)
    one_step = one_step_share(
        unet, scheduler, probe_set, params.probe.timesteps, seed, params.probe.batch_size
    )
    runs = share_runs(probe)
    share_samples, intact = sample_impact(
        unet, scheduler, share_sample_runs(probe, runs), cfg.share_samples,
        cfg.share_ddim_steps, seed, feature_space,
    )  # fmt: skip
    specs = sample_level_specs(intervention_specs(probe, cfg))
    spec_samples, _ = sample_impact(
        unet, scheduler, spec_sample_runs(probe, scheduler, specs, reference_x0, seed),
        cfg.impact_samples, cfg.impact_ddim_steps, seed, feature_space,
    )  # fmt: skip
    metrics = share_metrics(share_summary(one_step), share_samples)
    # what a component ablation removed, by the probe's type (head, resnet, ff), for the
    # tables' labels; NaN for the other families
    samples = pd.concat([share_samples, spec_samples], ignore_index=True)
    samples["component_type"] = samples["target"].map(component_types(probe))
    tables = {"attention_share": one_step, "sample_impact": samples}
    return tables, metrics, intact
