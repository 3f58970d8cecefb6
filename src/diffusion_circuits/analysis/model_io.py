"""Load what an analysis stage needs for one trained model: checkpoint, data, probe set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DDPMScheduler

from diffusion_circuits import layout
from diffusion_circuits.analysis.probing import ProbeSet, select_probe_set
from diffusion_circuits.data.faceset import FaceSet
from diffusion_circuits.data.store import load_faceset
from diffusion_circuits.model.device import resolve_device
from diffusion_circuits.model.factory import Denoiser, load_checkpoint
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.params import Params

__all__ = ["TrainedModel", "load_trained", "reference_images"]


@dataclass(frozen=True)
class TrainedModel:
    dataset: str
    seed: int
    network: Denoiser  # of params.model.backbone
    scheduler: DDPMScheduler
    faces: FaceSet
    probe_set: ProbeSet


def load_trained(
    params: Params,
    dataset: str,
    seed: int,
    root: str | Path = layout.DATA,
    n_probe: int | None = None,
) -> TrainedModel:
    """Checkpoint, dataset and probe set (``n_probe`` held-out images, default
    ``probe.n_images``) of one trained model; the network on ``runtime.device``."""
    n_probe = params.probe.n_images if n_probe is None else n_probe
    torch.set_num_threads(params.runtime.num_threads)
    network, scheduler = load_checkpoint(layout.model_dir(dataset, seed, root), params.model)
    network.to(resolve_device(params.runtime.device))
    faces = load_faceset(layout.dataset_dir(dataset, root))
    probe_set = select_probe_set(faces, n_probe, network.config.in_channels)
    return TrainedModel(dataset, seed, network, scheduler, faces, probe_set)


def reference_images(faces: FaceSet, n: int, channels: int) -> torch.Tensor:
    """The first ``n`` distinct training images: the reference set for mean/resample ablation."""
    attributes = faces.attributes
    train = attributes[attributes["split"] == "train"].drop_duplicates("source_id").head(n)
    return images_to_tensor(faces.images[train.index.to_numpy()], channels)
