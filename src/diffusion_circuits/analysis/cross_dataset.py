"""Cross-dataset comparison of the two models (paper 4.7, 4.9).

- cross-dataset accuracy: each model's noise-prediction accuracy on the other dataset's
  probe images relative to its accuracy on its own;
- feature transferability: linear CKA between the two models' activations on the same
  images (both probe sets), per hook point and timestep, beside its baseline: the CKA
  of each trained model with the untrained network both started from (same
  architecture, the training seed's initialisation, same inputs); ``cka_above_baseline``
  is the trained-vs-trained CKA minus the larger of the two baselines. Every interval
  is a bootstrap over images (basic interval for CKA, recomputed on each resample);
- cross-model patching: the output of each layer group of one model replaced by the
  other model's on the same ``x_t``, and the impact on the receiving model's MSE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from diffusion_circuits.analysis.accuracy import accuracy_table
from diffusion_circuits.analysis.layer_groups import layer_group_blocks
from diffusion_circuits.analysis.model_io import TrainedModel
from diffusion_circuits.analysis.probing import noised_batches
from diffusion_circuits.metrics.accuracy import noise_mse
from diffusion_circuits.metrics.cka import (
    bootstrap_indices,
    cka_from_grams,
    gram,
    resampled_cka,
)
from diffusion_circuits.metrics.impact import impact
from diffusion_circuits.model.device import autocast
from diffusion_circuits.model.factory import Denoiser
from diffusion_circuits.model.forward import denoise
from diffusion_circuits.model.noise import add_noise, predict_noise
from diffusion_circuits.probe import Patch, Probe

__all__ = [
    "cross_accuracy",
    "feature_transferability",
    "cross_model_patching",
    "summarise_cross",
]


def cross_accuracy(
    models: list[TrainedModel], timesteps, seed: int, batch_size: int
) -> pd.DataFrame:
    """Accuracy of every model on every dataset's probe images.

    Returns ``model, dataset, image_id, timestep, metric, value`` (accuracy and noise_mse).
    """
    frames = []
    for model in models:
        for data in models:
            table = accuracy_table(
                model.network,
                model.scheduler,
                data.probe_set.x0,
                data.probe_set.image_ids,
                timesteps,
                seed,
                batch_size,
            )
            table.insert(0, "model", model.dataset)
            table.insert(1, "dataset", data.dataset)
            frames.append(table)
    return pd.concat(frames, ignore_index=True)


@torch.no_grad()
def _hook_grams(
    unet: Denoiser,
    scheduler,
    x0: torch.Tensor,
    hooks: list[str],
    timestep: int,
    seed: int,
    batch_size: int,
) -> dict[str, torch.Tensor]:
    """Gram matrix [n, n] of each hook point's activations on the noised images."""
    probe = Probe(unet)
    collected: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    x_t, _, t = add_noise(scheduler, x0, int(timestep), seed)
    for start in range(0, len(x0), batch_size):
        chunk = slice(start, start + batch_size)
        with probe.capture(names=hooks) as cache:
            denoise(unet, x_t[chunk].to(unet.device), t[chunk].to(unet.device))
        for hook in hooks:
            collected[hook].append(cache[hook].flatten(1).double().cpu())
    return {h: gram(torch.cat(v)) for h, v in collected.items()}


def _interval(values: torch.Tensor, estimate: float, confidence: float) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval: ``2 estimate - quantiles``.

    Resampling duplicates images, which makes resampled CKA larger than the full-sample
    value; the basic interval corrects that bias to first order, where a percentile
    interval would be shifted up by it (on small n either can exclude the estimate).
    """
    finite = values[torch.isfinite(values)].numpy()
    if len(finite) < 2 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(2 * estimate - high), float(2 * estimate - low)


def feature_transferability(
    models: list[TrainedModel],
    untrained: Denoiser,
    timesteps,
    seed: int,
    batch_size: int,
    n_resamples: int,
    confidence: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Linear CKA per main-path hook point between two models, beside the untrained baseline.

    Parameters
    ----------
    models : list[TrainedModel]
        The synthetic and the natural model (same architecture), probed on both probe sets.
    untrained : Denoiser
        The same architecture, untrained (the initialisation of the training seed).
    timesteps, seed, batch_size
        Noise as in every analysis (common random numbers across models).
    n_resamples, confidence
        Image resamples of each basic bootstrap interval and its level
        (``analyze.cka_bootstrap``, ``stats.confidence``); the resample indices are drawn
        with ``seed`` and shared by every hook, timestep and metric.

    Returns
    -------
    (per_layer, summary) : tuple of pandas.DataFrame
        ``per_layer``: ``timestep, hook, metric, value, ci_low, ci_high, n_images`` with
        metric ``cka`` (trained synthetic vs trained natural), ``cka_untrained_<dataset>``
        (that model vs the untrained network), ``cka_baseline`` (the larger of the two),
        ``cka_above_baseline`` (``cka - cka_baseline``). ``summary``: the same metrics
        averaged over hooks (``scope="timestep"``, one row per timestep) and over hooks and
        timesteps (``scope="all"``, timestep -1), each with an image-bootstrap interval
        of that average.
    """
    first, second = models
    x0 = torch.cat([m.probe_set.x0 for m in models])
    hooks = Probe(first.network).main_path
    indices = bootstrap_indices(len(x0), n_resamples, seed)
    nets = {m.dataset: m.network for m in models} | {"untrained": untrained.eval()}
    point: dict[tuple[int, str, str], float] = {}
    draws: dict[tuple[int, str, str], torch.Tensor] = {}
    for timestep in tqdm(timesteps, desc="cka"):
        grams = {
            name: _hook_grams(net, first.scheduler, x0, hooks, int(timestep), seed, batch_size)
            for name, net in nets.items()
        }
        for hook in hooks:
            pairs = {
                "cka": (first.dataset, second.dataset),
                **{f"cka_untrained_{m.dataset}": (m.dataset, "untrained") for m in models},
            }
            for metric, (a, b) in pairs.items():
                k, m = grams[a][hook], grams[b][hook]
                point[int(timestep), hook, metric] = float(cka_from_grams(k, m))
                draws[int(timestep), hook, metric] = resampled_cka(k, m, indices)
            baselines = [f"cka_untrained_{m.dataset}" for m in models]
            key = (int(timestep), hook)
            point[(*key, "cka_baseline")] = max(point[(*key, b)] for b in baselines)
            draws[(*key, "cka_baseline")] = torch.stack([draws[(*key, b)] for b in baselines]).amax(
                0
            )
            point[(*key, "cka_above_baseline")] = (
                point[(*key, "cka")] - point[(*key, "cka_baseline")]
            )
            draws[(*key, "cka_above_baseline")] = (
                draws[(*key, "cka")] - draws[(*key, "cka_baseline")]
            )
    rows = [(*key, v, *_interval(draws[key], v, confidence)) for key, v in point.items()]
    columns = ["timestep", "hook", "metric", "value", "ci_low", "ci_high"]
    per_layer = pd.DataFrame(rows, columns=columns).assign(n_images=len(x0))
    summary = []
    for scope, keys in (("timestep", ["timestep", "metric"]), ("all", ["metric"])):
        for group, part in per_layer.groupby(keys):
            group = group if isinstance(group, tuple) else (group,)
            timestep = group[0] if scope == "timestep" else -1
            metric = group[-1]
            stacked = torch.stack(
                [draws[(t, h, metric)] for t, h in zip(part.timestep, part.hook, strict=True)]
            )
            mean = part["value"].mean()
            interval = _interval(stacked.mean(0), mean, confidence)
            summary.append((scope, timestep, metric, mean, *interval))
    summary = pd.DataFrame(summary, columns=["scope", *columns[:1], *columns[2:]])
    return per_layer, summary.assign(n_images=len(x0))


@torch.no_grad()
def cross_model_patching(
    models: list[TrainedModel], timesteps, seed: int, batch_size: int, autocast_bf16: bool = False
) -> pd.DataFrame:
    """Patch each layer group's output from the donor model into the receiver model.

    Returns ``model`` (receiver), ``donor``, ``image_id, timestep, target, metric, value``
    with metric ``impact`` on the receiver's own probe images.
    """
    rows = []
    for receiver in models:
        donor = next(m for m in models if m is not receiver)
        receiving, giving = Probe(receiver.network), Probe(donor.network)
        targets = {g: hooks[-1] for g, hooks in layer_group_blocks(receiving).items()}
        for batch in noised_batches(
            receiver.scheduler, receiver.probe_set, timesteps, seed, batch_size
        ):
            with autocast(receiver.network.device, autocast_bf16):
                with receiving.record() as clean:
                    base = noise_mse(
                        predict_noise(receiver.network, receiver.scheduler, batch.x_t, batch.t),
                        batch.eps,
                    )
                with giving.capture(names=list(targets.values())) as donor_cache:
                    device = donor.network.device
                    denoise(donor.network, batch.x_t.to(device), batch.t.to(device))
                for group, hook in targets.items():
                    with receiving.intervene(Patch(hook, donor_cache[hook]), replay=clean):
                        eps_hat = predict_noise(
                            receiver.network, receiver.scheduler, batch.x_t, batch.t
                        )
                    mse = noise_mse(eps_hat, batch.eps)
                    rows.append(
                        pd.DataFrame(
                            {
                                "model": receiver.dataset,
                                "donor": donor.dataset,
                                "image_id": batch.image_ids,
                                "timestep": batch.timestep,
                                "target": group,
                                "metric": "impact",
                                "value": impact(mse, base).double().numpy(),
                            }
                        )
                    )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def summarise_cross(
    accuracy: pd.DataFrame, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Per model and timestep: mean accuracy on the other dataset / on its own, with a CI.

    The interval is a percentile bootstrap over images: the two probe sets are resampled
    independently (they hold different images) and the ratio of means recomputed.

    Returns
    -------
    pandas.DataFrame
        ``model, dataset, timestep, metric="cross_dataset_accuracy", value, ci_low,
        ci_high, n_images_own, n_images_other``.

    Examples
    --------
    >>> acc = pd.DataFrame({"model": "synthetic", "dataset": ["synthetic"] * 2 + ["natural"] * 2,
    ...     "image_id": [0, 1, 0, 1], "timestep": 100, "metric": "accuracy", "value": [0.8, 0.8, 0.4, 0.4]})
    >>> summarise_cross(acc, n_resamples=100)[["model", "dataset", "value", "ci_low", "ci_high"]].round(3).values.tolist()
    [['synthetic', 'natural', 0.5, 0.5, 0.5]]
    """
    acc = accuracy[accuracy["metric"] == "accuracy"]
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2 * 100
    rows = []
    for (model, timestep), part in acc.groupby(["model", "timestep"]):
        values = {d: g["value"].to_numpy(dtype=float) for d, g in part.groupby("dataset")}
        own = values.get(model)
        if own is None:
            continue
        own_draws = own[rng.integers(len(own), size=(n_resamples, len(own)))].mean(axis=1)
        for other, theirs in values.items():
            if other == model:
                continue
            draws = theirs[rng.integers(len(theirs), size=(n_resamples, len(theirs)))].mean(axis=1)
            low, high = np.percentile(draws / own_draws, [tail, 100 - tail])
            rows.append(
                (model, other, timestep, "cross_dataset_accuracy", theirs.mean() / own.mean(),
                 low, high, len(own), len(theirs))
            )  # fmt: skip
    columns = ["model", "dataset", "timestep", "metric", "value", "ci_low", "ci_high",
               "n_images_own", "n_images_other"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
