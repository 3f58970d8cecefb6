"""The hooks behind capture and interventions: one registry per model.

Hooks are global state on the model. Every Probe of the same model shares one
:class:`HookRegistry`, so there is at most one torch hook per module and one recording
processor per attention, whatever the nesting of capture / intervene contexts. A context
adds *entries* (an edit ``tensor -> tensor`` or a recorder ``tensor -> None``) for hook
points and removes exactly those entries on exit; the torch hook of a module is removed,
and an attention's original processor object restored, as soon as no entry needs it.

At each hook point all edits run first, in the order they were added, then all
recorders: a capture records the intervened activation whichever context is outer.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from diffusion_circuits.probe.attention import RecordingAttnProcessor
from diffusion_circuits.probe.calls import sample_and_timestep
from diffusion_circuits.probe.names import HookPoint

__all__ = ["Entry", "HookRegistry", "registry_for"]

_REGISTRIES: weakref.WeakKeyDictionary[nn.Module, HookRegistry] = weakref.WeakKeyDictionary()


def registry_for(model: nn.Module) -> HookRegistry:
    """The registry shared by every Probe of ``model``."""
    if model not in _REGISTRIES:
        _REGISTRIES[model] = HookRegistry()
    return _REGISTRIES[model]


@dataclass(eq=False)
class Entry:
    """One edit (``fn(tensor) -> tensor``) or recorder (``fn(tensor) -> None``)."""

    key: str  # hook-point name, or "<attn>.logits" for logit edits
    point: HookPoint
    fn: Callable[[torch.Tensor], torch.Tensor | None]
    edit: bool
    # None: always on; else asked before each use (a streamed capture skips unselected
    # timesteps this way, and the attention processor then computes nothing for it)
    active: Callable[[], bool] | None = None

    def on(self) -> bool:
        return self.active is None or self.active()


class HookRegistry:
    """Entries per hook point, and the torch hooks / processors they need."""

    def __init__(self) -> None:
        self._entries: dict[str, list[Entry]] = {}
        # module -> (torch handle, {hook name: point}); names, not points, are unique
        # (every Probe of the model builds its own HookPoint objects)
        self._forward: dict[nn.Module, tuple[object, dict[str, HookPoint]]] = {}
        self._pre: dict[nn.Module, tuple[object, dict[str, HookPoint]]] = {}
        self._processors: dict[nn.Module, tuple[RecordingAttnProcessor, set[str]]] = {}
        # per-item timesteps of the forward running now, while some context tracks them
        self.timesteps: torch.Tensor | None = None

    # ---- applying ----------------------------------------------------------------------
    def has(self, key: str, edit: bool | None = None) -> bool:
        return any((edit is None or e.edit == edit) and e.on() for e in self._entries.get(key, ()))

    def apply(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Run the edits of ``key`` on ``value``, then its recorders; return the result."""
        entries = [e for e in self._entries.get(key, ()) if e.on()]
        for entry in entries:
            if entry.edit:
                value = entry.fn(value)
        for entry in entries:
            if not entry.edit:
                entry.fn(value)
        return value

    # ---- adding and removing -----------------------------------------------------------
    def add(self, entry: Entry) -> Entry:
        point = entry.point
        if point.kind == "site":
            self._attach_site(point, entry.key)
        elif point.kind == "skip":
            self._attach(self._pre, point, self._install_pre)
        else:
            self._attach(self._forward, point, self._install_forward)
        self._entries.setdefault(entry.key, []).append(entry)
        return entry

    def remove(self, entries: list[Entry]) -> None:
        """Remove ``entries``; drop every hook and processor no entry needs any more."""
        for entry in entries:
            listed = self._entries.get(entry.key, [])
            if entry in listed:
                listed.remove(entry)
            if not listed:
                self._entries.pop(entry.key, None)
        for table in (self._forward, self._pre):
            for module in list(table):
                handle, points = table[module]
                for name in [n for n in points if n not in self._entries]:
                    del points[name]
                if not points:
                    handle.remove()
                    del table[module]
        for module in list(self._processors):
            processor, keys = self._processors[module]
            keys.intersection_update(self._entries)
            if not keys:
                # someone else swapped processors meanwhile: theirs stays
                if module.processor is processor:
                    module.set_processor(processor.original)
                del self._processors[module]

    @contextmanager
    def tracking_timesteps(self, model: nn.Module) -> Iterator[None]:
        """Keep :attr:`timesteps` (one per batch item) up to date during each forward."""

        def hook(module, args, kwargs) -> None:
            sample, t = sample_and_timestep(module, args, kwargs)
            if t is not None:
                t = t.detach().flatten()
                self.timesteps = t.expand(sample.shape[0]) if t.numel() == 1 else t

        handle = model.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()
            self.timesteps = None  # no stale timesteps for the next context

    @property
    def empty(self) -> bool:
        return not (self._entries or self._forward or self._pre or self._processors)

    # ---- torch hooks -------------------------------------------------------------------
    @staticmethod
    def _attach(table, point: HookPoint, install) -> None:
        if point.module not in table:
            table[point.module] = (install(point.module), {})
        table[point.module][1].setdefault(point.name, point)

    def _install_forward(self, module: nn.Module):
        def hook(module, args, output):
            changed = False
            for point in self._forward[module][1].values():
                if point.kind == "block":  # (hidden, res_samples, ...): hidden is also last skip
                    value = self.apply(point.name, output[0])
                    if value is not output[0]:
                        output = (value, (*output[1][:-1], value), *output[2:])
                        changed = True
                    continue
                # a tuple output (FLUX / SD3 blocks: (text, image)): the point's element
                i = point.output_index if isinstance(output, tuple) else None
                current = output if i is None else output[i]
                if not isinstance(current, torch.Tensor):
                    self._not_a_tensor(point, current)
                    continue
                value = self.apply(point.name, current)
                if value is not current:
                    output = value if i is None else (*output[:i], value, *output[i + 1 :])
                    changed = True
            return output if changed else None

        return module.register_forward_hook(hook)

    def _not_a_tensor(self, point: HookPoint, value: object) -> None:
        """Recorders skip a module output that is no tensor; an edit cannot act on it."""
        if self.has(point.name, edit=True):
            raise ValueError(
                f"{point.name} ({point.path}) returns {type(value).__name__}, not a tensor: "
                "it cannot be edited"
            )

    def _install_pre(self, block: nn.Module):
        def hook(block, args, kwargs):
            from_kwargs = "res_hidden_states_tuple" in kwargs
            skips = kwargs["res_hidden_states_tuple"] if from_kwargs else args[1]
            edited = list(skips)
            for point in self._pre[block][1].values():
                edited[point.position] = self.apply(point.name, skips[point.position])
            if all(a is b for a, b in zip(edited, skips, strict=True)):
                return None
            if from_kwargs:
                return args, {**kwargs, "res_hidden_states_tuple": tuple(edited)}
            return (args[0], tuple(edited), *args[2:]), kwargs

        return block.register_forward_pre_hook(hook, with_kwargs=True)

    def _attach_site(self, point: HookPoint, key: str) -> None:
        module = point.module
        if module not in self._processors:
            processor = RecordingAttnProcessor(module.processor, point.attention, self)
            module.set_processor(processor)
            self._processors[module] = (processor, set())
        self._processors[module][1].add(key)
