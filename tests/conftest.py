import pytest
import torch

from diffusion_circuits.params import Params
from params_helper import params_with

# Two workers share two cores: one intra-op thread each keeps them from fighting.
torch.set_num_threads(1)

TINY = {
    "data": {"resolution": 16},
    "model": {
        "sample_size": 16,
        "block_out_channels": [32, 32, 64],
        "attention_head_dim": 8,
        "norm_num_groups": 8,
    },
    "train": {
        "steps": 6,
        "batch_size": 4,
        "warmup_steps": 1,
        "checkpoint_every": 3,
    },
    "runtime": {"num_threads": 1},
    "probe": {"timesteps": [100, 600], "n_images": 4, "batch_size": 4},
}


@pytest.fixture
def tiny_params() -> Params:
    """Paper-shaped (3 attention layers of 8 heads) but small enough to train in a second."""
    return params_with(TINY)


@pytest.fixture(scope="session")
def tiny_params_shared() -> Params:
    """The same params for session- or module-scoped fixtures (Params is frozen)."""
    return params_with(TINY)
