"""The probe: named hook points, capture and scoped interventions on any ``UNet2DModel``.

Every context manager here removes what it added, and restores the attention processors
it replaced, in ``finally``: after an exception the model is exactly as it was. Capture
and intervene nest in any order; a capture always records the intervened activations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from diffusion_circuits.probe.hooks import Entry, registry_for
from diffusion_circuits.probe.names import NamesFilter, build_name_map
from diffusion_circuits.probe.replay import BlockRecord, replayed

__all__ = ["Probe", "ActivationCache", "run_with_cache"]

Reduce = Callable[[str, torch.Tensor], Any]


class ActivationCache(dict):
    """``hook name -> tensor`` (or its reduction); ``<attn>.out`` reads ``<attn>``.

    ``timesteps`` holds the timestep of each batch item of the last forward (a 1-d
    tensor), so cached activations keep their time.
    """

    timesteps: torch.Tensor | None = None

    @staticmethod
    def _alias(key):
        return key[: -len(".out")] if isinstance(key, str) and key.endswith(".out") else key

    def __missing__(self, key):
        alias = self._alias(key)
        if alias != key and dict.__contains__(self, alias):
            return self[alias]
        raise KeyError(key)

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or dict.__contains__(self, self._alias(key))

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


class Probe:
    """Hook points, capture and interventions of ``unet`` (any diffusers ``UNet2DModel``).

    The names are discovered from the model's modules (see ``probe.names``); nothing is
    attached to the model until a context is entered.

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

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self._map = build_name_map(unet)
        self._registry = registry_for(unet)

    # ---- structure ---------------------------------------------------------------------
    @property
    def hook_points(self) -> list[str]:
        """Every canonical hook-point name, in forward order."""
        return self._map.hook_points

    @property
    def attention_heads(self) -> dict[str, int]:
        """Attention hook point -> number of heads."""
        return dict(self._map.attention_heads)

    @property
    def layer_groups(self) -> dict[str, list[str]]:
        """The paper's seven layer groups -> their hook points (forward order)."""
        return self._map.layer_groups()

    @property
    def resnets(self) -> list[str]:
        """The ResNet-block hook points (``*.resnet.*``)."""
        return [n for n in self._map.points if ".resnet." in n]

    def group_of(self, name: str) -> str | None:
        """Layer group of a hook point (None for ``time_emb``)."""
        return self._map.points[self._map.canonical(name)].group

    def module_path(self, name: str) -> str:
        """Dotted path of the diffusers module producing ``name`` (``unet.get_submodule``)."""
        return self._map.module_path(name)

    def skip_source(self, name: str) -> str:
        """The hook point whose output is skip ``name`` (e.g. ``skip.0`` -> ``conv_in``)."""
        return self._map.points[self._map.canonical(name)].source

    def resolve(self, names: NamesFilter = None) -> list[str]:
        """Hook points selected by None (all), a name, a glob, a list or a predicate."""
        return self._map.resolve(names)

    # ---- capture -----------------------------------------------------------------------
    @contextmanager
    def capture(
        self, names: NamesFilter = None, reduce: Reduce | None = None
    ) -> Iterator[ActivationCache]:
        """Record hook-point activations into a dict while the block runs.

        Parameters
        ----------
        names : None (everything), a name, a glob (``"down.*.attn.*"``), a list of those, or
            a predicate ``name -> bool``.
        reduce : optional ``(name, tensor) -> object``, stored instead of the (detached)
            tensor, so that only summaries are kept. A hook point reached again in the same
            block (a second forward) overwrites its entry.

        Returns
        -------
        ActivationCache, filled as the forward runs.
        """
        selected = self._map.resolve(names)
        cache = ActivationCache()

        def recorder(name: str) -> Callable[[torch.Tensor], None]:
            # UNet2DModel adds skip samples to conv_out's output in place
            copy = name == "conv_out"

            def store(tensor: torch.Tensor) -> None:
                tensor = tensor.detach()
                if copy:
                    tensor = tensor.clone()
                cache[name] = tensor if reduce is None else reduce(name, tensor)

            return store

        def timesteps(module, args, kwargs) -> None:
            sample = args[0] if args else kwargs["sample"]
            t = args[1] if len(args) > 1 else kwargs["timestep"]
            t = torch.as_tensor(t).detach().flatten()
            cache.timesteps = t.expand(sample.shape[0]) if t.numel() == 1 else t

        entries = [Entry(n, self._map.points[n], recorder(n), edit=False) for n in selected]
        with self._entries(entries):
            handle = self.unet.register_forward_pre_hook(timesteps, with_kwargs=True)
            try:
                yield cache
            finally:
                handle.remove()

    def run_with_cache(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor | int,
        names: NamesFilter = None,
        reduce: Reduce | None = None,
        **forward_kwargs,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """One forward under ``torch.no_grad`` with capture: ``(eps, cache)``."""
        with torch.no_grad(), self.capture(names, reduce=reduce) as cache:
            eps = self.unet(x_t, t, **forward_kwargs).sample
        return eps, cache

    def reference_means(
        self,
        x_ts: torch.Tensor,
        t: torch.Tensor | int,
        names: NamesFilter = None,
        batch_size: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-hook means over a reference batch, for :class:`MeanAblation` and friends.

        Pass the reference images noised to the timestep you will intervene at: means
        from another t are a different distribution. ``batch_size`` splits the forward
        into chunks (bounded memory); the result is the mean over all items.

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
            _, cache = self.run_with_cache(
                x_ts[chunk], t_chunk, names, reduce=lambda n, x: x.double().sum(dim=0)
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
        with BlockRecord(self._map).recording(self.unet) as record:
            yield record

    @contextmanager
    def intervene(self, *interventions, replay: BlockRecord | None = None) -> Iterator[None]:
        """Apply interventions (composable, in the order given) while the block runs.

        Each is an object with ``.name`` (the hook point) and ``__call__(tensor, name)``
        returning the replacement tensor; attention interventions also carry ``.site``.
        With ``replay`` (from :meth:`record`, same input and autocast state), modules
        upstream of every intervention return their recorded outputs instead of running;
        the result is the same (a capture then misses the hook points inside replayed
        modules: they do not run). Everything is undone on exit, also after an exception.
        """
        entries = [self._edit(intervention) for intervention in interventions]
        with self._entries(entries), ExitStack() as stack:
            if replay is not None:
                stack.enter_context(replayed(self.unet, replay, [e.point for e in entries]))
            yield

    def _edit(self, intervention) -> Entry:
        name = getattr(intervention, "name", None)
        if not isinstance(name, str) or not callable(intervention):
            raise ValueError(
                f"an intervention needs a .name (hook point) and __call__(tensor, name); got {intervention!r}"
            )
        name = self._map.canonical(name)
        site = getattr(intervention, "site", None)
        if site is None:
            key = name
        elif name in self._map.attention_heads:
            key = f"{name}.{site}"
            head = getattr(intervention, "head", None)
            if head is not None and head >= self._map.attention_heads[name]:
                raise ValueError(
                    f"{intervention!r}: head {head} out of range, {name} has "
                    f"{self._map.attention_heads[name]} heads"
                )
        else:
            raise ValueError(
                f"{intervention!r} needs an attention hook point, one of {list(self._map.attention_heads)}"
            )
        # logits are no hook point, but live in the same attention processor
        point = self._map.points[f"{name}.pattern" if site == "logits" else key]

        def edit(tensor: torch.Tensor) -> torch.Tensor:
            out = intervention(tensor, key)
            if not isinstance(out, torch.Tensor) or out.shape != tensor.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"{intervention!r} returned {got} at {key}; expected shape {tuple(tensor.shape)}"
                )
            return out

        return Entry(key, point, edit, edit=True)

    @contextmanager
    def _entries(self, entries: Iterable[Entry]) -> Iterator[None]:
        added: list[Entry] = []
        try:
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
