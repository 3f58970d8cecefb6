"""Cross-dataset comparison of the two models (paper 4.7, 4.9).

- cross-dataset accuracy: each model's noise-prediction accuracy on the other dataset's
  probe images relative to its accuracy on its own;
- feature transferability: linear CKA between the two models' activations on the same
  images (both probe sets), per hook point and timestep;
- cross-model patching: the output of each layer group of one model replaced by the
  other model's on the same ``x_t``, and the impact on the receiving model's MSE.
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from diffusion_circuits.analysis.accuracy import accuracy_table
from diffusion_circuits.analysis.interventions import _group_hooks
from diffusion_circuits.analysis.model_io import TrainedModel
from diffusion_circuits.analysis.probing import main_path, noised_batches
from diffusion_circuits.metrics.accuracy import noise_mse
from diffusion_circuits.metrics.cka import linear_cka
from diffusion_circuits.metrics.impact import impact
from diffusion_circuits.model.noise import add_noise
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
                model.unet,
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
def feature_transferability(
    models: list[TrainedModel], timesteps, seed: int, batch_size: int
) -> pd.DataFrame:
    """Linear CKA per main-path hook point between two models on the same images.

    Returns ``timestep, hook, metric="cka", value``.
    """
    first, second = models
    x0 = torch.cat([m.probe_set.x0 for m in models])
    hooks = main_path(Probe(first.unet).hook_points)
    rows = []
    for timestep in tqdm(timesteps, desc="cka"):
        acts = []
        for model in models:
            probe = Probe(model.unet)
            collected: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
            x_t, _, t = add_noise(model.scheduler, x0, int(timestep), seed)
            for start in range(0, len(x0), batch_size):
                chunk = slice(start, start + batch_size)
                with probe.capture(names=hooks) as cache:
                    model.unet(x_t[chunk], t[chunk])
                for hook in hooks:
                    collected[hook].append(cache[hook].flatten(1).double())
            acts.append({h: torch.cat(v) for h, v in collected.items()})
        for hook in hooks:
            rows.append((int(timestep), hook, "cka", linear_cka(acts[0][hook], acts[1][hook])))
    return pd.DataFrame(rows, columns=["timestep", "hook", "metric", "value"])


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
        targets = {g: hooks[-1] for g, hooks in _group_hooks(Probe(receiver.unet)).items()}
        receiving, giving = Probe(receiver.unet), Probe(donor.unet)
        for batch in noised_batches(
            receiver.scheduler, receiver.probe_set, timesteps, seed, batch_size
        ):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
                with receiving.record() as clean:
                    base = noise_mse(receiver.unet(batch.x_t, batch.t).sample.float(), batch.eps)
                with giving.capture(names=list(targets.values())) as donor_cache:
                    donor.unet(batch.x_t, batch.t)
                for group, hook in targets.items():
                    with receiving.intervene(Patch(hook, donor_cache[hook]), replay=clean):
                        eps_hat = receiver.unet(batch.x_t, batch.t).sample.float()
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


def summarise_cross(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Per model and timestep: mean accuracy on the other dataset / on its own."""
    acc = accuracy[accuracy["metric"] == "accuracy"]
    means = acc.groupby(["model", "dataset", "timestep"])["value"].mean().unstack("dataset")
    rows = []
    for (model, timestep), row in means.iterrows():
        other = [d for d in means.columns if d != model]
        for d in other:
            rows.append((model, d, timestep, "cross_dataset_accuracy", row[d] / row[model]))
    return pd.DataFrame(rows, columns=["model", "dataset", "timestep", "metric", "value"])
