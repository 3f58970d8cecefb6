"""Shared plumbing for the analyses: which images to probe, their noised inputs, batching.

Every analysis runs the model on the same ``(x_t, eps)`` per image and timestep, drawn
from a generator keyed by (seed, timestep); clean and intervened runs, and the two
models in cross-dataset comparisons, therefore share their noise (common random numbers).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from diffusers import DDPMScheduler

from diffusion_circuits.data.faceset import FaceSet
from diffusion_circuits.data.store import probe_image_ids
from diffusion_circuits.model.noise import add_noise, images_to_tensor

__all__ = ["ProbeSet", "select_probe_set", "NoisedBatch", "noised_batches"]


@dataclass(frozen=True)
class ProbeSet:
    """The distinct images an analysis probes, with where they came from."""

    image_ids: np.ndarray
    x0: torch.Tensor  # float [N, C, H, W] in [-1, 1]
    images: np.ndarray  # uint8 [N, H, W, 3]
    masks: np.ndarray | None  # uint8 [N, H, W] part labels
    selection: str  # "heldout": one image per held-out source


def select_probe_set(faces: FaceSet, n_images: int, channels: int) -> ProbeSet:
    """Up to ``n_images`` distinct held-out images, as ``channels``-channel model inputs."""
    ids, selection = probe_image_ids(faces.attributes, n_images)
    position = pd.Index(faces.attributes["image_id"]).get_indexer(ids)
    images = faces.images[position]
    masks = None if faces.masks is None else faces.masks[position]
    return ProbeSet(ids, images_to_tensor(images, channels), images, masks, selection)


@dataclass(frozen=True)
class NoisedBatch:
    timestep: int
    rows: slice  # rows of the probe set in this batch
    image_ids: np.ndarray
    x_t: torch.Tensor
    eps: torch.Tensor
    t: torch.Tensor


def noised_batches(
    scheduler: DDPMScheduler,
    probe_set: ProbeSet,
    timesteps,
    seed: int,
    batch_size: int,
) -> Iterator[NoisedBatch]:
    """Yield the probe set noised at each timestep, in batches of ``batch_size``."""
    for timestep in timesteps:
        x_t, eps, t = add_noise(scheduler, probe_set.x0, int(timestep), seed)
        for start in range(0, len(x_t), batch_size):
            rows = slice(start, start + batch_size)
            yield NoisedBatch(
                int(timestep), rows, probe_set.image_ids[rows], x_t[rows], eps[rows], t[rows]
            )
