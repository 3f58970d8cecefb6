"""Whole-trajectory capture: stream chosen hook points at chosen timesteps to a sink.

Run any sampling loop inside :func:`stream` (a diffusers pipeline call, or a plain loop
over ``scheduler.timesteps``): every model forward is one *step*. At selected steps each
selected hook point's tensor (or its ``reduce``-tion, computed on the fly) is handed to
the sink and nothing is kept here, so peak memory does not grow with the number of steps
or images; at other steps the recorders are switched off (attention sites are then not
even computed). The sink is the caller's choice (``probe.sinks``).

Examples
--------
>>> import torch
>>> from diffusers import DDIMScheduler, UNet2DModel
>>> from diffusion_circuits.probe import MemorySink, Probe
>>> _ = torch.manual_seed(0)
>>> unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
...                    layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
...                    up_block_types=("UpBlock2D",) * 2, attention_head_dim=4)
>>> scheduler = DDIMScheduler(num_train_timesteps=1000)
>>> scheduler.set_timesteps(5)
>>> sink, x = MemorySink(), torch.randn(2, 3, 8, 8)
>>> with torch.no_grad(), Probe(unet).stream("mid.attn.0.pattern", sink,
...         timesteps=lambda t: t >= 500, reduce=lambda name, p: p.mean(0)):
...     for t in scheduler.timesteps:
...         x = scheduler.step(unet(x, t).sample, t, x).prev_sample
>>> sink.timesteps("mid.attn.0.pattern"), sink.stacked("mid.attn.0.pattern").shape
([800, 600], (2, 2, 16, 16))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from diffusion_circuits.probe.cache import guidance_half
from diffusion_circuits.probe.calls import sample_and_timestep, timestep_value

__all__ = ["StreamState", "stream"]

Selection = Iterable[int] | Callable[[int], bool] | None


@dataclass
class StreamState:
    """Where the stream is: ``step`` (forwards so far, from 0), the current ``timestep``
    and whether it is ``selected``; ``written`` counts the values handed to the sink."""

    select: Callable[[int | None], bool]
    step: int = -1
    timestep: int | float | None = None
    selected: bool = False
    written: int = 0
    _seen: set = field(default_factory=set)

    def on_forward(self, module, args, kwargs) -> None:
        _, t = sample_and_timestep(module, args, kwargs)
        self.step += 1
        if t is None:
            self.timestep = None
        else:
            t = t.flatten()
            if not bool((t == t[0]).all()):
                raise ValueError(
                    f"stream needs one timestep per forward; got {t.tolist()} (capture() "
                    "handles mixed timesteps)"
                )
            self.timestep = timestep_value(t[0])
        self.selected = self.select(self.timestep)

    def is_selected(self) -> bool:
        return self.selected


def _selector(timesteps: Selection) -> Callable[[int | None], bool]:
    if timesteps is None:
        return lambda t: True
    if callable(timesteps):
        return lambda t: t is not None and bool(timesteps(t))
    wanted = {timestep_value(t) for t in timesteps}
    return lambda t: t in wanted


@contextmanager
def stream(
    probe,
    names,
    sink,
    timesteps: Selection = None,
    reduce: Callable[[str, torch.Tensor], Any] | None = None,
    guidance: str | None = None,
) -> Iterator[StreamState]:
    """Stream hook points to ``sink`` over every forward run inside the block.

    Parameters
    ----------
    probe : the :class:`~diffusion_circuits.probe.Probe` of the model the loop calls.
    names : hook-point filter, as for ``Probe.capture``.
    sink : anything with ``write(name, step, timestep, value)`` and ``flush()``
        (``MemorySink``, ``DiskSink``); flushed on exit, also after an exception.
    timesteps : None (every forward), a collection of timesteps, or a predicate
        ``int t -> bool``.
    reduce : optional ``(name, tensor) -> value`` applied before writing (e.g. a mean
        over batch and positions); a number or dict of numbers becomes table rows.
    guidance : None, ``"uncond"`` or ``"cond"``: only that half of a CFG batch.

    Yields
    ------
    StreamState
    """
    if guidance is not None:
        guidance_half(torch.empty(2), guidance)  # a bad value fails before any forward
    state = StreamState(_selector(timesteps))

    def store(name: str, tensor: torch.Tensor) -> None:
        if guidance is not None:
            tensor = tensor[guidance_half(tensor, guidance)]
        value = tensor if reduce is None else reduce(name, tensor)
        sink.write(name, state.step, state.timestep, value)
        state.written += 1

    entries = probe._recorders(probe.resolve(names), store, active=state.is_selected)
    handle = probe.model.register_forward_pre_hook(state.on_forward, with_kwargs=True)
    try:
        with probe._entries(entries):
            yield state
    finally:
        handle.remove()
        sink.flush()
