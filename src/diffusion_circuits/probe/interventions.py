"""Interventions: small objects of one shape, ``intervention(tensor, name) -> tensor``.

``.name`` is the hook point an intervention targets; ``Probe.intervene`` calls it with
the activation there and the hook point's full name, and uses what it returns instead.
Most act on a hook point's output (any name of ``Probe.hook_points``, attention sites
included: a :class:`Patch` of ``up.0.attn.0.pattern`` patches the pattern). ``skip.k`` is
edited where the decoder consumes it, so the encoder path is untouched. Attention
interventions declare a ``site`` inside their attention: :class:`HeadAblation` acts on
``z`` (per-head ``pattern @ v`` before ``to_out``, [batch, heads, queries, head_dim]),
:class:`AttentionPerturbation` on ``logits`` or ``pattern`` ([batch, heads, queries, keys]).

Clean and intervened runs must see the same ``x_t`` (common random numbers): noise the
images once and pass the same tensor to both forwards.

Examples
--------
>>> import torch
>>> ZeroAblation("mid")(torch.ones(2, 3), "mid")
tensor([[0., 0., 0.],
        [0., 0., 0.]])
>>> MeanAblation("mid", torch.tensor([1.0, 2.0]))(torch.zeros(2, 2), "mid")
tensor([[1., 2.],
        [1., 2.]])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "Intervention",
    "ZeroAblation",
    "MeanAblation",
    "ResampleAblation",
    "FeatureScaling",
    "Patch",
    "HeadPatch",
    "SkipCut",
    "BottleneckCut",
    "HeadAblation",
    "AttentionPerturbation",
    "TokenAblation",
]

MODES = ("zero", "mean")
PERTURBATIONS = ("uniform", "logit_noise", "temperature")


class Intervention:
    """Base class, with the defaults of :class:`~diffusion_circuits.probe.protocol.InterventionLike`.

    ``site`` None: the hook point's own tensor; else a site of attention ``name``.
    ``head``: the head acted on, if one. ``uses_timestep``: called with ``timestep=``.
    ``active_at``: None (always on) or ``timesteps -> bool``.
    """

    site: str | None = None
    head: int | None = None
    uses_timestep: bool = False
    active_at: Callable[[torch.Tensor | None], bool] | None = None

    def __init__(self, name: str):
        if not isinstance(name, str):
            raise ValueError(f"an intervention's hook name must be a string, got {name!r}")
        self.name = name

    def __call__(self, tensor: torch.Tensor, name: str) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _mean_like(mean: torch.Tensor, tensor: torch.Tensor, what: str) -> torch.Tensor:
    """``mean`` (one item's shape, or with a leading 1) broadcast over ``tensor``'s batch."""
    mean = mean.to(device=tensor.device, dtype=tensor.dtype)
    if mean.shape not in (tensor.shape[1:], (1, *tensor.shape[1:])):
        raise ValueError(
            f"mean for {what} has shape {tuple(mean.shape)}; expected one item's shape "
            f"{tuple(tensor.shape[1:])}"
        )
    return mean.expand_as(tensor).clone()


def _check_mode(mode: str, mean: torch.Tensor | None) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "mean" and mean is None:
        raise ValueError("mode='mean' needs mean= (e.g. from Probe.reference_means)")


class ZeroAblation(Intervention):
    """Replace the activation by zeros."""

    def __call__(self, tensor, name):
        return torch.zeros_like(tensor)


class MeanAblation(Intervention):
    """Replace every item's activation by ``mean`` (one item's shape).

    Take ``mean`` over a reference set at the SAME timestep (``Probe.reference_means``):
    activations depend strongly on t.
    """

    def __init__(self, name: str, mean: torch.Tensor):
        super().__init__(name)
        self.mean = mean

    def __call__(self, tensor, name):
        return _mean_like(self.mean, tensor, name)


class ResampleAblation(Intervention):
    """Replace each item's activation by a random reference item's (same timestep).

    ``source_activations`` is [n_reference, *item shape], e.g. ``cache[name]`` of a
    ``Probe.run_with_cache`` on the reference set; ``generator`` draws the items (seed it
    the same way for runs that must share the draw).
    """

    def __init__(
        self,
        name: str,
        source_activations: torch.Tensor,
        generator: torch.Generator | None = None,
    ):
        super().__init__(name)
        if len(source_activations) == 0:
            raise ValueError("ResampleAblation needs at least one source activation")
        self.source = source_activations
        self.generator = generator

    def __call__(self, tensor, name):
        if self.source.shape[1:] != tensor.shape[1:]:
            raise ValueError(
                f"source activations for {name} have item shape {tuple(self.source.shape[1:])}, "
                f"the activation has {tuple(tensor.shape[1:])}"
            )
        device = self.generator.device if self.generator is not None else "cpu"
        index = torch.randint(
            len(self.source), (tensor.shape[0],), generator=self.generator, device=device
        )
        return self.source[index.to(self.source.device)].to(tensor.device, tensor.dtype)


class FeatureScaling(Intervention):
    """Multiply the activation by ``factor``."""

    def __init__(self, name: str, factor: float):
        super().__init__(name)
        self.factor = factor

    def __call__(self, tensor, name):
        return tensor * self.factor


class Patch(Intervention):
    """Replace the activation by ``activation``, recorded on another input or model.

    ``activation`` must have the activation's exact shape (batch included), e.g.
    ``cache[name]`` from ``Probe(other_unet).run_with_cache`` on the same batch. With
    ``rows`` (a slice, index list or boolean mask over the batch) only those batch rows
    are replaced and ``activation`` has their shape: several patches on different rows
    of one repeated batch run a patching sweep in one forward (``probe.patching``).
    """

    def __init__(self, name: str, activation: torch.Tensor, rows=None):
        super().__init__(name)
        self.activation = activation
        self.rows = rows

    def __call__(self, tensor, name):
        if self.rows is None:
            _check_patch(self.activation, tensor, name)
            return self.activation.to(tensor.device, tensor.dtype)
        return _replaced(tensor, (self.rows,), self.activation, f"{name} rows {self.rows}")

    def __repr__(self) -> str:
        rows = "" if self.rows is None else f", rows={self.rows}"
        return f"Patch({self.name!r}{rows})"


class HeadPatch(Intervention):
    """Replace head ``head``'s slice of attention ``attn_name``'s ``z`` by ``activation``.

    ``activation`` is that head's z recorded on another input, [batch, queries,
    head_dim] (``cache[f"{attn}.z"][:, head]``); the other heads are untouched, as in
    :class:`HeadAblation`. ``rows`` as for :class:`Patch`: only those batch rows.
    """

    site = "z"

    def __init__(self, attn_name: str, head: int, activation: torch.Tensor, rows=None):
        super().__init__(attn_name)
        if isinstance(head, bool) or not isinstance(head, int) or head < 0:
            raise ValueError(f"head must be a non-negative int, got {head!r}")
        self.head, self.activation, self.rows = head, activation, rows

    def __call__(self, tensor, name):
        rows = slice(None) if self.rows is None else self.rows
        return _replaced(tensor, (rows, self.head), self.activation, f"{name} head {self.head}")

    def __repr__(self) -> str:
        rows = "" if self.rows is None else f", rows={self.rows}"
        return f"HeadPatch({self.name!r}, {self.head}{rows})"


def _check_patch(activation: torch.Tensor, target: torch.Tensor, what: str) -> None:
    if activation.shape != target.shape:
        raise ValueError(
            f"patch for {what} has shape {tuple(activation.shape)}, "
            f"the activation has {tuple(target.shape)}"
        )


def _replaced(tensor: torch.Tensor, index: tuple, activation: torch.Tensor, what: str):
    """A copy of ``tensor`` with ``tensor[index]`` replaced by ``activation`` (same shape)."""
    _check_patch(activation, tensor[index], what)
    out = tensor.clone()
    out[index] = activation.to(tensor.device, tensor.dtype)
    return out


class SkipCut(Intervention):
    """Cut encoder->decoder skip edge ``k`` where the decoder consumes it.

    ``mode="zero"`` hands the decoder zeros, ``"mean"`` the reference ``mean`` of
    ``skip.k``; the encoder (and the skip's producer) is untouched.
    """

    def __init__(self, k: int, mode: str = "zero", mean: torch.Tensor | None = None):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"skip index k must be a non-negative int, got {k!r}")
        super().__init__(f"skip.{k}")
        _check_mode(mode, mean)
        self.k, self.mode, self.mean = k, mode, mean

    def __call__(self, tensor, name):
        if self.mode == "zero":
            return torch.zeros_like(tensor)
        return _mean_like(self.mean, tensor, name)

    def __repr__(self) -> str:
        return f"SkipCut({self.k}, mode={self.mode!r})"


class BottleneckCut(SkipCut):
    """Zero or mean-ablate the mid block's output (``mid``): the bottleneck path."""

    def __init__(self, mode: str = "zero", mean: torch.Tensor | None = None):
        Intervention.__init__(self, "mid")
        _check_mode(mode, mean)
        self.k, self.mode, self.mean = None, mode, mean

    def __repr__(self) -> str:
        return f"BottleneckCut(mode={self.mode!r})"


class HeadAblation(Intervention):
    """Remove head ``head``'s contribution to attention ``attn_name``.

    Its slice of ``z = pattern @ v`` (before ``to_out``) is zeroed, or replaced by the
    reference mean (``mean``: the ``<attn>.z`` reference mean [heads, queries, head_dim],
    or just this head's [queries, head_dim]). The other heads are untouched, so the
    attention output changes by ``-W_out[:, head slice] @ z_head`` (divided by the
    module's rescale factor) for zero ablation.
    """

    site = "z"

    def __init__(
        self, attn_name: str, head: int, mode: str = "zero", mean: torch.Tensor | None = None
    ):
        super().__init__(attn_name)
        if isinstance(head, bool) or not isinstance(head, int) or head < 0:
            raise ValueError(f"head must be a non-negative int, got {head!r}")
        _check_mode(mode, mean)
        self.head, self.mode, self.mean = head, mode, mean

    def __call__(self, tensor, name):
        out = tensor.clone()
        if self.mode == "zero":
            out[:, self.head] = 0
            return out
        mean = self.mean if self.mean.ndim == tensor.ndim - 2 else self.mean[self.head]
        out[:, self.head] = _mean_like(mean, tensor[:, self.head], f"{name} head {self.head}")
        return out

    def __repr__(self) -> str:
        return f"HeadAblation({self.name!r}, {self.head}, mode={self.mode!r})"


class AttentionPerturbation(Intervention):
    """Perturb the attention of ``attn_name`` on every head (``head=None``) or one head.

    ``kind``: ``"uniform"`` replaces the pattern by 1 / n_keys; ``"logit_noise"`` adds
    N(0, strength^2) to the logits before the softmax; ``"temperature"`` divides the
    logits by ``strength`` (> 1 flattens, < 1 sharpens).

    Noise comes from ``generator`` (its state advances with each forward; seed it alike
    for runs that must share the draw) or, with ``seed``, from a generator re-seeded at
    every forward, so every run sees the same noise (common random numbers).
    """

    def __init__(
        self,
        attn_name: str,
        kind: str = "uniform",
        head: int | None = None,
        strength: float = 1.0,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ):
        super().__init__(attn_name)
        if kind not in PERTURBATIONS:
            raise ValueError(f"kind must be one of {PERTURBATIONS}, got {kind!r}")
        if head is not None and (isinstance(head, bool) or not isinstance(head, int) or head < 0):
            raise ValueError(f"head must be None (all heads) or a non-negative int, got {head!r}")
        if kind == "temperature" and not strength > 0:
            raise ValueError(f"temperature strength must be > 0, got {strength!r}")
        if kind == "logit_noise" and not strength >= 0:
            raise ValueError(f"logit_noise strength must be >= 0, got {strength!r}")
        if generator is not None and seed is not None:
            raise ValueError("give AttentionPerturbation a generator or a seed, not both")
        self.kind, self.head, self.strength = kind, head, strength
        self.generator, self.seed = generator, seed
        self.site = "pattern" if kind == "uniform" else "logits"

    def _noise(self, shape: torch.Size) -> torch.Tensor:
        generator = self.generator
        if generator is None:
            generator = torch.Generator().manual_seed(0 if self.seed is None else self.seed)
        return torch.randn(shape, generator=generator, device=generator.device)

    def __call__(self, tensor, name):
        if self.kind == "uniform":
            edited = torch.full_like(tensor, 1.0 / tensor.shape[-1])
        elif self.kind == "temperature":
            edited = tensor / self.strength
        else:
            noise = self._noise(tensor.shape).to(tensor.device, tensor.dtype)
            edited = tensor + self.strength * noise
        if self.head is None:
            return edited
        out = tensor.clone()
        out[:, self.head] = edited[:, self.head]
        return out

    def __repr__(self) -> str:
        return f"AttentionPerturbation({self.name!r}, {self.kind!r}, head={self.head})"


class TokenAblation(Intervention):
    """Remove key/value token(s) ``tokens`` from attention ``attn_name`` (e.g. a text token).

    Meant for cross-attention (``Probe.attention_keys[attn] == "encoder"``), where the
    keys and values are the encoder's tokens. ``site`` says how:

    - ``"logits"`` (default): the token gets no attention at all; its logits are set to
      -inf before the softmax, so the pattern renormalises over the other tokens
      (removing every token gives NaN).
    - ``"k"``: its key is zeroed (its logit becomes 0: it still gets attention).
    - ``"v"``: its value is zeroed (it is attended to, but contributes nothing).

    ``head`` None acts on every head, else on that one. Compose ``"k"`` and ``"v"`` to
    ablate both.
    """

    SITES = ("logits", "k", "v")

    def __init__(
        self, attn_name: str, tokens: int | list[int], site: str = "logits", head: int | None = None
    ):
        super().__init__(attn_name)
        if site not in self.SITES:
            raise ValueError(f"site must be one of {self.SITES}, got {site!r}")
        tokens = [tokens] if isinstance(tokens, int) else list(tokens)
        if not tokens or any(isinstance(t, bool) or not isinstance(t, int) for t in tokens):
            raise ValueError(f"tokens must be an int or a non-empty list of ints, got {tokens!r}")
        if head is not None and (isinstance(head, bool) or not isinstance(head, int) or head < 0):
            raise ValueError(f"head must be None (all heads) or a non-negative int, got {head!r}")
        self.site, self.tokens, self.head = site, tokens, head

    def __call__(self, tensor, name):
        # logits [batch, heads, queries, keys]: tokens on the last axis; k/v [batch, heads,
        # tokens, head_dim]: tokens on axis 2
        n = tensor.shape[-1] if self.site == "logits" else tensor.shape[2]
        if any(not -n <= t < n for t in self.tokens):
            raise ValueError(f"{self!r}: token out of range, {name} has {n} key tokens")
        heads = slice(None) if self.head is None else self.head
        out = tensor.clone()
        if self.site == "logits":
            out[:, heads, :, self.tokens] = float("-inf")
        else:
            out[:, heads, self.tokens] = 0
        return out

    def __repr__(self) -> str:
        return f"TokenAblation({self.name!r}, {self.tokens}, site={self.site!r}, head={self.head})"
