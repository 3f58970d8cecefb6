"""Run by tests/model/test_distributed.py under `accelerate launch` with two CPU processes.

Each process trains the tiny model and records, in ``OUT/rank<r>.json``, the timesteps of
the samples it trained on and how many times it wrote a model or a training state.
"""

import json
import sys
from pathlib import Path

import torch

from diffusion_circuits.model import training
from diffusion_circuits.params import Params


def recording(function, seen, writes, key=None):
    def wrapper(*args, **kwargs):
        if key is None:
            seen.append(args[1].tolist())
        else:
            writes[key] += 1
        return function(*args, **kwargs)

    return wrapper


def main() -> None:
    out, params_file = Path(sys.argv[1]), Path(sys.argv[2])
    params = Params.model_validate(json.loads(params_file.read_text()))
    seen, writes = [], {"model": 0, "state": 0}
    training.min_snr_weights = recording(training.min_snr_weights, seen, writes)
    training.atomic_dir = recording(training.atomic_dir, seen, writes, "model")
    training.atomic_path = recording(training.atomic_path, seen, writes, "state")
    x0 = torch.linspace(-1, 1, 8 * 16 * 16).reshape(8, 1, 16, 16)
    result = training.train_ddpm(x0, params, 0, out / "model", out / "resume", progress=False)
    record = {"main": result.is_main_process, "processes": result.num_processes}
    (out / f"rank{int(not result.is_main_process)}.json").write_text(
        json.dumps({**record, "timesteps": seen, "writes": writes})
    )


if __name__ == "__main__":
    main()
