"""DDPM training loop: accelerate for devices, dvclive for logging, resumable checkpoints.

One call trains one model on one dataset with one seed. The loop is deliberately the
diffusers unconditional-training recipe (random timestep, epsilon or v MSE, AdamW, cosine
schedule with warm-up, EMA of the weights) with three CPU-specific choices, each
measured by ``scripts/benchmark.py``: bf16 autocast where the CPU has native bf16,
channels-last memory format, and a fixed thread count (also needed for determinism).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel, compute_snr
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from diffusion_circuits.io import UserError, atomic_dir, atomic_path
from diffusion_circuits.model.device import bf16_pays, resolve_device
from diffusion_circuits.model.factory import (
    NETWORK_CLASSES,
    Denoiser,
    build_network,
    build_scheduler,
)
from diffusion_circuits.model.forward import denoise, unwrapped
from diffusion_circuits.model.noise import training_target
from diffusion_circuits.params import Params

__all__ = [
    "TrainingDiverged",
    "TrainResult",
    "train_ddpm",
    "batch_for_step",
    "make_accelerator",
    "lr_factor",
    "min_snr_weights",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainResult:
    network: Denoiser  # of params.model.backbone, EMA weights
    scheduler: DDPMScheduler
    final_loss: float
    images_per_second: float
    wall_seconds: float
    steps: int
    resumed_from: int
    mixed_precision: str
    is_main_process: bool = True
    num_processes: int = 1


def _fingerprint(params: Params, seed: int, data: torch.Tensor) -> str:
    """Hash of everything that determines the weights; a checkpoint resumes only on a match."""
    payload = json.dumps(
        {
            "model": params.model.model_dump(mode="json"),
            "scheduler": params.scheduler.model_dump(mode="json"),
            "train": params.train.model_dump(mode="json", exclude={"seeds", "checkpoint_every"}),
            # the device and thread count change float rounding, so the weights too
            "runtime": params.runtime.model_dump(mode="json"),
            "seed": seed,
        },
        sort_keys=True,
    ).encode()
    digest = hashlib.sha256(payload)
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()[:16]


def batch_for_step(
    x0: torch.Tensor, step: int, seed: int, batch_size: int, num_timesteps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (images, noise, timesteps) of one step, drawn from a generator keyed by (seed, step).

    Keying by step rather than carrying one generator makes a resumed run draw exactly the
    batches the uninterrupted run would have drawn.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    index = torch.randint(0, x0.shape[0], (batch_size,), generator=generator)
    images = x0[index]
    flip = torch.rand(batch_size, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    noise = torch.randn(images.shape, generator=generator)
    timesteps = torch.randint(0, num_timesteps, (batch_size,), generator=generator)
    return images, noise, timesteps


def lr_factor(step: int, warmup_steps: int, total_steps: int, final_fraction: float) -> float:
    """Multiplier of the peak learning rate: linear warm-up, then cosine to ``final_fraction``.

    Examples
    --------
    >>> [round(lr_factor(s, 2, 6, 0.1), 3) for s in (0, 1, 2, 4, 6)]
    [0.0, 0.5, 1.0, 0.55, 0.1]
    """
    if step < warmup_steps:
        return step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return final_fraction + (1.0 - final_fraction) * cosine


def min_snr_weights(
    scheduler: DDPMScheduler, timesteps: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Per-sample min-SNR-gamma loss weights (Hang et al. 2023, "Efficient Diffusion
    Training via Min-SNR Weighting"): ``min(SNR, gamma) / SNR`` for epsilon prediction,
    ``min(SNR, gamma) / (SNR + 1)`` for v-prediction (the same weight on the x0 error).

    Down-weights the low-noise timesteps whose targets dominate the plain MSE gradient;
    ``gamma = 0`` gives weight 1 everywhere.
    """
    if gamma <= 0:
        return torch.ones(timesteps.shape, dtype=torch.float32)
    snr = compute_snr(scheduler, timesteps).float()
    if scheduler.config.prediction_type == "v_prediction":
        return torch.clamp(snr, max=gamma) / (snr + 1.0)
    return torch.clamp(snr, max=gamma) / snr


def make_accelerator(params: Params) -> Accelerator:
    """The accelerator ``runtime.device`` and ``train.mixed_precision`` ask for."""
    device = resolve_device(params.runtime.device)
    use_bf16 = bf16_pays(params.train.mixed_precision, device)
    return Accelerator(mixed_precision="bf16" if use_bf16 else "no", cpu=device.type == "cpu")


def train_ddpm(
    x0: torch.Tensor,
    params: Params,
    seed: int,
    out_dir: str | Path,
    resume_dir: str | Path,
    live=None,
    progress: bool = True,
    accelerator: Accelerator | None = None,
) -> TrainResult:
    """Train one DDPM on ``x0`` (float [N, C, H, W] in [-1, 1]) and save it to ``out_dir``.

    ``out_dir`` receives ``unet/`` (``transformer/`` for the DiT) and ``scheduler/`` in
    ``save_pretrained`` format (the EMA weights when ``train.ema_decay > 0``). ``resume_dir`` holds the periodic training
    state; a later call with the same params, seed and data continues from it, and it is
    removed once training finishes. ``live`` is an optional ``dvclive.Live``.

    Under ``accelerate launch`` with P processes, each process trains on its slice of the
    same global batch (``train.batch_size`` must divide by P) and only the main process
    writes the model, the training state and the log.
    """
    cfg = params.train
    torch.set_num_threads(params.runtime.num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    accelerator = make_accelerator(params) if accelerator is None else accelerator
    world, rank = accelerator.num_processes, accelerator.process_index
    if cfg.batch_size % world:
        raise UserError(
            f"train.batch_size={cfg.batch_size} does not split evenly over {world} processes"
        )
    main = accelerator.is_main_process

    network = build_network(params.model, seed=seed)
    scheduler = build_scheduler(params.scheduler)
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    lr_schedule = LambdaLR(
        optimizer,
        lambda step: lr_factor(step, cfg.warmup_steps, cfg.steps, cfg.final_lr_fraction),
    )
    ema = None
    if cfg.ema_decay > 0:
        ema = EMAModel(network.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3)

    resume_file = Path(resume_dir) / "state.pt"
    fingerprint = _fingerprint(params, seed, x0)
    start_step = 0
    if resume_file.is_file():
        state = torch.load(resume_file, weights_only=False)
        if state.get("fingerprint") == fingerprint:
            network.load_state_dict(state["unet"])
            optimizer.load_state_dict(state["optimizer"])
            lr_schedule.load_state_dict(state["lr_schedule"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            start_step = state["step"]

    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    network = network.to(memory_format=memory_format)
    if cfg.compile:
        network = torch.compile(network)
    # The schedule stays unprepared: accelerate would step it once per process per step.
    network, optimizer = accelerator.prepare(network, optimizer)
    if ema is not None:
        ema.to(accelerator.device)
    network.train()

    def save_state(step: int) -> None:
        if not main:
            return
        state = {
            "fingerprint": fingerprint,
            "step": step,
            "unet": unwrapped(network).state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_schedule": lr_schedule.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
        }
        with atomic_path(resume_file) as tmp:
            torch.save(state, tmp)

    loss_value = float("nan")
    started = time.perf_counter()
    bar = tqdm(
        range(start_step, cfg.steps),
        desc="train",
        disable=not (progress and main),
        initial=start_step,
        total=cfg.steps,
    )
    for step in bar:
        batch = batch_for_step(x0, step, seed, cfg.batch_size, params.scheduler.num_train_timesteps)
        # Every process draws the same global batch and trains on its own slice of it; DDP
        # averages the slices' gradients, so P processes take the step one process would.
        images, noise, timesteps = (v[rank::world].to(accelerator.device) for v in batch)
        noisy = scheduler.add_noise(images, noise, timesteps)
        noisy = noisy.contiguous(memory_format=memory_format)
        with accelerator.autocast():
            prediction = denoise(network, noisy, timesteps)
        target = training_target(scheduler, images, noise, timesteps)
        per_sample = F.mse_loss(prediction.float(), target, reduction="none").mean(dim=(1, 2, 3))
        weights = min_snr_weights(scheduler, timesteps, cfg.snr_gamma).to(per_sample.device)
        loss = (weights * per_sample).mean()
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"non-finite loss ({loss.item()}) at step {step}: check the input data for "
                f"NaN/Inf or lower train.learning_rate={cfg.learning_rate}; "
                f"last checkpoint kept in {resume_dir}"
            )
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(network.parameters())
        loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
        bar.set_postfix(loss=f"{loss_value:.4f}")
        if live is not None and main:
            live.log_metric("loss", loss_value)
            live.log_metric("lr", lr_schedule.get_last_lr()[0])
            live.next_step()
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save_state(step + 1)
    wall = time.perf_counter() - started

    final = unwrapped(network).to(memory_format=torch.contiguous_format)
    if ema is not None:
        ema.copy_to(final.parameters())
    final = final.float().cpu().eval()
    if main:
        with atomic_dir(out_dir) as tmp:
            final.save_pretrained(Path(tmp) / NETWORK_CLASSES[params.model.backbone][1])
            scheduler.save_pretrained(Path(tmp) / "scheduler")
        resume_file.unlink(missing_ok=True)
    accelerator.wait_for_everyone()

    trained_steps = cfg.steps - start_step
    return TrainResult(
        network=final,
        scheduler=scheduler,
        final_loss=loss_value,
        images_per_second=trained_steps * cfg.batch_size / wall if wall > 0 else float("nan"),
        wall_seconds=wall,
        steps=cfg.steps,
        resumed_from=start_step,
        mixed_precision=accelerator.mixed_precision,
        is_main_process=main,
        num_processes=world,
    )
