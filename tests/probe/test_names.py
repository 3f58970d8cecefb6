"""Hook-point names, their forward order, module paths, skip map and layer groups."""

import pytest
import torch
from unets import ARCHITECTURES, inputs, make_unet

from diffusion_circuits.probe import ATTENTION_SITES, LAYER_GROUPS, Probe

SITES = [f".{site}" for site in ATTENTION_SITES]


def attention(name: str) -> list[str]:
    return [name] + [name + site for site in SITES]


def resnet(name: str) -> list[str]:
    return [f"{name}.residual", name]


def test_paper_layout_names_written_out_by_hand():
    probe = Probe(make_unet("paper"))
    assert probe.hook_points == [
        "time_emb",
        "conv_in",
        "skip.0",
        *resnet("down.0.resnet.0"),
        "skip.1",
        "down.0.downsample",
        "skip.2",
        *resnet("down.1.resnet.0"),
        "skip.3",
        "down.1.downsample",
        "skip.4",
        *resnet("down.2.resnet.0"),
        "skip.5",
        *resnet("mid.resnet.0"),
        *attention("mid.attn.0"),
        *resnet("mid.resnet.1"),
        "mid",
        *resnet("up.0.resnet.0"),
        *attention("up.0.attn.0"),
        *resnet("up.0.resnet.1"),
        *attention("up.0.attn.1"),
        "up.0.upsample",
        *resnet("up.1.resnet.0"),
        *resnet("up.1.resnet.1"),
        "up.1.upsample",
        *resnet("up.2.resnet.0"),
        *resnet("up.2.resnet.1"),
        "conv_out",
    ]
    assert probe.attention_heads == {"mid.attn.0": 8, "up.0.attn.0": 8, "up.0.attn.1": 8}
    groups = probe.layer_groups
    assert list(groups) == list(LAYER_GROUPS)
    assert groups["encoder_early"] == ["conv_in", "skip.0", *resnet("down.0.resnet.0")] + [
        "skip.1",
        "down.0.downsample",
        "skip.2",
    ]
    assert groups["encoder_late"] == [*resnet("down.2.resnet.0"), "skip.5"]
    assert groups["middle"] == [
        *resnet("mid.resnet.0"),
        *attention("mid.attn.0"),
        *resnet("mid.resnet.1"),
        "mid",
    ]
    assert groups["decoder_early"][0] == "up.0.resnet.0.residual"
    assert groups["decoder_late"] == [*resnet("up.2.resnet.0"), *resnet("up.2.resnet.1")] + [
        "conv_out"
    ]
    assert probe.group_of("time_emb") is None and probe.group_of("up.0.attn.1.out") == (
        "decoder_early"
    )
    assert probe.resnets[:3] == ["down.0.resnet.0", "down.1.resnet.0", "down.2.resnet.0"]
    assert probe.residuals[:2] == ["down.0.resnet.0.residual", "down.1.resnet.0.residual"]
    assert probe.group_of("up.2.resnet.1.residual") == "decoder_late"
    assert probe.module_path("mid.resnet.1.residual") == "mid_block.resnets.1.conv2"


@pytest.mark.parametrize(
    ("kind", "encoder", "decoder"),
    [
        ("two_levels_no_mid_attention", [[0], [1], []], [[0], [1], []]),
        ("four_levels", [[0, 1], [2], [3]], [[0, 1], [2], [3]]),
    ],
)
def test_layer_groups_split_blocks_into_thirds(kind, encoder, decoder):
    probe = Probe(make_unet(kind))
    for offset, part, runs in ((0, "down", encoder), (4, "up", decoder)):
        for group, blocks in zip(LAYER_GROUPS[offset : offset + 3], runs, strict=True):
            members = {n.split(".")[1] for n in probe.layer_groups[group] if n.startswith(part)}
            assert members == {str(b) for b in blocks}, group
    grouped = [n for names in probe.layer_groups.values() for n in names]
    assert sorted(grouped) == sorted(set(probe.hook_points) - {"time_emb"})  # each exactly once


def test_structure_differs_between_architectures():
    two = Probe(make_unet("two_levels_no_mid_attention"))
    assert two.attention_heads == {"down.1.attn.0": 2, "up.0.attn.0": 2, "up.0.attn.1": 2}
    assert "mid.attn.0" not in two.hook_points and "mid.resnet.1" in two.hook_points
    assert "down.1.downsample" not in two.hook_points  # the last down block keeps resolution
    everywhere = Probe(make_unet("attn_everywhere"))
    assert [n for n in everywhere.hook_points if n.startswith("down.1.")][:5] == [
        *resnet("down.1.resnet.0"),
        *attention("down.1.attn.0")[:3],
    ]
    assert everywhere.skip_source("skip.4") == "down.1.attn.0"  # attention output is the skip
    assert len([n for n in everywhere.hook_points if n.startswith("skip.")]) == 9
    assert everywhere.hook_points.index("up.1.attn.2") < everywhere.hook_points.index(
        "up.1.upsample"
    )
    skip = Probe(make_unet("skip_blocks"))
    up0 = [n for n in skip.hook_points if n.startswith("up.0.") and n.count(".") == 3]
    assert up0 == ["up.0.resnet.0", "up.0.resnet.1", "up.0.resnet.2", "up.0.attn.0"]
    assert skip.module_path("down.0.downsample") == "down_blocks.0"
    assert skip.module_path("up.0.upsample") == "up_blocks.0.resnet_up"


def fired_order(unet, probe) -> list[str]:
    """Hook points in the order their modules actually finish during a forward."""
    owners = {}
    for name, module in probe._map.modules.items():
        owners.setdefault(module, []).append(name)
    fired: list[str] = []
    handles = [m.register_forward_hook(lambda m, a, o: fired.extend(owners[m])) for m in owners]
    try:
        with torch.no_grad():
            unet(*inputs())
    finally:
        for handle in handles:
            handle.remove()
    return fired


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
def test_names_follow_the_order_modules_fire(kind):
    unet = make_unet(kind)
    probe = Probe(unet)
    listed = [n for n in probe.hook_points if n in probe._map.modules]
    assert fired_order(unet, probe) == listed
    assert probe.hook_points[:2] == ["time_emb", "conv_in"] and probe.hook_points[-1] == "conv_out"
    for name in probe.attention_heads:  # sites follow their attention
        at = probe.hook_points.index(name)
        assert probe.hook_points[at + 1 : at + 6] == [name + s for s in SITES]


@pytest.mark.parametrize("kind", list(ARCHITECTURES))
def test_skip_k_is_entry_k_of_the_tuple_diffusers_collects(kind):
    unet = make_unet(kind)
    probe = Probe(unet)
    outputs, handed = {}, {}
    handles = []
    for name, module in probe._map.modules.items():
        block_output = probe._map.points[name].kind == "block"
        handles.append(
            module.register_forward_hook(
                lambda m, a, o, n=name, b=block_output: outputs.__setitem__(n, o[0] if b else o)
            )
        )
    for b, block in enumerate(unet.up_blocks):
        handles.append(
            block.register_forward_pre_hook(lambda m, a, b=b: handed.__setitem__(b, a[1]))
        )
    with torch.no_grad():
        unet(*inputs())
    for handle in handles:
        handle.remove()
    # up block 0 took the last entries: rebuild the whole tuple in diffusers' order
    collected = [t for b in reversed(range(len(unet.up_blocks))) for t in handed[b]]
    sources = probe._map.skip_sources
    assert len(sources) == len(collected)
    for k, source in enumerate(sources):
        assert collected[k] is outputs[source], f"skip.{k} is not {source}"


@pytest.mark.parametrize("kind", ["paper", "skip_blocks", "resnet_samplers"])
def test_module_path_leads_to_the_module_behind_each_name(kind):
    unet = make_unet(kind)
    probe = Probe(unet)
    for name in probe.hook_points:
        point = probe._map.points[name]
        module = unet.get_submodule(probe.module_path(name))
        if point.kind == "skip":
            assert module is probe._map.points[point.source].module
        else:
            assert module is point.module
    if kind == "paper":
        assert probe.module_path("up.0.attn.1.pattern") == "up_blocks.0.attentions.1"
        assert probe.module_path("skip.2") == "down_blocks.0.downsamplers.0"


def test_name_filters_and_errors():
    probe = Probe(make_unet("paper"))
    assert probe.resolve("up.*.attn.?.pattern") == ["up.0.attn.0.pattern", "up.0.attn.1.pattern"]
    assert probe.resolve(["mid", "conv_in", "mid"]) == ["conv_in", "mid"]  # forward order, once
    assert probe.resolve(lambda n: n.startswith("skip.")) == [f"skip.{k}" for k in range(6)]
    assert probe.resolve("mid.attn.0.out") == ["mid.attn.0"]
    assert probe.resolve(None) == probe.hook_points
    with pytest.raises(
        ValueError, match=r"unknown hook point 'mid.atn.0'; did you mean mid.attn.0"
    ):
        probe.resolve("mid.atn.0")
    with pytest.raises(ValueError, match=r"no hook point matches 'down\.\*\.attn\.\*'"):
        probe.resolve("down.*.attn.*")  # the paper layout has no encoder attention
    with pytest.raises(ValueError, match="unknown hook point 'up.0.attn.0.logits'"):
        probe.resolve("up.0.attn.0.logits")


def test_a_module_without_submodules_is_refused():
    """Any other model falls back to module paths (test_accounting.py); a bare layer has
    none to name."""
    with pytest.raises(
        ValueError,
        match="Probe cannot name any hook point of Linear: it has no submodules "
        r"\(family adapters: UNet2DModel, UNet2DConditionModel",
    ):
        Probe(torch.nn.Linear(2, 2))
