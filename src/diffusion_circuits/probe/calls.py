"""Reading a model call's inputs by name, whatever the family's forward signature.

``UNet2DModel`` takes ``(sample, timestep, ...)``, PixArt ``(hidden_states,
encoder_hidden_states, timestep, ...)``: binding the call to ``model.forward``'s
signature finds the sample (the first parameter) and the timestep in both.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

__all__ = ["forward_arguments", "sample_and_timestep", "tensor_inputs", "timestep_value"]


def forward_arguments(model: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of a ``model(*args, **kwargs)`` call, by parameter name."""
    return dict(inspect.signature(model.forward).bind_partial(*args, **kwargs).arguments)


def sample_and_timestep(
    model: nn.Module, args: tuple, kwargs: dict
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(sample, timestep)`` of a call: its first argument and the one named ``timestep``."""
    arguments = forward_arguments(model, args, kwargs)
    sample = next(iter(arguments.values()))
    timestep = arguments.get("timestep")
    return sample, None if timestep is None else torch.as_tensor(timestep)


def tensor_inputs(model: nn.Module, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
    """Every tensor a call receives (one level into dicts, e.g. ``added_cond_kwargs``)."""
    found: dict[str, torch.Tensor] = {}
    for name, value in forward_arguments(model, args, kwargs).items():
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, torch.Tensor):
                    found[f"{name}.{key}"] = item
        elif isinstance(value, torch.Tensor) or name == "timestep" and value is not None:
            found[name] = torch.as_tensor(value)
    return found


def timestep_value(t) -> int | float:
    """One timestep as a plain number: an int when integral (DDPM's 0..999, also as a
    float tensor), else the float itself (flow matching: FLUX's t in [0, 1]).

    >>> timestep_value(torch.tensor(500.0)), timestep_value(torch.tensor(0.25)), timestep_value(7)
    (500, 0.25, 7)
    """
    value = t.item() if isinstance(t, torch.Tensor) else t
    return int(value) if float(value).is_integer() else float(value)
