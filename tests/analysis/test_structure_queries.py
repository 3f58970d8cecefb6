"""The analyses take a model's structure from the probe, not from its hook-point names: the
same code builds the U-Net's interventions and a transformer's, which has no skips, no
bottleneck and no conv_in / conv_out."""

import pytest
import torch
from diffusers import DiTTransformer2DModel

from diffusion_circuits.analysis.circuits import branch_components, component_types
from diffusion_circuits.analysis.interventions import Reference, intervention_specs
from diffusion_circuits.analysis.layer_groups import layer_group_ablation_points, layer_group_blocks
from diffusion_circuits.model.factory import build_unet
from diffusion_circuits.probe import (
    LAYER_GROUPS,
    TRANSFORMER_LAYER_GROUPS,
    Head,
    Probe,
    ZeroAblation,
)


@pytest.fixture(scope="module")
def unet_probe(tiny_params_shared):
    return Probe(build_unet(tiny_params_shared.model, seed=0).eval())


@pytest.fixture(scope="module")
def dit_probe():
    torch.manual_seed(0)
    model = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=4, out_channels=8,
        num_layers=8, sample_size=8, patch_size=2, num_embeds_ada_norm=10,
    )  # fmt: skip
    return Probe(model.eval())


def _zero_reference(probe: Probe) -> Reference:
    # Shapes do not matter here: the specs are built, not run.
    means = {name: torch.zeros(1) for name in probe.hook_points}
    return Reference(means, {}, torch.zeros(0, dtype=torch.long))


def test_layer_groups_are_the_main_path_between_the_input_and_output_maps(unet_probe):
    groups = layer_group_blocks(unet_probe)
    path = unet_probe.main_path
    assert (path[0], path[-1]) == ("conv_in", "conv_out")
    assert list(groups) == list(LAYER_GROUPS)
    assert [hook for hooks in groups.values() for hook in hooks] == path[1:-1]


def test_the_unet_cuts_every_skip_edge_at_its_index_and_the_bottleneck(
    tiny_params_shared, unet_probe
):
    specs = intervention_specs(unet_probe, tiny_params_shared.analyze)
    cuts = [s for s in specs if s.family == "circuit_interruption"]
    edges = unet_probe.skip_edges
    methods = ("zero", "mean")
    assert [s.target for s in cuts] == [e.name for e in edges for _ in methods] + [
        "bottleneck"
    ] * len(methods)
    reference = _zero_reference(unet_probe)
    built = [s.build(reference)[0] for s in cuts]
    assert [(cut.k, cut.mode) for cut in built[:-2]] == [
        (e.index, mode) for e in edges for mode in methods
    ]
    assert built[-1].mean is reference.means[unet_probe.bottleneck]


def test_a_transformer_gets_layer_and_head_interventions_and_no_cuts(tiny_params_shared, dit_probe):
    specs = intervention_specs(dit_probe, tiny_params_shared.analyze)
    assert {s.family for s in specs} == {
        "layer_ablation", "feature_scaling", "component_ablation", "attention_perturbation",
    }  # fmt: skip
    layers = [s.target for s in specs if s.family == "layer_ablation"]
    assert layers == [group for group in TRANSFORMER_LAYER_GROUPS for _ in range(3)]
    blocks = [h for hooks in layer_group_blocks(dit_probe).values() for h in hooks]
    assert blocks == dit_probe.main_path[1:-1]
    components = [
        s.target for s in specs if s.family == "component_ablation" and s.method == "mean"
    ]
    # no ResNets in a transformer: its heads, then each block's feed-forward branch
    branches = [f"block.{i}.ff" for i in range(8)]
    assert components == [head.name for head in dit_probe.heads] + branches
    types = component_types(dit_probe)
    assert [types[c] for c in components] == ["head"] * len(dit_probe.heads) + ["ff"] * 8


def test_component_types_come_from_the_probe_not_the_names(unet_probe):
    types = component_types(unet_probe)
    assert types[Head("mid.attn.0", 3).name] == "head"
    assert "mid.attn.0" not in types  # a whole attention layer is no component
    assert branch_components(unet_probe) == unet_probe.residuals
    assert {types[r] for r in unet_probe.residuals} == {"resnet"}
    assert set(types) == {h.name for h in unet_probe.heads} | set(unet_probe.residuals)


def test_a_unet_layer_group_is_ablated_at_its_main_path(unet_probe):
    assert layer_group_ablation_points(unet_probe) == layer_group_blocks(unet_probe)


def test_a_transformer_block_is_ablated_at_what_it_adds_not_at_the_residual_stream(dit_probe):
    points = layer_group_ablation_points(dit_probe)
    assert list(points) == list(TRANSFORMER_LAYER_GROUPS)
    assert points["late_blocks"] == ["block.6.self", "block.6.ff", "block.7.self", "block.7.ff"]
    # zeroing every branch of a group leaves its blocks identities: the stream flows on
    model, x = dit_probe.model, torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    call = dict(timestep=torch.tensor([10, 10]), class_labels=torch.tensor([0, 0]))
    zeroed = [ZeroAblation(p) for p in points["late_blocks"]]
    with (
        torch.no_grad(),
        dit_probe.capture(["block.5", "block.7"]) as cache,
        dit_probe.intervene(*zeroed),
    ):
        model(x, **call)
    assert torch.equal(cache["block.7"], cache["block.5"])
