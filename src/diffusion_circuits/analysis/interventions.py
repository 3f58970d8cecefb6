"""Causal interventions and their impact per image (paper 3.2.4, 4.6, Table 3).

For every batch of probe images at one timestep the clean run and each intervened run
see the same ``x_t`` (common random numbers), so ``impact = (MSE_int - MSE_base) /
MSE_base`` measures the intervention alone. Families:

- ``layer_ablation``: each layer group, zero / mean / resample ablated (every main-path
  hook point of the group; a transformer block at its attention and feed-forward
  outputs, :func:`layer_group_ablation_points`; mean and resample from a reference set of
  training images at the same timestep; a resample run gives each probe image ONE
  reference image, the same at every hook of the group, so the patched state is
  coherent);
- ``component_ablation``: each attention head (its slice of ``z``) and each branch
  (``analysis.circuits.branch_components``): a U-Net ResNet block's residual branch
  (``<resnet>.residual``, the output of its conv2, so the shortcut is left intact) or a
  transformer block's feed-forward output (before its gate): every component is
  ablated at its own contribution. These
  are the K components of the circuit-complexity participation ratio. Mean ablation on
  every probe image (primary); resample (primary, in-distribution) and zero (secondary)
  on the first batches covering ``analyze.baseline_images`` images, to compare the
  baselines' rankings;
- ``attention_perturbation``: each attention layer, all heads, with a uniform pattern,
  logit noise or a temperature;
- ``feature_scaling``: the output of each layer group (its last main-path hook point)
  scaled by each factor;
- ``circuit_interruption``: each encoder->decoder skip edge cut where the decoder
  consumes it, and the bottleneck, zero and mean ablated (a transformer has neither:
  the family is empty for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from diffusion_circuits.analysis.circuits import branch_components
from diffusion_circuits.analysis.layer_groups import layer_group_ablation_points, layer_group_blocks
from diffusion_circuits.analysis.probing import ProbeSet, noised_batches
from diffusion_circuits.metrics.accuracy import noise_mse
from diffusion_circuits.metrics.impact import impact
from diffusion_circuits.model.device import autocast
from diffusion_circuits.model.factory import Denoiser
from diffusion_circuits.model.forward import denoise
from diffusion_circuits.model.noise import add_noise, predict_noise, predict_noise_and_output
from diffusion_circuits.params import AnalyzeParams
from diffusion_circuits.probe import (
    AttentionPerturbation,
    BottleneckCut,
    FeatureScaling,
    Head,
    HeadAblation,
    Intervention,
    MeanAblation,
    Patch,
    Probe,
    SkipCut,
    ZeroAblation,
)

__all__ = [
    "InterventionSpec",
    "Reference",
    "HeadResample",
    "intervention_specs",
    "reference_activations",
    "sample_level_specs",
    "run_interventions",
    "output_is_constant",
    "COMPONENT_METHODS",
]

COMPONENT_METHODS = ("mean", "resample", "zero")  # primary, primary, secondary


@dataclass(frozen=True)
class Reference:
    """Reference activations at one timestep and the reference image drawn per probe image.

    ``means``: hook -> mean over the reference images (one item's shape);
    ``activations``: hook -> [n_reference, ...]; ``draw``: int64 [batch], the reference
    image each probe image of the batch is resampled from, shared by every hook of a run.
    """

    means: dict[str, torch.Tensor]
    activations: dict[str, torch.Tensor]
    draw: torch.Tensor

    def resampled(self, name: str) -> torch.Tensor:
        return self.activations[name][self.draw]


@dataclass(frozen=True)
class InterventionSpec:
    """One intervention: where it belongs and how to build it from the reference data.

    ``subset``: run only on the batches covering ``analyze.baseline_images`` images.
    """

    family: str
    target: str
    method: str
    build: Callable[[Reference], list]
    subset: bool = False


class HeadResample(Intervention):
    """Head ``head``'s slice of ``z`` replaced by that of one reference image per item.

    ``z_rows``: ``<attn>.z`` of the drawn reference images [batch, heads, queries, dim].

    Examples
    --------
    >>> z = torch.zeros(2, 3, 4, 5)
    >>> HeadResample("mid.attn.0", 1, torch.ones(2, 3, 4, 5))(z, "mid.attn.0")[:, :, 0, 0].tolist()
    [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    """

    site = "z"

    def __init__(self, attn_name: str, head: int, z_rows: torch.Tensor):
        super().__init__(attn_name)
        self.head, self.z_rows = head, z_rows

    def __call__(self, tensor, name):
        if self.z_rows.shape != tensor.shape:
            raise ValueError(f"z_rows {tuple(self.z_rows.shape)} != {name} z {tuple(tensor.shape)}")
        out = tensor.clone()
        out[:, self.head] = self.z_rows[:, self.head].to(tensor)
        return out


def _component_specs(target: str, builders: dict) -> list[InterventionSpec]:
    # Mean ablation runs on every probe image; the other baselines on the subset only.
    return [
        InterventionSpec("component_ablation", target, method, build, method != "mean")
        for method, build in builders.items()
    ]


def _head_specs(head: Head) -> list[InterventionSpec]:
    attn, index = head
    z = f"{attn}.z"
    return _component_specs(
        head.name,
        {
            "mean": lambda ref: [HeadAblation(attn, index, mode="mean", mean=ref.means[z])],
            "resample": lambda ref: [HeadResample(attn, index, ref.resampled(z))],
            "zero": lambda ref: [HeadAblation(attn, index, mode="zero")],
        },
    )


def _branch_specs(branch: str) -> list[InterventionSpec]:
    return _component_specs(
        branch,
        {
            "mean": lambda ref: [MeanAblation(branch, ref.means[branch])],
            "resample": lambda ref: [Patch(branch, ref.resampled(branch))],
            "zero": lambda ref: [ZeroAblation(branch)],
        },
    )


def _layer_specs(
    group: str, ablated: list[str], hooks: list[str], factors
) -> list[InterventionSpec]:
    """A layer group ablated at its ``ablated`` points, then its output (last main-path
    hook of ``hooks``) scaled."""
    builders = {
        "zero": lambda ref: [ZeroAblation(h) for h in ablated],
        "mean": lambda ref: [MeanAblation(h, ref.means[h]) for h in ablated],
        "resample": lambda ref: [Patch(h, ref.resampled(h)) for h in ablated],
    }
    specs = [InterventionSpec("layer_ablation", group, m, build) for m, build in builders.items()]
    for factor in factors:
        specs.append(
            InterventionSpec(
                "feature_scaling",
                group,
                f"x{factor:g}",
                lambda ref, f=factor: [FeatureScaling(hooks[-1], f)],
            )
        )
    return specs


def _interruption_specs(probe: Probe) -> list[InterventionSpec]:
    """Each skip edge cut where the decoder consumes it, then the bottleneck; zero, mean."""
    cuts = {}
    for edge in probe.skip_edges:
        cuts[edge.name] = {
            "zero": lambda ref, edge=edge: [SkipCut(edge.index, mode="zero")],
            "mean": lambda ref, edge=edge: [
                SkipCut(edge.index, mode="mean", mean=ref.means[edge.name])
            ],
        }
    mid = probe.bottleneck
    if mid is not None:  # a transformer has no mid block to cut
        cuts["bottleneck"] = {
            "zero": lambda ref: [BottleneckCut(mode="zero")],
            "mean": lambda ref: [BottleneckCut(mode="mean", mean=ref.means[mid])],
        }
    return [
        InterventionSpec("circuit_interruption", target, method, build)
        for target, builders in cuts.items()
        for method, build in builders.items()
    ]


def intervention_specs(probe: Probe, params: AnalyzeParams) -> list[InterventionSpec]:
    """Every intervention the analysis runs, in a fixed order."""
    specs: list[InterventionSpec] = []
    ablated = layer_group_ablation_points(probe)
    for group, hooks in layer_group_blocks(probe).items():
        specs.extend(_layer_specs(group, ablated[group], hooks, params.scaling_factors))
    for attn, n_heads in probe.attention_heads.items():
        for head in range(n_heads):
            specs.extend(_head_specs(Head(attn, head)))
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
                        attn if head is None else Head(attn, head).name,
                        kind,
                        lambda ref, attn=attn, kind=kind, s=strength, head=head: [
                            AttentionPerturbation(attn, kind=kind, head=head, strength=s, seed=0)
                        ],
                    )
                )
    for branch in branch_components(probe):
        specs.extend(_branch_specs(branch))
    specs.extend(_interruption_specs(probe))
    return specs


def _replaceable_points(probe: Probe) -> list[str]:
    """Every hook point an intervention may replace with reference data.

    Of the attention sites only ``z`` (the per-head outputs a head ablation replaces) is
    kept: q, k, v and the [heads, queries, keys] patterns of every reference image would
    cost memory no intervention uses.
    """
    z_sites = {f"{attn}.z" for attn in probe.attention_heads}
    return [h for h in probe.hook_points if probe.role_of(h) != "site" or h in z_sites]


def reference_activations(
    probe: Probe, unet: Denoiser, reference_x0: torch.Tensor, scheduler, timestep: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-hook means and the raw activations of the reference images at ``timestep``."""
    x_t, _, t = add_noise(scheduler, reference_x0, timestep, seed + 1)
    with probe.capture(names=_replaceable_points(probe)) as cache:
        denoise(unet, x_t.to(unet.device), t.to(unet.device))
    means = {name: value.mean(dim=0) for name, value in cache.items()}
    return means, cache


# Families whose sample-level impact is measured with one method (the primary one; the
# one-step table has all three); the other families keep every method.
SAMPLE_LEVEL_METHOD = {
    "layer_ablation": "mean",
    "component_ablation": "mean",
    "circuit_interruption": "mean",
}


def sample_level_specs(specs: list[InterventionSpec]) -> list[InterventionSpec]:
    """The interventions whose effect on generated samples is measured (analysis/sample_impact)."""
    return [s for s in specs if SAMPLE_LEVEL_METHOD.get(s.family, s.method) == s.method]


def output_is_constant(output: torch.Tensor, rtol: float = 1e-6) -> bool:
    """Whether every image of the batch got the same network output: an input-independent one.

    Read on the network's output, not on the noise estimate: under v-prediction the
    estimate ``sqrt(1 - abar) x_t + sqrt(abar) v`` differs per image even when ``v`` does not.

    Examples
    --------
    >>> output_is_constant(torch.ones(3, 1, 2, 2)), output_is_constant(torch.rand(3, 1, 2, 2))
    (True, False)
    """
    flat = output.detach().double().flatten(1)
    spread = (flat - flat[:1]).abs().max()
    return bool(len(flat) > 1 and spread <= rtol * flat.abs().max().clamp_min(1e-30))


def _rows(batch, spec: InterventionSpec, values: dict[str, torch.Tensor], constant: bool):
    return [
        pd.DataFrame(
            {
                "image_id": batch.image_ids,
                "timestep": batch.timestep,
                "family": spec.family,
                "target": spec.target,
                "method": spec.method,
                "metric": metric,
                "value": value.double().numpy(),
                "output_constant": constant,
            }
        )
        for metric, value in values.items()
    ]


@torch.no_grad()
def run_interventions(
    unet: Denoiser,
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

    Specs marked ``subset`` (the zero and resample component ablations) run only on the
    batches that start before row ``params.baseline_images`` of the probe set.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``image_id, timestep, family, target, method, metric, value,
        output_constant``; metric in ``mse_base``, ``mse_int``, ``impact`` (relative,
        ``(MSE_int - MSE_base) / MSE_base``) and ``delta_mse`` (absolute,
        ``MSE_int - MSE_base``). ``output_constant`` is True on every row of a run whose
        intervened prediction was the same for every image of the batch (the output no
        longer depends on the input, e.g. zero-ablating decoder_late): its impact is
        ``1 / accuracy``-like, not a circuit effect, and pooled impacts should leave it out.
    """
    unet.eval()
    probe = Probe(unet)
    specs = intervention_specs(probe, params)
    rows = []
    batches = list(noised_batches(scheduler, probe_set, timesteps, seed, batch_size))
    n_runs = sum(
        len([s for s in specs if not s.subset or b.rows.start < params.baseline_images])
        for b in batches
    )
    bar = tqdm(total=n_runs, desc="interventions", disable=not progress)
    references: dict[int, tuple] = {}
    for batch in batches:
        with autocast(unet.device, autocast_bf16):
            if batch.timestep not in references:
                references = {
                    batch.timestep: reference_activations(
                        probe, unet, reference_x0, scheduler, batch.timestep, seed
                    )
                }
            generator = torch.Generator().manual_seed(seed * 7919 + batch.timestep)
            draw = torch.randint(len(reference_x0), (len(batch.x_t),), generator=generator)
            reference = Reference(*references[batch.timestep], draw=draw)
            with probe.record() as clean:
                base = noise_mse(predict_noise(unet, scheduler, batch.x_t, batch.t), batch.eps)
            for spec in specs:
                if spec.subset and batch.rows.start >= params.baseline_images:
                    continue
                # Replay skips what lies upstream of the intervention: same result, less work.
                with probe.intervene(*spec.build(reference), replay=clean):
                    eps_hat, output = predict_noise_and_output(unet, scheduler, batch.x_t, batch.t)
                mse = noise_mse(eps_hat, batch.eps)
                values = {
                    "mse_base": base,
                    "mse_int": mse,
                    "impact": impact(mse, base),
                    "delta_mse": mse.double() - base.double(),
                }
                rows.extend(_rows(batch, spec, values, output_is_constant(output)))
                bar.update()
    bar.close()
    return pd.concat(rows, ignore_index=True)
