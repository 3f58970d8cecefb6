"""Replay of a clean forward's module outputs, so intervened runs skip the unchanged prefix.

An intervention at one hook point cannot change anything computed before it: every
module that finishes before the first intervened one gives, for the same input, the same
tensors bit for bit. :class:`BlockRecord` keeps those outputs from one clean forward and
:func:`replayed` makes the recorded modules return them instead of recomputing, so a
sweep of many interventions on the same batch pays only for the part of the network
downstream of each intervention (most of the cost of a U-Net sits in its decoder, where
most interventions are).

Used through :meth:`Probe.record` and ``Probe.intervene(..., replay=record)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from diffusion_circuits.probe.calls import sample_and_timestep, tensor_inputs
from diffusion_circuits.probe.names import HookPoint, NameMap

__all__ = ["BlockRecord", "replayed"]


def _clone(value):
    # Downstream code owns what a module returns; hand it a copy so the record stays clean.
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    return value


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )


class BlockRecord:
    """Outputs of every module hook point during one clean forward, with its inputs.

    ``inputs`` holds every tensor the forward received (sample, timestep, and e.g.
    ``encoder_hidden_states``): a replayed run must receive the same ones.
    """

    def __init__(self, name_map: NameMap):
        self._map = name_map
        self.outputs: dict[str, object] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        self.sample: torch.Tensor | None = None
        self.timestep: torch.Tensor | None = None

    def _modules(self) -> dict[str, nn.Module]:
        return {
            name: point.module
            for name, point in self._map.points.items()
            if point.kind in ("module", "block")
        }

    @contextmanager
    def recording(self, unet: nn.Module) -> Iterator[BlockRecord]:
        handles = []

        def store_input(module, args, kwargs):
            sample, timestep = sample_and_timestep(module, args, kwargs)
            self.sample = sample.detach().clone()
            self.timestep = None if timestep is None else timestep.detach().clone()
            self.inputs = {
                k: v.detach().clone() for k, v in tensor_inputs(module, args, kwargs).items()
            }

        def store(name: str):
            def hook(module, args, output):
                self.outputs[name] = _clone(output)

            return hook

        try:
            handles.append(unet.register_forward_pre_hook(store_input, with_kwargs=True))
            # Registered after the probe's own hooks would see edited outputs: record clean runs.
            seen: set[int] = set()
            for name, module in self._modules().items():
                if id(module) not in seen:  # a block's output is one record, however named
                    seen.add(id(module))
                    handles.append(module.register_forward_hook(store(name)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def replayable(self, points: Iterable[HookPoint]) -> list[str]:
        """Recorded modules that finish before every module the given points touch."""
        modules = self._modules()
        order = list(modules)
        first = len(order)
        for point in points:
            touched = set(point.module.modules())  # the module and all it contains
            # ... and every module containing it (e.g. the resnet around a `.residual`
            # conv2): none of them can have finished before the point is reached
            first = min(
                [
                    first,
                    *(
                        i
                        for i, n in enumerate(order)
                        if modules[n] in touched
                        or any(m is point.module for m in modules[n].modules())
                    ),
                ],
            )
        before = order[:first]
        # Only outermost ones: a replayed module's children do not run at all.
        inner = {
            id(sub)
            for name in before
            for sub in modules[name].modules()
            if sub is not modules[name]
        }
        return [n for n in before if id(modules[n]) not in inner and n in self.outputs]


@contextmanager
def replayed(
    unet: nn.Module, record: BlockRecord, points: Iterable[HookPoint]
) -> Iterator[list[str]]:
    """Make the modules upstream of ``points`` return ``record``'s outputs; undo on exit.

    Raises ValueError when the forward run meanwhile gets another input than the one
    recorded: the replayed outputs would belong to a different batch.
    """
    if record.sample is None:
        raise ValueError("the record is empty: run a clean forward inside probe.record() first")
    names = record.replayable(points)
    modules = record._modules()
    patched: list[tuple[nn.Module, object]] = []

    def check_input(module, args, kwargs):
        if not _same(tensor_inputs(module, args, kwargs), record.inputs):
            raise ValueError(
                "replay was recorded for another input (x_t, timestep or conditioning differ)"
            )

    handle = unet.register_forward_pre_hook(check_input, with_kwargs=True)
    try:
        for name in names:
            module, output = modules[name], record.outputs[name]
            # Someone (e.g. accelerate) may already have wrapped forward on the instance.
            patched.append((module, vars(module).get("forward")))
            # An instance attribute shadows the class's forward; nn.Module.__call__ still
            # runs the module's hooks around it, so interventions hooked there still apply.
            module.forward = lambda *args, _output=output, **kwargs: _clone(_output)
        yield names
    finally:
        handle.remove()
        for module, previous in patched:
            if previous is None:
                del module.forward
            else:
                module.forward = previous
