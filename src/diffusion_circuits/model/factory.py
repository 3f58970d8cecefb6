"""Build the study's U-Net and noise scheduler from the ``model`` / ``scheduler`` params.

The ``model`` section is passed unchanged to :class:`diffusers.UNet2DModel`, so the
architecture lives in ``model.config`` and travels with every ``save_pretrained``
checkpoint. The default is the paper's: three self-attention layers (the mid block's
and the two of the first up block, all at the 8x8, 256-channel level) of 8 heads each
(head dim 32).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel

from diffusion_circuits.params import ModelParams, SchedulerParams

__all__ = [
    "build_unet",
    "build_scheduler",
    "load_checkpoint",
    "count_attention",
    "CheckpointError",
]


class CheckpointError(ValueError):
    """A checkpoint folder is missing, unreadable or of another architecture."""


def build_unet(params: ModelParams, seed: int = 0) -> UNet2DModel:
    """A freshly initialised ``UNet2DModel``; the same seed gives the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(**params.model_dump())


def build_scheduler(params: SchedulerParams) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=params.num_train_timesteps,
        beta_schedule=params.beta_schedule,
        prediction_type=params.prediction_type,
        clip_sample=True,
    )


def count_attention(unet: UNet2DModel) -> tuple[int, list[int]]:
    """Number of self-attention layers and the head count of each, in module order."""
    from diffusers.models.attention_processor import Attention

    heads = [m.heads for m in unet.modules() if isinstance(m, Attention)]
    return len(heads), heads


def load_checkpoint(
    folder: str | Path, expected: ModelParams | None = None
) -> tuple[UNet2DModel, DDPMScheduler]:
    """Load ``unet/`` and ``scheduler/`` saved by the train stage; check the architecture."""
    folder = Path(folder)
    if not (folder / "unet" / "config.json").is_file():
        raise CheckpointError(f"{folder}: no unet/config.json (not a train-stage checkpoint)")
    unet = UNet2DModel.from_pretrained(folder / "unet")
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    if expected is not None:
        wanted = expected.model_dump()
        found = {key: unet.config[key] for key in wanted}
        found = {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}
        diff = {k: (found[k], wanted[k]) for k in wanted if found[k] != wanted[k]}
        if diff:
            key, (got, want) = next(iter(diff.items()))
            raise CheckpointError(
                f"{folder}: checkpoint has model.{key}={got!r} but params say {want!r} "
                "(a checkpoint of another architecture)"
            )
    return unet.eval(), scheduler
