"""Whether this CPU computes bf16 natively: the analysis stages read it without the trainer."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_supports_bf16"]


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AVX512-BF16 or AMX); else autocast is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
