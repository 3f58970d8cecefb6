"""`accelerate launch` with two CPU processes: sharded batches, one writer, the same model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusion_circuits.model.factory import load_checkpoint
from diffusion_circuits.model.training import batch_for_step, train_ddpm
from diffusion_circuits.params import Params

SCRIPT = Path(__file__).with_name("two_process_train.py")
ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tiny_params_shared):
    out = tmp_path_factory.mktemp("two_process")
    params_file = out / "params.json"
    params_file.write_text(tiny_params_shared.model_dump_json())
    command = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
               "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(SCRIPT), str(out), str(params_file)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return out, ranks


def test_each_process_trains_on_its_own_half_of_the_global_batch(two_process_run):
    _, ranks = two_process_run
    params_steps = len(ranks[0]["timesteps"])
    assert [r["processes"] for r in ranks] == [2, 2] and params_steps > 0
    for step in range(params_steps):
        _, _, timesteps = batch_for_step(torch.zeros(8, 1, 16, 16), step, 0, 4, 1000)
        assert ranks[0]["timesteps"][step] == timesteps[0::2].tolist()
        assert ranks[1]["timesteps"][step] == timesteps[1::2].tolist()


def test_only_the_main_process_writes(two_process_run):
    _, ranks = two_process_run
    main, other = ranks
    assert main["main"] and not other["main"]
    assert main["writes"]["model"] == 1 and main["writes"]["state"] >= 1
    assert other["writes"] == {"model": 0, "state": 0}


def test_two_processes_train_the_model_one_process_trains(two_process_run, tiny_params_shared):
    out, _ = two_process_run
    x0 = torch.linspace(-1, 1, 8 * 16 * 16).reshape(8, 1, 16, 16)
    single = train_ddpm(x0, tiny_params_shared, 0, out / "single", out / "rs", progress=False)
    pair, _ = load_checkpoint(out / "model", tiny_params_shared.model)
    # What one process would learn from a batch of half the size alone.
    raw = tiny_params_shared.model_dump()
    half = Params.model_validate({**raw, "train": {**raw["train"], "batch_size": 2}})
    alone = train_ddpm(x0, half, 0, out / "half", out / "rh", progress=False)
    x_t = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([50, 300, 600, 950])
    with torch.no_grad():
        reference = single.network(x_t, t).sample
        gap = (pair(x_t, t).sample - reference).abs().max().item()
        control = (alone.network(x_t, t).sample - reference).abs().max().item()
    print(
        f"max output difference from one process: two processes {gap:.2e}, half batch {control:.2e}"
    )
    # The all-reduce sums in another order than one process does, and Adam's first steps
    # turn the sign of near-zero gradients into full-size updates: float error, not zero.
    assert gap < control / 10
