"""Interventions: small objects with one shape, ``intervention(tensor, name) -> tensor``.

``name`` is the hook point an intervention targets. Most act on a hook point's output;
``skip.k`` targets are applied where the decoder consumes the skip (the encoder path is
untouched); attention interventions (:class:`HeadAblation`, :class:`AttentionPerturbation`)
act inside the attention computation and declare their ``site``: ``"logits"``,
``"pattern"`` or ``"z"`` (per-head outputs before the output projection).
"""

from __future__ import annotations

import torch

__all__ = [
    "Intervention",
    "ZeroAblation",
    "MeanAblation",
    "ResampleAblation",
    "FeatureScaling",
    "Patch",
    "SkipCut",
    "BottleneckCut",
    "HeadAblation",
    "AttentionPerturbation",
]


class Intervention:
    """Base class: ``site`` is ``"output"`` for hook-point outputs."""

    site = "output"

    def __init__(self, name: str):
        self.name = name

    def __call__(self, tensor: torch.Tensor, name: str) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ZeroAblation(Intervention):
    def __call__(self, tensor, name):
        return torch.zeros_like(tensor)


class MeanAblation(Intervention):
    """Replace every item's activation by ``mean`` (shape = one item's activation).

    Take ``mean`` from a reference set at the same timestep (``Probe.reference_means``).
    """

    def __init__(self, name: str, mean: torch.Tensor):
        super().__init__(name)
        self.mean = mean

    def __call__(self, tensor, name):
        return self.mean.to(tensor.dtype).expand_as(tensor).clone()


class ResampleAblation(Intervention):
    """Replace each item's activation by a random reference item's (same timestep)."""

    def __init__(self, name: str, source: torch.Tensor, generator: torch.Generator | None = None):
        super().__init__(name)
        self.source = source
        self.generator = generator

    def __call__(self, tensor, name):
        index = torch.randint(0, len(self.source), (tensor.shape[0],), generator=self.generator)
        return self.source[index].to(tensor.dtype)


class FeatureScaling(Intervention):
    def __init__(self, name: str, factor: float):
        super().__init__(name)
        self.factor = factor

    def __call__(self, tensor, name):
        return tensor * self.factor


class Patch(Intervention):
    """Replace the activation by one recorded elsewhere (another input or another model)."""

    def __init__(self, name: str, activation: torch.Tensor):
        super().__init__(name)
        self.activation = activation

    def __call__(self, tensor, name):
        if self.activation.shape != tensor.shape:
            raise ValueError(
                f"patch for {name} has shape {tuple(self.activation.shape)}, "
                f"activation has {tuple(tensor.shape)}"
            )
        return self.activation.to(tensor.dtype)


def _ablate(tensor: torch.Tensor, mode: str, mean: torch.Tensor | None) -> torch.Tensor:
    if mode == "zero":
        return torch.zeros_like(tensor)
    if mode == "mean":
        if mean is None:
            raise ValueError("mode='mean' needs a reference mean")
        return mean.to(tensor.dtype).expand_as(tensor).clone()
    raise ValueError(f"mode must be 'zero' or 'mean', got {mode!r}")


class SkipCut(Intervention):
    """Cut encoder->decoder skip edge ``k`` where the decoder consumes it."""

    def __init__(self, k: int, mode: str = "zero", mean: torch.Tensor | None = None):
        super().__init__(f"skip.{k}")
        self.mode, self.mean = mode, mean

    def __call__(self, tensor, name):
        return _ablate(tensor, self.mode, self.mean)


class BottleneckCut(Intervention):
    """Zero or mean-ablate the mid block's output (the bottleneck)."""

    def __init__(self, mode: str = "zero", mean: torch.Tensor | None = None):
        super().__init__("mid")
        self.mode, self.mean = mode, mean

    def __call__(self, tensor, name):
        return _ablate(tensor, self.mode, self.mean)


class HeadAblation(Intervention):
    """Remove one head's contribution: its slice of ``pattern @ v`` is zeroed or mean-replaced.

    ``mean`` is the reference mean of the attention's ``.z`` site ([heads, q, head_dim]).
    """

    site = "z"

    def __init__(
        self, attn_name: str, head: int, mode: str = "zero", mean: torch.Tensor | None = None
    ):
        super().__init__(attn_name)
        self.head, self.mode, self.mean = head, mode, mean

    def __call__(self, tensor, name):
        out = tensor.clone()
        mean = None if self.mean is None else self.mean[self.head]
        out[:, self.head] = _ablate(tensor[:, self.head], self.mode, mean)
        return out


class AttentionPerturbation(Intervention):
    """Perturb attention: ``uniform`` pattern, ``logit_noise`` (N(0, strength^2) added to
    the logits; the same draw every call, so runs share it) or ``temperature`` (logits
    divided by ``strength``), on every head or one ``head``."""

    def __init__(
        self,
        attn_name: str,
        kind: str = "uniform",
        head: int | None = None,
        strength: float = 1.0,
        seed: int = 0,
    ):
        super().__init__(attn_name)
        if kind not in ("uniform", "logit_noise", "temperature"):
            raise ValueError(f"kind must be uniform, logit_noise or temperature, got {kind!r}")
        self.kind, self.head, self.strength, self.seed = kind, head, strength, seed
        self.site = "pattern" if kind == "uniform" else "logits"

    def __call__(self, tensor, name):
        if self.kind == "uniform":
            edited = torch.full_like(tensor, 1.0 / tensor.shape[-1])
        elif self.kind == "temperature":
            edited = tensor / self.strength
        else:
            generator = torch.Generator().manual_seed(self.seed)
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            edited = tensor + self.strength * noise
        if self.head is None:
            return edited
        out = tensor.clone()
        out[:, self.head] = edited[:, self.head]
        return out
