"""Per-image activation and attention summaries at every hook point (stage cache_activations).

One pass per batch and timestep captures every main-path hook point and every attention
pattern, reduces them to per-image numbers on the spot and drops the tensors, so memory
is bounded by one batch whatever the number of images or timesteps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from diffusion_circuits.analysis.probing import ProbeSet, noised_batches
from diffusion_circuits.layout import saliency_key
from diffusion_circuits.metrics.accuracy import noise_mse, noise_prediction_accuracy
from diffusion_circuits.metrics.attention_entropy import head_entropy, key_saliency, specialisation
from diffusion_circuits.metrics.feature_complexity import feature_complexity, hoyer_sparsity
from diffusion_circuits.metrics.information_flow import information_flow
from diffusion_circuits.model.factory import Denoiser
from diffusion_circuits.model.noise import predict_noise
from diffusion_circuits.probe import Probe

__all__ = ["ActivationSummaries", "feature_map", "summarise_activations", "scale_free_complexity"]


@dataclass(frozen=True)
class ActivationSummaries:
    activations: pd.DataFrame  # image_id, timestep, hook, layer_group, metric, value
    attention: pd.DataFrame  # image_id, timestep, hook, layer_group, head, metric, value
    # image_id, timestep, hook (a->b), layer_group, metric, value (chance-adjusted IFE),
    # value_raw (plug-in MI / max H), value_null (its expectation under independence), bins
    information_flow: pd.DataFrame
    saliency: dict[str, np.ndarray]  # saliency_key(hook, t) -> float16 [N, heads, keys]


def _frame(
    ids: np.ndarray, timestep: int, hook: str, group: str, metric: str, values
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": ids,
            "timestep": timestep,
            "hook": hook,
            "layer_group": group,
            "metric": metric,
            "value": torch.as_tensor(values).double().numpy(),
        }
    )


def scale_free_complexity(activations: pd.DataFrame) -> pd.DataFrame:
    """Feature complexity of each layer's output divided by its std over the probe set.

    ``feature_complexity`` scales as a^2 with the activations (units^2), so its values
    cannot be compared across networks. Dividing F by s, the population std of the
    layer's output over every probe image and element at that timestep, gives
    ``C / s^2``: the metric ``feature_complexity_scaled``, unit-free. s^2 is pooled from
    the per-image means and population stds (every image has the same element count):
    ``s^2 = mean_i(std_i^2 + mean_i^2) - (mean_i mean_i)^2``.

    Parameters
    ----------
    activations : pandas.DataFrame
        Tidy rows with metrics ``feature_complexity``, ``activation_std`` and
        ``activation_mean`` per (image_id, timestep, hook).

    Returns
    -------
    pandas.DataFrame
        The same columns, metric ``feature_complexity_scaled``.

    Examples
    --------
    >>> rows = [(i, 100, "a", "middle", m, v) for i, (c, s, mu) in enumerate([(2.0, 1.0, 1.0), (8.0, 1.0, -1.0)])
    ...         for m, v in (("feature_complexity", c), ("activation_std", s), ("activation_mean", mu))]
    >>> df = pd.DataFrame(rows, columns=["image_id", "timestep", "hook", "layer_group", "metric", "value"])
    >>> scale_free_complexity(df)["value"].tolist()  # pooled variance 1 + 1 - 0 = 2
    [1.0, 4.0]
    """
    keys = ["image_id", "timestep", "hook", "layer_group"]
    wide = activations.pivot_table(index=keys, columns="metric", values="value").reset_index()
    moments = wide.assign(second=wide["activation_std"] ** 2 + wide["activation_mean"] ** 2)
    layer = moments.groupby(["timestep", "hook"])[["second", "activation_mean"]].transform("mean")
    variance = (layer["second"] - layer["activation_mean"] ** 2).clip(lower=0.0)
    scaled = wide["feature_complexity"] / variance.where(variance > 0)
    return wide[keys].assign(metric="feature_complexity_scaled", value=scaled.to_numpy())


def feature_map(features: torch.Tensor) -> torch.Tensor:
    """A hook point's output as a [B, C, H, W] map: a U-Net's as it is, a transformer's
    tokens [B, tokens, dim] as [B, dim, side, side] (the tokens of a square patch grid, in
    the row-major order diffusers' ``PatchEmbed`` lays them out).

    Examples
    --------
    >>> tokens = torch.arange(8.0).view(1, 4, 2)  # 4 tokens of 2 channels
    >>> feature_map(tokens)[0, 0].tolist()  # channel 0 of tokens 0, 1 / 2, 3
    [[0.0, 2.0], [4.0, 6.0]]
    """
    if features.ndim == 4:
        return features
    side = math.isqrt(features.shape[1]) if features.ndim == 3 else 0
    if side * side != features.shape[1] or features.ndim != 3:
        raise ValueError(
            f"expected a [B, C, H, W] map or [B, tokens, dim] tokens of a square grid, "
            f"got shape {tuple(features.shape)}"
        )
    return features.transpose(1, 2).reshape(features.shape[0], features.shape[2], side, side)


@torch.no_grad()
def summarise_activations(
    unet: Denoiser,
    scheduler: DDPMScheduler,
    probe_set: ProbeSet,
    timesteps,
    seed: int,
    batch_size: int,
    ife_bins: int,
    progress: bool = True,
) -> ActivationSummaries:
    """Feature complexity, IFE, attention entropy/specialisation and accuracy per image.

    Returns tidy tables (see :class:`ActivationSummaries`); metric names are documented
    in docs/METRICS.md.
    """
    unet.eval()
    probe = Probe(unet)
    path = probe.main_path
    # Accuracy is the prediction's: its rows sit at the output hook point and its group.
    prediction = probe.output_point
    prediction_group = probe.group_of(prediction)
    attention = list(probe.attention_heads)
    names = path + [f"{name}.pattern" for name in attention]
    activation_rows, attention_rows, flow_rows = [], [], []
    saliency: dict[str, list[np.ndarray]] = {}
    batches = list(noised_batches(scheduler, probe_set, timesteps, seed, batch_size))
    for batch in tqdm(batches, desc="cache_activations", disable=not progress):
        with probe.capture(names=names) as cache:
            eps_hat = predict_noise(unet, scheduler, batch.x_t, batch.t)
        ids, t = batch.image_ids, batch.timestep
        for metric, values in (
            ("accuracy", noise_prediction_accuracy(eps_hat, batch.eps)),
            ("noise_mse", noise_mse(eps_hat, batch.eps)),
        ):
            activation_rows.append(_frame(ids, t, prediction, prediction_group, metric, values))
        for hook in path:
            features = cache[hook].float().cpu()
            group = probe.group_of(hook)
            activation_rows.append(
                _frame(ids, t, hook, group, "feature_complexity", feature_complexity(features))
            )
            activation_rows.append(
                _frame(ids, t, hook, group, "hoyer_sparsity", hoyer_sparsity(features))
            )
            flat = features.flatten(1).double()
            for metric, values in (
                ("activation_std", flat.std(dim=1, correction=0)),  # population std
                ("activation_mean", flat.mean(dim=1)),
            ):
                activation_rows.append(_frame(ids, t, hook, group, metric, values))
        for upstream, downstream in zip(path[:-1], path[1:], strict=True):
            flow = information_flow(
                feature_map(cache[upstream].float().cpu()),
                feature_map(cache[downstream].float().cpu()),
                bins=ife_bins,
            )
            frame = _frame(
                ids,
                t,
                f"{upstream}->{downstream}",
                probe.group_of(downstream),
                "information_flow_efficiency",
                flow.adjusted,
            )
            frame["value_raw"] = flow.raw.numpy()
            frame["value_null"] = flow.null.numpy()
            frame["bins"] = flow.bins
            flow_rows.append(frame)
        for hook in attention:
            pattern = cache[f"{hook}.pattern"].float().cpu()
            n_keys = pattern.shape[-1]
            entropy = head_entropy(pattern)
            for metric, values in (
                ("entropy", entropy),
                ("specialisation", specialisation(entropy, n_keys)),
            ):
                for head in range(values.shape[1]):
                    frame = _frame(ids, t, hook, probe.group_of(hook), metric, values[:, head])
                    frame.insert(4, "head", head)
                    attention_rows.append(frame)
            saliency.setdefault(saliency_key(hook, t), []).append(
                key_saliency(pattern).to(torch.float16).numpy()
            )
    activations = pd.concat(activation_rows, ignore_index=True)
    return ActivationSummaries(
        activations=pd.concat([activations, scale_free_complexity(activations)], ignore_index=True),
        attention=pd.concat(attention_rows, ignore_index=True),
        information_flow=pd.concat(flow_rows, ignore_index=True),
        saliency={key: np.concatenate(parts) for key, parts in saliency.items()},
    )
