"""The probe: named hook points, capture and scoped interventions on any diffusers model.

Family adapters (``probe.adapters``): ``UNet2DModel``, ``UNet2DConditionModel``,
``DiTTransformer2DModel``, ``PixArtTransformer2DModel``, ``SD3Transformer2DModel``,
``FluxTransformer2DModel``; any other model is named module by module
(``GenericAdapter``). Nothing here asks which family it holds; the structural queries
are :class:`~diffusion_circuits.probe.structure.ModelStructure`'s.

Every context manager here removes what it added, and restores the attention processors
it replaced, in ``finally``: after an exception the model is exactly as it was. Capture
and intervene nest in any order; a capture always records the intervened activations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from diffusion_circuits.probe.adapters import adapter_for, build_name_map
from diffusion_circuits.probe.cache import ActivationCache, guidance_half
from diffusion_circuits.probe.edits import HookFn, hook_entry, intervention_entry
from diffusion_circuits.probe.hooks import Entry, registry_for
from diffusion_circuits.probe.names import NamesFilter
from diffusion_circuits.probe.replay import BlockRecord, replayed
from diffusion_circuits.probe.structure import ModelStructure

__all__ = ["Probe", "ActivationCache", "run_with_cache"]

Reduce = Callable[[str, torch.Tensor], Any]
Hooks = Iterable[tuple[NamesFilter, HookFn]]


class Probe(ModelStructure):
    """Hook points, capture and interventions of ``model``, any diffusers model.

    The names are discovered from the model's modules by its family's adapter, or by
    ``adapter`` (e.g. ``GenericAdapter()``: every submodule by its path), see
    ``probe.adapters``; nothing is attached to the model until a context is entered.
    ``probe.unet`` is a deprecated alias of ``probe.model``.

    Examples
    --------
    >>> import torch
    >>> from diffusers import UNet2DModel
    >>> from diffusion_circuits.probe import ZeroAblation
    >>> _ = torch.manual_seed(0)
    >>> unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
    ...                    layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
    ...                    up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=4)
    >>> probe = Probe(unet)
    >>> probe.attention_heads
    {'mid.attn.0': 2, 'up.0.attn.0': 2, 'up.0.attn.1': 2}
    >>> x_t, t = torch.randn(3, 3, 8, 8), torch.tensor([10, 500, 900])
    >>> eps, cache = probe.run_with_cache(x_t, t, names="up.0.attn.*.pattern")
    >>> sorted(cache), tuple(cache["up.0.attn.0.pattern"].shape)
    (['up.0.attn.0.pattern', 'up.0.attn.1.pattern'], (3, 2, 16, 16))
    >>> with torch.no_grad(), probe.intervene(ZeroAblation("mid")):
    ...     ablated = unet(x_t, t).sample
    >>> bool((ablated != eps).any())
    True
    """

    def __init__(self, model: nn.Module, adapter=None):
        self.model = model  # any supported model, U-Net or transformer
        self.adapter = adapter_for(model) if adapter is None else adapter
        self._map = build_name_map(model, self.adapter)
        self._registry = registry_for(model)

    @property
    def unet(self) -> nn.Module:
        """Deprecated alias of :attr:`model`."""
        warnings.warn("Probe.unet is deprecated; use Probe.model", DeprecationWarning, stacklevel=2)
        return self.model

    # ---- capture -----------------------------------------------------------------------
    @contextmanager
    def capture(
        self,
        names: NamesFilter = None,
        reduce: Reduce | None = None,
        guidance: str | None = None,
        grad: bool = False,
    ) -> Iterator[ActivationCache]:
        """Record hook-point activations into a dict while the block runs.

        Parameters
        ----------
        names : None (everything), a name, a glob (``"down.*.attn.*"``), a list of those, or
            a predicate ``name -> bool``.
        reduce : optional ``(name, tensor) -> object``, stored instead of the (detached)
            tensor, so that only summaries are kept. A hook point reached again in the same
            block (a second forward) overwrites its entry.
        guidance : None (the whole batch), ``"uncond"`` or ``"cond"``: keep only that half
            of a classifier-free-guidance batch (``[uncond, cond]``, as diffusers stacks it),
            before any ``reduce``. Open two captures to keep both halves apart.
        grad : keep the tensors in the autograd graph (not detached, ``retain_grad``), so
            that after ``backward()`` ``cache[name].grad`` holds the gradient there
            (attribution patching). Attention sites then take the explicit attention path
            (equal to the fused kernel within float error) so that they are in the graph.

        Returns
        -------
        ActivationCache, filled as the forward runs.
        """
        selected = self._map.resolve(names)
        cache = ActivationCache()
        if guidance is not None:
            guidance_half(torch.empty(2), guidance)  # a bad value fails before any forward

        def store(name: str, tensor: torch.Tensor) -> None:
            t = self._registry.timesteps
            if guidance is not None:
                tensor = tensor[guidance_half(tensor, guidance)]
                t = None if t is None else t[guidance_half(t, guidance)]
            cache.timesteps = t
            if grad and tensor.requires_grad:
                tensor.retain_grad()
            cache[name] = tensor if reduce is None else reduce(name, tensor)

        entries = self._recorders(selected, store, detach=not grad)
        if grad:  # an (identity) edit on a site puts its attention on the explicit path,
            # where the sites are computed inside the graph
            sites = [n for n in selected if self._map.points[n].kind == "site"]
            entries += [Entry(n, self._map.points[n], lambda x: x, edit=True) for n in sites]
        with self._entries(entries):
            yield cache

    def _recorders(
        self,
        selected: list[str],
        store: Callable[[str, torch.Tensor], None],
        detach: bool = True,
        active: Callable[[], bool] | None = None,
    ) -> list[Entry]:
        """Recorder entries handing ``(name, tensor)`` of each selected hook point to ``store``."""

        def recorder(name: str) -> Callable[[torch.Tensor], None]:
            # the model edits some outputs in place after the hook (see HookPoint.copy)
            copy = self._map.points[name].copy

            def record(tensor: torch.Tensor) -> None:
                if not detach:  # a clone would be off the graph: no gradient reaches it
                    store(name, tensor)
                    return
                tensor = tensor.detach()
                store(name, tensor.clone() if copy else tensor)

            return record

        return [
            Entry(n, self._map.points[n], recorder(n), edit=False, active=active) for n in selected
        ]

    def stream(
        self,
        names: NamesFilter,
        sink,
        timesteps: Iterable[int] | Callable[[int], bool] | None = None,
        reduce: Reduce | None = None,
        guidance: str | None = None,
    ):
        """Context manager streaming hook points to ``sink`` over a sampling loop.

        See :func:`diffusion_circuits.probe.streaming.stream` (``timesteps`` selects the
        steps: a collection or a predicate; ``reduce`` summarises on the fly).
        """
        from diffusion_circuits.probe.streaming import stream  # it drives this Probe

        return stream(self, names, sink, timesteps, reduce=reduce, guidance=guidance)

    def run_with_cache(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor | int,
        names: NamesFilter = None,
        reduce: Reduce | None = None,
        **forward_kwargs,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """One forward under ``torch.no_grad`` with capture: ``(eps, cache)``.

        ``t`` is passed as ``timestep=``; conditioning goes in ``forward_kwargs`` (e.g.
        ``encoder_hidden_states=`` for a conditional U-Net or PixArt, ``class_labels=``
        for DiT).
        """
        with torch.no_grad(), self.capture(names, reduce=reduce) as cache:
            eps = self.model(x_t, timestep=t, **forward_kwargs).sample
        return eps, cache

    def reference_means(
        self,
        x_ts: torch.Tensor,
        t: torch.Tensor | int,
        names: NamesFilter = None,
        batch_size: int | None = None,
        **forward_kwargs,
    ) -> dict[str, torch.Tensor]:
        """Per-hook means over a reference batch, for :class:`MeanAblation` and friends.

        Pass the reference images noised to the timestep you will intervene at: means
        from another t are a different distribution. ``batch_size`` splits the forward
        into chunks (bounded memory); the result is the mean over all items. Tensors in
        ``forward_kwargs`` with one row per reference image (e.g. ``encoder_hidden_states``)
        are chunked alike.

        Returns
        -------
        dict ``name -> mean over items`` (one item's shape).
        """
        if len(x_ts) == 0:
            raise ValueError("reference_means needs at least one reference image")
        t = torch.as_tensor(t)
        size = batch_size or len(x_ts)
        sums: dict[str, torch.Tensor] = {}
        for start in range(0, len(x_ts), size):
            chunk = slice(start, start + size)
            t_chunk = t[chunk] if t.ndim == 1 and len(t) == len(x_ts) else t
            kwargs = {
                k: v[chunk] if isinstance(v, torch.Tensor) and len(v) == len(x_ts) else v
                for k, v in forward_kwargs.items()
            }
            _, cache = self.run_with_cache(
                x_ts[chunk], t_chunk, names, reduce=lambda n, x: x.double().sum(dim=0), **kwargs
            )
            for name, value in cache.items():
                sums[name] = sums[name] + value if name in sums else value
        return {name: (value / len(x_ts)).to(x_ts.dtype) for name, value in sums.items()}

    # ---- interventions -----------------------------------------------------------------
    @contextmanager
    def record(self) -> Iterator[BlockRecord]:
        """Record the module outputs of the clean forward run inside the block.

        Pass the record to :meth:`intervene` (``replay=``) to skip, in intervened runs of
        the same input, every module that finishes before the first intervened one.

        >>> with probe.record() as clean:                       # doctest: +SKIP
        ...     base = unet(x_t, t).sample
        >>> with probe.intervene(HeadAblation("up.0.attn.0", 3), replay=clean):  # doctest: +SKIP
        ...     ablated = unet(x_t, t).sample                   # same as without replay
        """
        if not self._map.forward_ordered:
            raise ValueError(
                f"replay needs hook points in forward order; {type(self.adapter).__name__} "
                "cannot promise it"
            )
        with BlockRecord(self._map).recording(self.model) as record:
            yield record

    @contextmanager
    def intervene(
        self, *interventions, replay: BlockRecord | None = None, guidance: str | None = None
    ) -> Iterator[None]:
        """Apply interventions (composable, in the order given) while the block runs.

        Each is an object with ``.name`` (the hook point) and ``__call__(tensor, name)``
        returning the replacement tensor; attention interventions also carry ``.site``.
        With ``replay`` (from :meth:`record`, same input and autocast state), modules
        upstream of every intervention return their recorded outputs instead of running;
        the result is the same (a capture then misses the hook points inside replayed
        modules: they do not run). With ``guidance`` (``"uncond"`` or ``"cond"``) each
        intervention sees and edits only that half of a classifier-free-guidance batch; the
        other half passes unchanged (for an attention site: through the explicit attention
        path, equal to the fused kernel within float error). Everything is undone on exit, also after an exception.
        """
        if guidance is not None:
            guidance_half(torch.empty(2), guidance)  # a bad value fails before any forward
        entries = [
            intervention_entry(self._map, self._registry, intervention, guidance)
            for intervention in interventions
        ]
        with self._entries(entries), ExitStack() as stack:
            if replay is not None:
                stack.enter_context(replayed(self.model, replay, [e.point for e in entries]))
            yield

    # ---- plain hook functions ----------------------------------------------------------
    @contextmanager
    def hooks(self, fwd_hooks: Hooks, guidance: str | None = None) -> Iterator[None]:
        """TransformerLens-style hooks: ``(name or filter, fn)`` pairs, active in the block.

        ``fn(tensor, hook=HookContext)`` gets the activation and ``hook.name`` /
        ``hook.timestep`` (the forward's per-item timesteps); it returns a replacement
        tensor, or None to leave the activation as it is. Removed on exit, also after an
        exception. A hook on an attention site puts that attention on the explicit path.
        """
        entries = [
            hook_entry(self._map, self._registry, name, fn, guidance)
            for names, fn in fwd_hooks
            for name in self._map.resolve(names)
        ]
        with self._entries(entries):
            yield

    def run_with_hooks(
        self, x_t: torch.Tensor, t: torch.Tensor | int, fwd_hooks: Hooks = (), **forward_kwargs
    ) -> torch.Tensor:
        """One forward with :meth:`hooks` (gradients as the caller's mode): the output."""
        with self.hooks(fwd_hooks):
            return self.model(x_t, timestep=t, **forward_kwargs).sample

    @contextmanager
    def _entries(self, entries: Iterable[Entry]) -> Iterator[None]:
        added: list[Entry] = []
        try:
            with self._registry.tracking_timesteps(self.model):
                for entry in entries:
                    added.append(self._registry.add(entry))
                yield
        finally:
            self._registry.remove(added)


def run_with_cache(
    unet: nn.Module,
    x_t: torch.Tensor,
    t: torch.Tensor | int,
    names: NamesFilter = None,
    reduce: Reduce | None = None,
    **forward_kwargs,
) -> tuple[torch.Tensor, ActivationCache]:
    """One forward of ``unet`` with capture: ``(eps, cache)``; see :meth:`Probe.run_with_cache`."""
    return Probe(unet).run_with_cache(x_t, t, names, reduce=reduce, **forward_kwargs)
