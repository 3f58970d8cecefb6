"""Where a layer group lives in a model: the hook points the layer-group analyses read
(feature scaling, cross-model patching) and those a layer-group ablation replaces, both
from the probe's structure."""

from __future__ import annotations

from diffusion_circuits.probe import Probe

__all__ = ["layer_group_blocks", "block_branches", "layer_group_ablation_points"]


def layer_group_blocks(probe: Probe) -> dict[str, list[str]]:
    """Each layer group's main-path hook points, in forward order (non-empty groups only).

    The input map and the output head are left out: ablating either removes the model's
    input or its prediction outright, which says nothing about the group around it.
    """
    ends = (probe.input_point, probe.output_point)
    return probe.grouped([h for h in probe.main_path if h not in ends])


def block_branches(probe: Probe, block: str) -> list[str]:
    """The attention and feed-forward outputs inside transformer block ``block`` (the
    branches its output adds to the residual stream), in forward order."""
    inside = set(probe.model.get_submodule(probe.module_path(block)).modules())
    return [
        name
        for name in probe.points(kind="module")
        if probe.role_of(name) in ("attention", "ff")
        and probe.model.get_submodule(probe.module_path(name)) in inside
    ]


def layer_group_ablation_points(probe: Probe) -> dict[str, list[str]]:
    """What ablating each layer group replaces: its main-path hook points
    (:func:`layer_group_blocks`), except a transformer block's output.

    That output is the residual stream itself: replacing it cuts every later block off
    the input (no skip edge carries it around, as in a U-Net), so every ablation of every
    group would leave an output-constant model. A block is ablated at what it adds to
    the stream instead, its attention and feed-forward outputs (zero ablation leaves it
    an identity map).
    """
    return {
        group: [
            point
            for hook in hooks
            for point in (block_branches(probe, hook) if probe.role_of(hook) == "block" else [hook])
        ]
        for group, hooks in layer_group_blocks(probe).items()
    }
