"""The probe: named hook points, capture and scoped interventions on any ``UNet2DModel``.

Hooks are global state on the model, so every context manager here removes what it
added, and restores the attention processors it replaced, in ``finally``: after an
exception the model is exactly as it was. Intervention hooks are prepended, so a capture
always records the intervened activations, whichever context is outer.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from diffusion_circuits.probe.attention import RecordingAttnProcessor
from diffusion_circuits.probe.interventions import Intervention
from diffusion_circuits.probe.names import ATTENTION_SITES, build_name_map

__all__ = ["Probe", "run_with_cache", "NamesFilter"]

NamesFilter = str | Sequence[str] | Callable[[str], bool] | None


class Probe:
    """Hook points of ``unet`` (any diffusers ``UNet2DModel``), discovered from its modules."""

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self._map = build_name_map(unet)
        self._processors: dict[str, RecordingAttnProcessor] = {}

    # ---- structure -------------------------------------------------------------------
    @property
    def hook_points(self) -> list[str]:
        return list(self._map.hook_points)

    @property
    def attention_heads(self) -> dict[str, int]:
        return dict(self._map.attention_heads)

    @property
    def layer_groups(self) -> dict[str, list[str]]:
        return self._map.layer_groups()

    @property
    def resnets(self) -> list[str]:
        return [n for n in self._map.modules if ".resnet." in n]

    def group_of(self, name: str) -> str | None:
        return self._map.groups.get(self._canonical(name))

    def module_path(self, name: str) -> str:
        """The diffusers dotted module path behind a hook name."""
        name = self._canonical(name)
        if name.startswith("skip."):
            return f"skip tuple entry produced by {self.module_path(self.skip_source(name))}"
        base, site = self._split_site(name)
        path = self._map.paths[base]
        return f"{path} ({site})" if site else path

    def skip_source(self, name: str) -> str:
        return self._map.skip_sources[int(name.split(".")[1])]

    # ---- names -----------------------------------------------------------------------
    def _split_site(self, name: str) -> tuple[str, str | None]:
        base, _, site = name.rpartition(".")
        if site in ATTENTION_SITES and base in self._map.attention_heads:
            return base, site
        return name, None

    def _canonical(self, name: str) -> str:
        if name.endswith(".out") and name[:-4] in self._map.attention_heads:
            name = name[:-4]
        if name not in self._map.groups and name not in self._map.modules:
            close = difflib.get_close_matches(name, self._map.hook_points, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown hook point {name!r}{hint}")
        return name

    def resolve(self, names: NamesFilter = None) -> list[str]:
        """Hook names selected by a name, a glob, a list of either, or a predicate."""
        if names is None:
            return self.hook_points
        if callable(names):
            return [n for n in self.hook_points if names(n)]
        patterns = [names] if isinstance(names, str) else list(names)
        selected: list[str] = []
        for pattern in patterns:
            if any(ch in pattern for ch in "*?["):
                matches = fnmatch.filter(self.hook_points, pattern)
                if not matches:
                    raise ValueError(f"no hook point matches {pattern!r}")
                selected.extend(matches)
            else:
                selected.append(self._canonical(pattern))
        order = {n: i for i, n in enumerate(self.hook_points)}
        return sorted(set(selected), key=order.__getitem__)

    # ---- plumbing --------------------------------------------------------------------
    def _processor(self, attn_name: str) -> RecordingAttnProcessor:
        if attn_name not in self._processors:
            module = self._map.modules[attn_name]
            processor = RecordingAttnProcessor(module.processor, attn_name)
            module.set_processor(processor)
            self._processors[attn_name] = processor
        return self._processors[attn_name]

    def _release(self, attn_name: str) -> None:
        processor = self._processors.get(attn_name)
        if processor is not None and not processor.active:
            self._map.modules[attn_name].set_processor(processor.original)
            del self._processors[attn_name]

    def _up_block(self, skip: str) -> tuple[nn.Module, int]:
        b, j = self._map.skip_consumers[int(skip.split(".")[1])]
        return self.unet.up_blocks[b], j

    # ---- capture ---------------------------------------------------------------------
    @contextmanager
    def capture(
        self, names: NamesFilter = None, reduce: Callable[[str, torch.Tensor], Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Record hook-point outputs into a dict while the block runs.

        ``reduce(name, tensor)`` is stored instead of the tensor when given (streaming
        summaries keep memory bounded). A later forward in the same block overwrites.
        """
        cache: dict[str, Any] = {}

        def store(name: str, tensor: torch.Tensor) -> None:
            tensor = tensor.detach()
            cache[name] = reduce(name, tensor) if reduce is not None else tensor

        handles, sites_by_attn = [], {}
        try:
            for name in self.resolve(names):
                base, site = self._split_site(name)
                if site is not None:
                    sites_by_attn.setdefault(base, set()).add(site)
                elif name.startswith("skip."):
                    block, j = self._up_block(name)
                    handles.append(
                        block.register_forward_pre_hook(
                            lambda m, args, kwargs, name=name, j=j: store(name, args[1][j]),
                            with_kwargs=True,
                        )
                    )
                else:
                    handles.append(
                        self._map.modules[name].register_forward_hook(
                            lambda m, args, output, name=name: store(name, output)
                        )
                    )
            for attn_name, sites in sites_by_attn.items():
                self._processor(attn_name).recorders.append((sites, store))
            yield cache
        finally:
            for handle in handles:
                handle.remove()
            for attn_name in sites_by_attn:
                processor = self._processors.get(attn_name)
                if processor is not None:
                    processor.recorders = [r for r in processor.recorders if r[1] is not store]
                    self._release(attn_name)

    def run_with_cache(
        self, x_t: torch.Tensor, t: torch.Tensor, names: NamesFilter = None, **kwargs
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        with torch.no_grad(), self.capture(names, **kwargs) as cache:
            eps = self.unet(x_t, t).sample
        return eps, cache

    def reference_means(
        self, x_t: torch.Tensor, t: torch.Tensor, names: NamesFilter = None
    ) -> dict[str, torch.Tensor]:
        """Per-hook means over a reference batch (pass x_t at the timestep you intervene at)."""
        _, cache = self.run_with_cache(x_t, t, names, reduce=lambda n, x: x.mean(dim=0))
        return cache

    # ---- interventions ---------------------------------------------------------------
    @contextmanager
    def intervene(self, *interventions: Intervention) -> Iterator[None]:
        """Apply interventions while the block runs; everything is undone on exit."""
        handles, edited = [], []
        try:
            for intervention in interventions:
                name = self._canonical(intervention.name)
                base, site = self._split_site(name)
                if intervention.site != "output" or site is not None:
                    target = intervention.site if intervention.site != "output" else site
                    if target not in ("logits", "pattern", "z"):
                        raise ValueError(f"cannot intervene on attention site {target!r} of {base}")
                    processor = self._processor(base)
                    getattr(processor, f"{'logit' if target == 'logits' else target}_edits").append(
                        lambda tensor, iv=intervention, n=name: iv(tensor, n)
                    )
                    edited.append(base)
                elif name.startswith("skip."):
                    block, j = self._up_block(name)

                    def replace_skip(module, args, kwargs, iv=intervention, n=name, j=j):
                        skips = list(args[1])
                        skips[j] = iv(skips[j], n)
                        return (args[0], tuple(skips), *args[2:]), kwargs

                    handles.append(
                        block.register_forward_pre_hook(
                            replace_skip, with_kwargs=True, prepend=True
                        )
                    )
                else:
                    handles.append(
                        self._map.modules[name].register_forward_hook(
                            lambda m, args, output, iv=intervention, n=name: iv(output, n),
                            prepend=True,
                        )
                    )
            yield
        finally:
            for handle in handles:
                handle.remove()
            for base in edited:
                processor = self._processors.get(base)
                if processor is not None:
                    processor.logit_edits.clear()
                    processor.pattern_edits.clear()
                    processor.z_edits.clear()
                    self._release(base)


def run_with_cache(
    unet: nn.Module, x_t: torch.Tensor, t: torch.Tensor, names: NamesFilter = None, **kwargs
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One forward of ``unet`` with capture: ``(eps, cache)``."""
    return Probe(unet).run_with_cache(x_t, t, names, **kwargs)
