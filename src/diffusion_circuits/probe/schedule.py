"""Interventions that know the timestep: apply one only inside a window of timesteps.

A sampling loop calls the model once per step with that step's timestep; the probe
tracks it, so ``Scheduled(HeadAblation("mid.attn.0", 3), window=(600, 900))`` inside one
``probe.intervene`` over a whole pipeline call ablates the head only for those steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffusion_circuits.probe.calls import timestep_value
from diffusion_circuits.probe.interventions import Intervention
from diffusion_circuits.probe.protocol import optional

__all__ = ["Scheduled"]


class Scheduled(Intervention):
    """Apply ``intervention`` only to batch items whose timestep is selected.

    Parameters
    ----------
    intervention : any intervention (its ``name``, ``site`` and ``head`` are reused).
    window : ``(low, high)``, both inclusive: selects ``low <= t <= high``.
    when : or a predicate ``int t -> bool`` (e.g. ``lambda t: t > 500``).

    Items of the same batch may have different timesteps: each is edited or left alone
    by its own. In forwards where no item is selected the edit is switched off entirely
    (an attention keeps its fused kernel, so those steps are bit-identical to a plain run).
    A forward called without a timestep raises ValueError.

    Examples
    --------
    >>> from diffusion_circuits.probe import FeatureScaling
    >>> late = Scheduled(FeatureScaling("mid", 0.0), when=lambda t: t > 500)
    >>> late(torch.ones(2, 1), "mid", timestep=torch.tensor([900, 100]))
    tensor([[0.],
            [1.]])
    """

    uses_timestep = True

    def __init__(
        self,
        intervention,
        window: tuple[int, int] | None = None,
        when: Callable[[int], bool] | None = None,
    ):
        super().__init__(getattr(intervention, "name", None))
        if (window is None) == (when is None):
            raise ValueError("Scheduled needs exactly one of window=(low, high) or when=")
        if window is not None:
            low, high = window
            if low > high:
                raise ValueError(f"window low must be <= high, got {window!r}")
            when = lambda t, low=low, high=high: low <= t <= high  # noqa: E731
        self.intervention, self.window, self.when = intervention, window, when
        self.site = optional(intervention, "site")
        self.head = optional(intervention, "head")

    def selected(self, timesteps: torch.Tensor | None) -> torch.Tensor:
        if timesteps is None:
            raise ValueError(f"{self!r} needs the forward's timestep; the call gave none")
        return torch.tensor([bool(self.when(timestep_value(t))) for t in timesteps.flatten()])

    def active_at(self, timesteps: torch.Tensor | None) -> bool:
        return bool(self.selected(timesteps).any())

    def __call__(self, tensor, name, timestep=None):
        mask = self.selected(timestep)
        inner = self.intervention
        if optional(inner, "uses_timestep"):
            edited = inner(tensor, name, timestep=timestep)
        else:
            edited = inner(tensor, name)
        if bool(mask.all()):
            return edited
        out = tensor.clone()
        out[mask.to(tensor.device)] = edited[mask.to(tensor.device)]
        return out

    def __repr__(self) -> str:
        when = f"window={self.window}" if self.window is not None else "when=<fn>"
        return f"Scheduled({self.intervention!r}, {when})"
