"""Build the study's network and noise scheduler from the ``model`` / ``scheduler`` params.

``model.backbone`` picks the network. ``unet`` (the default, the paper's): the U-Net keys
of the ``model`` section are passed unchanged to :class:`diffusers.UNet2DModel`, three
self-attention layers (the mid block's and the two of the first up block, all at the
8x8, 256-channel level) of 8 heads each (head dim 32). ``dit``: the ``model.dit`` keys
build a :class:`diffusers.DiTTransformer2DModel` with one class (docs/BACKBONES.md).
Either way the architecture lives in ``model.config`` and travels with every
``save_pretrained`` checkpoint, in the sub-folder diffusers pipelines use for it
(``unet/`` or ``transformer/``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDPMScheduler, DiTTransformer2DModel, UNet2DModel

from diffusion_circuits.params import ModelParams, SchedulerParams

__all__ = [
    "Denoiser",
    "NETWORK_CLASSES",
    "build_network",
    "build_unet",
    "build_scheduler",
    "load_checkpoint",
    "load_network",
    "network_folder",
    "count_attention",
    "CheckpointError",
]

Denoiser = UNet2DModel | DiTTransformer2DModel

# backbone -> (class, checkpoint sub-folder named as diffusers pipelines name it)
NETWORK_CLASSES: dict[str, tuple[type, str]] = {
    "unet": (UNet2DModel, "unet"),
    "dit": (DiTTransformer2DModel, "transformer"),
}


class CheckpointError(ValueError):
    """A checkpoint folder is missing, unreadable or of another architecture."""


def build_network(params: ModelParams, seed: int = 0) -> Denoiser:
    """A freshly initialised network of ``params.backbone``; the same seed gives the same
    weights."""
    network_class, _ = NETWORK_CLASSES[params.backbone]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = network_class(**params.network_kwargs())
    if params.backbone == "dit":
        _no_label_dropout(network)
    return network


def _no_label_dropout(dit: DiTTransformer2DModel) -> None:
    """Turn off the class-label dropout (10%) every adaLN-Zero block draws in training.

    It trains the "no class" embedding that classifier-free guidance needs; with one
    class there is nothing to guide towards, and the drop would spend global random draws
    and train an embedding no forward ever uses (every call passes class 0).
    """
    for module in dit.modules():
        if hasattr(module, "class_embedder"):
            module.class_embedder.dropout_prob = 0.0


def build_unet(params: ModelParams, seed: int = 0) -> UNet2DModel:
    """A freshly initialised ``UNet2DModel`` whatever ``params.backbone`` says (benchmarks)."""
    return build_network(params.model_copy(update={"backbone": "unet"}), seed)


def build_scheduler(params: SchedulerParams) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=params.num_train_timesteps,
        beta_schedule=params.beta_schedule,
        prediction_type=params.prediction_type,
        clip_sample=True,
    )


def count_attention(network: Denoiser) -> tuple[int, list[int]]:
    """Number of self-attention layers and the head count of each, in module order."""
    from diffusers.models.attention_processor import Attention

    heads = [m.heads for m in network.modules() if isinstance(m, Attention)]
    return len(heads), heads


def network_folder(folder: str | Path) -> tuple[str, Path]:
    """``(backbone, sub-folder)`` of the network a train-stage checkpoint holds."""
    folder = Path(folder)
    for backbone, (_, sub) in NETWORK_CLASSES.items():
        if (folder / sub / "config.json").is_file():
            return backbone, folder / sub
    wanted = " or ".join(f"{sub}/config.json" for _, sub in NETWORK_CLASSES.values())
    raise CheckpointError(f"{folder}: no {wanted} (not a train-stage checkpoint)")


def load_network(folder: str | Path) -> Denoiser:
    """The network of a train-stage checkpoint, of whichever backbone it holds."""
    backbone, sub = network_folder(folder)
    return NETWORK_CLASSES[backbone][0].from_pretrained(sub)


def load_checkpoint(
    folder: str | Path, expected: ModelParams | None = None
) -> tuple[Denoiser, DDPMScheduler]:
    """Load the network and ``scheduler/`` saved by the train stage; check the architecture."""
    folder = Path(folder)
    backbone, _ = network_folder(folder)
    if expected is not None and backbone != expected.backbone:
        raise CheckpointError(
            f"{folder}: checkpoint holds a {backbone} but params say "
            f"model.backbone={expected.backbone!r} (a checkpoint of another architecture)"
        )
    network = load_network(folder)
    scheduler = DDPMScheduler.from_pretrained(folder / "scheduler")
    if expected is not None:
        _check_architecture(folder, network, expected)
    return network.eval(), scheduler


def _check_architecture(folder: Path, network: Denoiser, expected: ModelParams) -> None:
    wanted = expected.network_kwargs()
    found = {key: network.config[key] for key in wanted}
    found = {k: tuple(v) if isinstance(v, list) else v for k, v in found.items()}
    diff = {k: (found[k], wanted[k]) for k in wanted if found[k] != wanted[k]}
    if diff:
        key, (got, want) = next(iter(diff.items()))
        # the DiT's keys live in model.dit, except the ones it shares with the U-Net
        section = "model.dit" if expected.backbone == "dit" and key in expected.dit.model_fields else "model"  # fmt: skip
        raise CheckpointError(
            f"{folder}: checkpoint has {section}.{key}={got!r} but params say {want!r} "
            "(a checkpoint of another architecture)"
        )
