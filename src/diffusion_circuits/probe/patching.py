"""Patching sweeps: exact activation patching, batched, and attribution patching (AtP).

Both estimate, for each component, how much a metric changes when that component
takes its value from a *corrupt* run while the model otherwise runs on the *clean*
input. A component is a hook point (any, attention sites included) or an attention head
(a :class:`~diffusion_circuits.probe.names.Head`, or its label ``"<attn>.head.<i>"``
from ``probe.heads``): the head's slice of ``<attn>.z``, what :class:`HeadAblation`
removes, patched alone (:class:`~diffusion_circuits.probe.interventions.HeadPatch`).

- :func:`activation_patching` measures it exactly, one forward per component, but packs
  ``components_per_forward`` components into one forward: the clean batch is repeated
  K times and component k is patched in the k-th copy only (``Patch(..., rows=...)``,
  ``HeadPatch(..., rows=...)``),
  which equals K single runs up to float error (batched kernels may round differently).
- :func:`attribution_patching` estimates all of them at once to first order from one
  forward and one backward pass on the clean input (Nanda 2023, "Attribution
  patching"): ``effect(c) ~= sum((corrupt_c - clean_c) * d metric / d clean_c)``.
- :func:`rank_agreement` says how well the cheap estimate orders the components like
  the exact one (Spearman's rho, ``scipy.stats.spearmanr``).

``metric(output) -> tensor[batch]`` is a per-item number (e.g. the per-image MSE to the
true noise), always called on one batch-sized output; every effect is the mean over the
batch of ``metric(patched) - metric(clean)``.

Examples
--------
>>> import torch
>>> from diffusers import UNet2DModel
>>> from diffusion_circuits.probe import Probe
>>> _ = torch.manual_seed(0)
>>> unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
...                    layers_per_block=1, down_block_types=("DownBlock2D",) * 2,
...                    up_block_types=("UpBlock2D",) * 2, attention_head_dim=4).eval()
>>> probe, t = Probe(unet), torch.tensor([500, 500])
>>> clean, corrupt = {"sample": torch.randn(2, 3, 8, 8), "timestep": t}, {"sample": torch.randn(2, 3, 8, 8), "timestep": t}
>>> metric = lambda eps: eps.pow(2).mean(dim=(1, 2, 3))
>>> names = probe.resnets + [head.name for head in probe.heads]
>>> exact = activation_patching(probe, names, clean, corrupt, metric, components_per_forward=4)
>>> estimate = attribution_patching(probe, names, clean, corrupt, metric)
>>> sorted(exact) == sorted(estimate) == sorted(names)
True
>>> names[-2:]  # the mid attention's two heads: their slices of mid.attn.0.z
['mid.attn.0.head.0', 'mid.attn.0.head.1']
>>> -1.0 <= rank_agreement(exact, estimate) <= 1.0
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from diffusion_circuits.probe.interventions import HeadPatch, Patch
from diffusion_circuits.probe.names import Head

__all__ = [
    "Component",
    "Forward",
    "Metric",
    "activation_patching",
    "attribution_patching",
    "batched_patches",
    "components",
    "rank_agreement",
    "repeat_batch",
]

Metric = Callable[[torch.Tensor], torch.Tensor]
Forward = Callable[[dict], torch.Tensor]


def _batch_size(inputs: dict) -> int:
    """The batch of a forward's keyword inputs: its first tensor's (the sample's) length."""
    return len(next(v for v in inputs.values() if isinstance(v, torch.Tensor)))


def _per_item(key: str, value, batch: int) -> bool:
    # Position ids (FLUX's img_ids / txt_ids) have no batch axis whatever their length.
    return (
        isinstance(value, torch.Tensor)
        and value.ndim > 0
        and len(value) == batch
        and not key.endswith("_ids")
    )


def repeat_batch(inputs: dict, copies: int) -> dict:
    """Forward keyword inputs with every per-item tensor repeated ``copies`` times.

    Per-item: a tensor whose first axis has the sample's length (the first tensor
    argument), except ``*_ids`` position ids. Copy k holds rows ``k * batch`` to
    ``(k + 1) * batch``.
    """
    batch = _batch_size(inputs)
    return {
        key: value.repeat(copies, *([1] * (value.ndim - 1)))
        if _per_item(key, value, batch)
        else value
        for key, value in inputs.items()
    }


class Component(NamedTuple):
    """What a sweep patches: hook point ``point`` whole (``head`` None), or head ``head``
    of attention z site ``point`` (axis 1). ``label`` keys the sweep's result."""

    label: str
    point: str
    head: int | None = None

    def part(self, activation: torch.Tensor) -> torch.Tensor:
        """The component's part of an activation recorded at :attr:`point`."""
        return activation if self.head is None else activation[:, self.head]

    def patch(self, activation: torch.Tensor, rows=None):
        """The intervention putting ``activation`` (its :meth:`part`) in place."""
        if self.head is None:
            return Patch(self.point, activation, rows=rows)
        attention = self.point.removesuffix(".z")
        return HeadPatch(attention, self.head, activation, rows=rows)


def components(probe, names: Sequence[str | Head]) -> list[Component]:
    """Hook-point names, :class:`Head` s and head labels -> :class:`Component` s.

    A hook point's label is its canonical name; a head's is ``Head.name``
    (``"<attn>.head.<i>"``, the attention canonical too). A hook point whose own name
    reads like a head label (a generic module path ``...head.<i>``) stays a hook point.
    """
    points = set(probe.hook_points)
    resolved = []
    for name in names:
        head = name if isinstance(name, Head) else None
        if head is None and name not in points:
            head = Head.from_name(name)
        if head is None:
            point = probe.canonical(name)
            resolved.append(Component(point, point))
            continue
        attention = probe.canonical(head.attention)
        heads = probe.attention_heads.get(attention, 0)
        if not 0 <= head.index < heads:
            raise ValueError(
                f"{head.name}: {attention} has {heads} heads with sites "
                "(probe.attention_heads); patch its output instead"
            )
        resolved.append(Component(Head(attention, head.index).name, f"{attention}.z", head.index))
    return resolved


def batched_patches(patches: Sequence[tuple[str | Component, torch.Tensor]], batch: int) -> list:
    """``[(component, activation), ...]`` -> one patch per pair, pair k on rows
    ``k * batch:(k + 1) * batch`` of a :func:`repeat_batch`-ed forward.

    A component is a hook-point name (:class:`Patch`) or a :class:`Component`
    (a head's: :class:`HeadPatch`, ``activation`` its part of z).
    """
    return [
        (Component(c, c) if isinstance(c, str) else c).patch(
            activation, rows=slice(k * batch, (k + 1) * batch)
        )
        for k, (c, activation) in enumerate(patches)
    ]


def _default_forward(probe) -> Forward:
    return lambda inputs: probe.model(**inputs).sample


def activation_patching(
    probe,
    names: Sequence[str],
    clean: dict,
    corrupt: dict,
    metric: Metric,
    components_per_forward: int = 8,
    forward: Forward | None = None,
) -> dict[str, float]:
    """Exact effect of patching each hook point from the corrupt run into the clean one.

    Parameters
    ----------
    probe : the :class:`~diffusion_circuits.probe.Probe` of the model.
    names : components to patch one at a time: hook points (any, attention sites
        included) and heads (:class:`Head` or ``"<attn>.head.<i>"``), see
        :func:`components`.
    clean, corrupt : keyword inputs of the two forwards (same shapes), e.g.
        ``{"sample": x_t, "timestep": t}``; use the same ``x_t`` noise for both where
        only the conditioning differs.
    metric : ``output -> tensor[batch]``.
    components_per_forward : how many components share one forward (the batch is
        repeated that many times; memory grows with it).
    forward : ``inputs -> output``; default ``probe.model(**inputs).sample``.

    Returns
    -------
    dict ``label -> mean over the batch of metric(patched) - metric(clean)``, in the
    order of ``names`` (labels: canonical hook-point names, ``Head.name`` for heads).
    """
    if components_per_forward < 1:
        raise ValueError(f"components_per_forward must be >= 1, got {components_per_forward}")
    swept = components(probe, names)
    forward = forward or _default_forward(probe)
    batch = _batch_size(clean)
    with torch.no_grad():
        base = metric(forward(clean))
        with probe.capture(sorted({c.point for c in swept})) as donor:
            forward(corrupt)
        effects: dict[str, float] = {}
        for start in range(0, len(swept), components_per_forward):
            chunk = swept[start : start + components_per_forward]
            patches = batched_patches([(c, c.part(donor[c.point])) for c in chunk], batch)
            with probe.intervene(*patches):
                output = forward(repeat_batch(clean, len(chunk)))
            # the metric sees one copy of the batch at a time, as in a single run
            for component, copy in zip(chunk, output.split(batch), strict=True):
                effects[component.label] = float((metric(copy) - base).mean())
    return effects


def attribution_patching(
    probe,
    names: Sequence[str],
    clean: dict,
    corrupt: dict,
    metric: Metric,
    forward: Forward | None = None,
) -> dict[str, float]:
    """First-order estimate of :func:`activation_patching` for every hook point at once.

    One forward on ``corrupt`` (no gradients), one forward and one backward pass on
    ``clean``: ``estimate(c) = sum((corrupt_c - clean_c) * grad_c)``, ``grad_c`` the
    gradient of ``mean(metric(output))`` at component c (for a head: its slice of the
    gradient at ``<attn>.z``, so the heads of one attention share one capture). Same
    parameters and labels as :func:`activation_patching`; components outside the graph
    of the output (none in a denoiser's forward) give 0.

    Notes
    -----
    Attention sites (patterns, z) are captured on the explicit attention path so that
    they are in the graph; the estimate is linear, so it is exact for hook points the
    metric depends on linearly and degrades where the patch is large.
    """
    swept = components(probe, names)
    points = sorted({c.point for c in swept})
    forward = forward or _default_forward(probe)
    with torch.no_grad(), probe.capture(points) as corrupted:
        forward(corrupt)
    # a sample that needs gradients puts the forward in the graph even when the
    # model's parameters are frozen
    sample = next(k for k, v in clean.items() if isinstance(v, torch.Tensor))
    clean = {**clean, sample: clean[sample].detach().clone().requires_grad_(True)}
    with torch.enable_grad(), probe.capture(points, grad=True) as cleaned:
        metric(forward(clean)).mean().backward()
    estimates: dict[str, float] = {}
    for c in swept:
        gradient = cleaned[c.point].grad
        difference = c.part(corrupted[c.point] - cleaned[c.point].detach())
        estimates[c.label] = (
            0.0 if gradient is None else float((difference * c.part(gradient)).sum())
        )
    return estimates


def rank_agreement(exact: dict[str, float], estimate: dict[str, float]) -> float:
    """Spearman's rank correlation between two sweeps over the same components.

    >>> rank_agreement({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 0.1, "b": 0.5, "c": 0.2})
    0.5
    """
    from scipy.stats import spearmanr  # only this function needs scipy

    if set(exact) != set(estimate):
        raise ValueError("the two sweeps must cover the same components")
    if len(exact) < 2:
        raise ValueError("rank agreement needs at least two components")
    keys = list(exact)
    rho = spearmanr([exact[k] for k in keys], [estimate[k] for k in keys]).statistic
    return float(rho)
