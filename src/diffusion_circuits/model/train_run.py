"""One training run of the train stage: a dataset's training split in, a checkpoint out."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvclive import Live

from diffusion_circuits import layout
from diffusion_circuits.data.store import load_faceset, split_images
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.model.training import make_accelerator, train_ddpm
from diffusion_circuits.params import Params

__all__ = ["TrainRun", "train_model"]


@dataclass(frozen=True)
class TrainRun:
    is_main_process: bool  # under `accelerate launch`, only the main process writes
    metrics: dict[str, Any]  # metrics/train/<model>.json
    timings: dict[str, Any]  # timings/train/<model>.json


def train_model(params: Params, dataset: str, seed: int, data_root: str | Path) -> TrainRun:
    """Train the ``dataset`` model of ``seed`` into :func:`~layout.model_dir` (EMA weights),
    logging its curves with dvclive under :func:`~layout.train_plots_dir`."""
    faces = load_faceset(layout.dataset_dir(dataset, data_root))
    x0 = images_to_tensor(split_images(faces, "train"), params.model.in_channels)
    accelerator = make_accelerator(params)
    main = accelerator.is_main_process
    live_dir = layout.train_plots_dir(dataset, seed)
    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) if main else nullcontext() as live:
        result = train_ddpm(
            x0,
            params,
            seed,
            layout.model_dir(dataset, seed),
            layout.resume_dir(dataset, seed),
            live=live,
            accelerator=accelerator,
        )
    metrics = {
        "final_loss": result.final_loss,
        "steps": result.steps,
        "n_train_images": len(x0),
        "n_train_sources": int(faces.attributes.query("split == 'train'")["source_id"].nunique()),
        "mixed_precision": result.mixed_precision,
    }
    timings = {
        "images_per_second": result.images_per_second,
        "wall_seconds": result.wall_seconds,
        "resumed_from_step": result.resumed_from,
        "num_processes": result.num_processes,
    }
    return TrainRun(main, metrics, timings)
