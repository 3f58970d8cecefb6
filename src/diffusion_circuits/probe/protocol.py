"""What ``Probe.intervene`` needs of an intervention, written down as a Protocol.

Any object with these attributes works; subclassing
:class:`~diffusion_circuits.probe.interventions.Intervention` gives the optional ones
their defaults. :func:`optional` reads an optional attribute with the same defaults
from an object that does not declare it, so duck-typed interventions keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["InterventionLike", "OPTIONAL_DEFAULTS", "optional"]


@runtime_checkable
class InterventionLike(Protocol):
    """An intervention as the probe calls it.

    Attributes
    ----------
    name : the hook point it targets (an attention hook point when ``site`` is set).
    site : None (the hook point's own tensor), or a site inside attention ``name``:
        ``"q"``, ``"k"``, ``"v"``, ``"logits"``, ``"pattern"`` or ``"z"``.
    head : the head it acts on, if one (checked against the attention's head count).
    uses_timestep : if True it is called ``__call__(tensor, name, timestep=t)`` with
        the forward's per-item timesteps (a 1-d tensor, or None).
    active_at : None, or ``(timesteps) -> bool``: False switches the edit off for that
        forward (an attention then keeps its fused kernel: bit-identical).
    """

    name: str
    site: str | None
    head: int | None
    uses_timestep: bool
    active_at: Callable[[torch.Tensor | None], bool] | None

    def __call__(self, tensor: torch.Tensor, name: str, **kwargs: Any) -> torch.Tensor: ...


OPTIONAL_DEFAULTS: dict[str, Any] = {
    "site": None,
    "head": None,
    "uses_timestep": False,
    "active_at": None,
}


def optional(intervention: object, attribute: str) -> Any:
    """``intervention.<attribute>``, or its Protocol default when it has none.

    >>> class Bare:
    ...     name = "mid"
    >>> optional(Bare(), "uses_timestep"), optional(Bare(), "head")
    (False, None)
    """
    return getattr(intervention, attribute, OPTIONAL_DEFAULTS[attribute])
