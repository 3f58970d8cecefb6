"""Attention's causal share: how much the prediction and the samples depend on the
attention branches, and on where they attend (docs/METRICS.md, "Attention's causal share").

Interventions, each on every attention layer at once (target ``attention``) and on each
layer alone (target the layer's hook point):

- ``branch_zero``: the attention branch removed; the block returns its residual alone;
- ``uniform``: every head's pattern uniform over its keys, values and projections kept:
  the routing is removed, the global average it would fall back to is kept.

Yardstick, computed the same way: ``resnet_zero``, the residual branch of the ResNet
block whose parameter count is nearest an attention layer's, zero-ablated (a backbone
without ResNet blocks, the DiT, has no such run: :data:`NO_RESNET_YARDSTICK`). The other
yardstick, the distance between the samples of two intact training seeds from the same
noise, needs two models and is computed by ``cross_dataset`` from the intact samples.

One step: every probe image at every probed timestep, the clean run and each intervened
run on the same ``x_t``, plus the network with its output zeroed (``output_zero``: what
the prediction is without anything the network computes; for a v-model the implied
noise estimate is then ``sqrt(1 - abar) x_t``). Summaries (:func:`share_summary`):
``mse_rise = mean MSE_int / mean MSE_base - 1`` and ``share = (mean MSE_int - mean
MSE_base) / (mean MSE_output_zero - mean MSE_base)``: the fraction of what the network's
output adds to the prediction that the intervention takes away.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler
from torch import nn

from diffusion_circuits.analysis.probing import ProbeSet, noised_batches
from diffusion_circuits.metrics.accuracy import noise_mse
from diffusion_circuits.metrics.sample_distance import feature_distance, rms_distance
from diffusion_circuits.model.noise import predict_noise
from diffusion_circuits.probe import AttentionPerturbation, Probe, ZeroAblation

__all__ = [
    "ShareRun",
    "attention_branches_removed",
    "share_runs",
    "yardstick_resnet",
    "NO_RESNET_YARDSTICK",
    "one_step_share",
    "share_summary",
    "share_metrics",
    "seed_swap_distances",
]


@dataclass(frozen=True)
class ShareRun:
    """One intervention of the attention-share measurement.

    ``enter(probe)`` returns the context manager inside which the network runs intervened.
    """

    target: str
    method: str
    enter: Callable[[Probe], contextlib.AbstractContextManager]


def _residual_only(module: nn.Module, args, kwargs, output):
    hidden = args[0] if args else kwargs["hidden_states"]
    if getattr(module, "residual_connection", False):
        return hidden / module.rescale_output_factor
    return torch.zeros_like(output)


@contextlib.contextmanager
def attention_branches_removed(probe: Probe, attentions: list[str]) -> Iterator[None]:
    """Inside, each attention module in ``attentions`` returns its residual input alone
    (zeros for an attention without a residual connection): its branch is zero-ablated,
    output projection bias included."""
    handles = [
        probe.model.get_submodule(probe.module_path(name)).register_forward_hook(
            _residual_only, with_kwargs=True
        )
        for name in attentions
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _branch_parameters(resnet: nn.Module) -> int:
    shortcut = getattr(resnet, "conv_shortcut", None)
    return _parameters(resnet) - (_parameters(shortcut) if shortcut is not None else 0)


NO_RESNET_YARDSTICK = "does not exist for this backbone: it has no ResNet blocks"


def yardstick_resnet(probe: Probe) -> str | None:
    """The ResNet block whose residual branch's parameter count is nearest (in ratio) the
    mean parameter count of the attention layers; None without ResNet blocks."""
    if not probe.resnets:
        return None
    model = probe.model
    attention = [
        _parameters(model.get_submodule(probe.module_path(a))) for a in probe.attention_heads
    ]
    target = sum(attention) / len(attention)
    sizes = {
        r: _branch_parameters(model.get_submodule(probe.module_path(r))) for r in probe.resnets
    }
    return min(sizes, key=lambda r: abs(math.log(sizes[r] / target)))


def share_runs(probe: Probe) -> list[ShareRun]:
    """Every run of the measurement: all layers, each layer alone, then the yardstick."""
    attentions = list(probe.attention_heads)

    def uniform(names):
        return lambda p: p.intervene(*[AttentionPerturbation(a, kind="uniform") for a in names])

    def removed(names):
        return lambda p: attention_branches_removed(p, names)

    runs = [
        ShareRun("attention", "branch_zero", removed(attentions)),
        ShareRun("attention", "uniform", uniform(attentions)),
    ]
    for attn in attentions:
        runs += [
            ShareRun(attn, "branch_zero", removed([attn])),
            ShareRun(attn, "uniform", uniform([attn])),
        ]
    resnet = yardstick_resnet(probe)
    if resnet is not None:
        residual = f"{resnet}.residual"
        runs.append(ShareRun(resnet, "resnet_zero", lambda p: p.intervene(ZeroAblation(residual))))
    return runs


@torch.no_grad()
def one_step_share(
    unet: nn.Module,
    scheduler: DDPMScheduler,
    probe_set: ProbeSet,
    timesteps,
    seed: int,
    batch_size: int,
) -> pd.DataFrame:
    """Noise MSE of every share run on every probe image at every timestep.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``image_id, timestep, target, method, mse_base, mse_int, mse_output_zero``.
    """
    probe = Probe(unet)
    runs = share_runs(probe)
    rows = []
    for batch in noised_batches(scheduler, probe_set, timesteps, seed, batch_size):
        base = noise_mse(predict_noise(unet, scheduler, batch.x_t, batch.t), batch.eps)
        with probe.intervene(ZeroAblation(probe.output_point)):
            floor = noise_mse(predict_noise(unet, scheduler, batch.x_t, batch.t), batch.eps)
        for run in runs:
            with run.enter(probe):
                mse = noise_mse(predict_noise(unet, scheduler, batch.x_t, batch.t), batch.eps)
            rows.append(
                pd.DataFrame(
                    {
                        "image_id": batch.image_ids,
                        "timestep": batch.timestep,
                        "target": run.target,
                        "method": run.method,
                        "mse_base": base.numpy(),
                        "mse_int": mse.numpy(),
                        "mse_output_zero": floor.numpy(),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def share_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per run and timestep: ``mse_rise`` and ``share`` from the image means of the MSEs.

    Examples
    --------
    >>> t = pd.DataFrame({"timestep": 1, "target": "a", "method": "m", "mse_base": [1.0, 1.0],
    ...                   "mse_int": [1.5, 1.5], "mse_output_zero": [3.0, 3.0]})
    >>> share_summary(t)[["mse_rise", "share"]].values.tolist()
    [[0.5, 0.25]]
    """
    means = table.groupby(["target", "method", "timestep"], sort=False)[
        ["mse_base", "mse_int", "mse_output_zero"]
    ].mean()
    gained = means["mse_int"] - means["mse_base"]
    return means.assign(
        mse_rise=means["mse_int"] / means["mse_base"] - 1.0,
        share=gained / (means["mse_output_zero"] - means["mse_base"]),
    ).reset_index()


def _sample_medians(samples: pd.DataFrame) -> dict[str, float]:
    per_image = samples[samples["sample"] >= 0]
    medians = per_image.groupby(["target", "method", "metric"])["value"].median()
    per_run = (
        samples[samples["sample"] < 0].groupby(["target", "method", "metric"])["value"].first()
    )
    values = pd.concat([medians.rename(lambda m: f"median_{m}", level="metric"), per_run])
    return {f"{t}.{m}.{k}": (None if pd.isna(v) else float(v)) for (t, m, k), v in values.items()}


def share_metrics(summary: pd.DataFrame, samples: pd.DataFrame) -> dict:
    """The metrics-file entry: one-step ``mse_rise`` and ``share`` per run and timestep, and
    per run the sample-level medians (``median_rms_distance``, ``median_feature_distance``)
    and changes (``clean_fraction_change``, ``max_attribute_frequency_change``)."""
    one_step = {
        f"{row.target}.{row.method}.t{row.timestep}": {
            "mse_rise": float(row.mse_rise),
            "share": float(row.share),
        }
        for row in summary.itertuples()
    }
    return {"one_step": one_step, "samples": _sample_medians(samples)}


def seed_swap_distances(
    intact: dict[int, torch.Tensor], features: Callable[[torch.Tensor], np.ndarray] | None = None
) -> pd.DataFrame:
    """The yardstick of a training-seed swap: per pair of seeds, the distance between
    their intact samples drawn from the same noise (``rms_distance``, and
    ``feature_distance`` when ``features`` maps samples to the feature-net space).

    Returns a tidy table ``seed_a, seed_b, sample, metric, value``.
    """
    seeds = sorted(intact)
    rows = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            distances = {"rms_distance": rms_distance(intact[a], intact[b])}
            if features is not None:
                distances["feature_distance"] = feature_distance(
                    features(intact[a]), features(intact[b])
                )
            for metric, values in distances.items():
                rows.append(
                    pd.DataFrame(
                        {
                            "seed_a": a,
                            "seed_b": b,
                            "sample": np.arange(len(values)),
                            "metric": metric,
                            "value": values,
                        }
                    )  # fmt: skip
                )
    columns = ["seed_a", "seed_b", "sample", "metric", "value"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
