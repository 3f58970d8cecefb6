"""Where models run: the device ``runtime.device`` names, and whether bf16 autocast pays there.

Every model-running stage (training and analysis alike) resolves the device here, so that
``auto`` means the same thing everywhere: a CUDA GPU when one is visible, else the CPU.
Analysis code keeps its tables and metrics on the CPU; only the network and its inputs
move (see :func:`diffusion_circuits.model.noise.predict_noise`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import torch

from diffusion_circuits.io import UserError

__all__ = ["cpu_supports_bf16", "resolve_device", "bf16_pays", "autocast"]


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX); else autocast is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(setting: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``auto`` -> a torch device; ``cuda`` without a GPU is a user error.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if setting not in ("auto", "cpu", "cuda"):
        raise UserError(f"runtime.device must be auto, cpu or cuda, got {setting!r}")
    if setting == "cuda" and not torch.cuda.is_available():
        raise UserError("runtime.device is 'cuda' but no CUDA device is available")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def bf16_pays(mixed_precision: str, device: torch.device) -> bool:
    """bf16 autocast when asked for and the device computes it natively (CUDA, or a CPU with
    AVX512-BF16/AMX); on other CPUs it is emulated and slower, so fp32 is used instead."""
    if mixed_precision != "bf16":
        return False
    return device.type == "cuda" or cpu_supports_bf16()


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager:
    """bf16 autocast on ``device`` (a no-op context when not ``enabled``)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
