"""Structural queries: main path, skip edges, components, heads and groups, from the
name map's roles (never from parsing names), on every family."""

import pytest
import torch
from models import CONFIGS, make_model
from unets import ARCHITECTURES, inputs, make_unet

from diffusion_circuits.probe import LAYER_GROUPS, POINT_KINDS, ROLES, Head, Probe

MODELS = {
    **{f"unet:{kind}": lambda kind=kind: make_unet(kind) for kind in ARCHITECTURES},
    **{kind: lambda kind=kind: make_model(kind) for kind in CONFIGS},
}


@pytest.fixture(params=list(MODELS), scope="module")
def any_probe(request):
    return request.param, Probe(MODELS[request.param]())


def test_paper_layout_structure():
    probe = Probe(make_unet("paper"))
    assert probe.main_path == [
        "conv_in",
        "down.0.resnet.0",
        "down.0.downsample",
        "down.1.resnet.0",
        "down.1.downsample",
        "down.2.resnet.0",
        "mid.resnet.0",
        "mid.attn.0",
        "mid.resnet.1",
        "up.0.resnet.0",
        "up.0.attn.0",
        "up.0.resnet.1",
        "up.0.attn.1",
        "up.0.upsample",
        "up.1.resnet.0",
        "up.1.resnet.1",
        "up.1.upsample",
        "up.2.resnet.0",
        "up.2.resnet.1",
        "conv_out",
    ]
    assert (probe.input_point, probe.output_point, probe.bottleneck) == (
        "conv_in",
        "conv_out",
        "mid",
    )
    assert probe.skips == [f"skip.{k}" for k in range(6)]
    assert probe.skip_edges[0] == ("skip.0", 0, "conv_in", 2, 0)
    assert [(e.consumer, e.position) for e in probe.skip_edges[-2:]] == [(0, 0), (0, 1)]
    assert probe.attentions == ["mid.attn.0", "up.0.attn.0", "up.0.attn.1"]
    assert probe.heads[:3] == [Head("mid.attn.0", h) for h in range(3)]
    assert len(probe.heads) == 24 and Head.from_name(probe.heads[9].name) == probe.heads[9]
    inner = [h for h in probe.main_path if h not in (probe.input_point, probe.output_point)]
    assert probe.grouped(inner)["middle"] == ["mid.resnet.0", "mid.attn.0", "mid.resnet.1"]
    assert list(probe.grouped(inner)) == [g for g in LAYER_GROUPS]
    assert probe.points(kind="site", group="middle") == probe.sites("mid.attn.0")
    assert probe.points(role="sampler") == [
        "down.0.downsample",
        "down.1.downsample",
        "up.0.upsample",
        "up.1.upsample",
    ]


def test_every_point_has_a_kind_and_role_and_queries_partition_them(any_probe):
    kind, probe = any_probe
    points = probe.hook_points
    assert sorted(n for k in POINT_KINDS for n in probe.points(kind=k)) == sorted(points)
    assert sorted(n for r in ROLES for n in probe.points(role=r)) == sorted(points)
    assert probe.points(role="resnet") == probe.resnets
    assert probe.points(role="residual") == probe.residuals
    assert probe.points(kind="skip") == probe.skips == [e.name for e in probe.skip_edges]
    assert all(probe.role_of(n) == "site" for n in probe.points(kind="site"))
    for point in probe.points(main=True):  # the main path: no skip, site or branch
        assert probe.role_of(point) not in ("skip", "site", "residual", "embedding")
    assert probe.points(main=False) == [n for n in points if n not in probe.main_path]


def test_main_path_runs_from_input_to_output(any_probe):
    kind, probe = any_probe
    path = probe.main_path
    assert path[0] == probe.input_point and path[-1] == probe.output_point
    assert probe.bottleneck == (
        "mid" if kind.startswith(("unet:", "sd")) and kind != "sd3" else None
    )
    assert len(path) == len(set(path)) and [p for p in probe.hook_points if p in path] == path


def test_skip_edges_match_the_skip_points(any_probe):
    kind, probe = any_probe
    for k, edge in enumerate(probe.skip_edges):
        assert edge.name == f"skip.{k}" and edge.index == k
        assert edge.source == probe.skip_source(edge.name)
        assert probe.module_path(edge.name) == probe.module_path(edge.source)
    by_consumer: dict[int, list[int]] = {}
    for edge in probe.skip_edges:
        by_consumer.setdefault(edge.consumer, []).append(edge.position)
    for positions in by_consumer.values():  # each up block's skips: positions 0..n-1
        assert sorted(positions) == list(range(len(positions)))


def test_heads_and_attentions(any_probe):
    kind, probe = any_probe
    assert set(probe.attention_heads) <= set(probe.attentions)
    assert len(probe.heads) == sum(probe.attention_heads.values())
    for attention, n in probe.attention_heads.items():
        assert [h.index for h in probe.heads if h.attention == attention] == list(range(n))
        assert len(probe.sites(attention)) == 5


def test_filters_refuse_unknown_kinds_and_roles():
    probe = Probe(make_unet("paper"))
    with pytest.raises(ValueError, match="kind must be one of"):
        probe.points(kind="resnet")
    with pytest.raises(ValueError, match="role must be one of"):
        probe.points(role="resnets")
    with pytest.raises(ValueError, match="group must be one of"):
        probe.points(group="early")


def test_unet_property_is_a_deprecated_alias_of_model():
    unet = make_unet("paper")
    probe = Probe(unet)
    assert probe.model is unet
    with pytest.warns(DeprecationWarning, match="Probe.model"):
        assert probe.unet is unet


def test_duck_typed_interventions_get_the_protocol_defaults():
    """An object with only ``name`` and ``__call__`` still works (no head, always on)."""
    from diffusion_circuits.probe import InterventionLike, ZeroAblation

    class Halve:
        name = "mid"

        def __call__(self, tensor, name):
            return tensor / 2

    unet = make_unet("paper")
    probe = Probe(unet)
    x, t = inputs(2)
    with torch.no_grad():
        with probe.intervene(Halve()), probe.capture("mid") as halved:
            unet(x, t)
        _, clean = probe.run_with_cache(x, t, "mid")
    assert torch.equal(halved["mid"], clean["mid"] / 2)
    assert isinstance(ZeroAblation("mid"), InterventionLike)
    assert not isinstance(Halve(), InterventionLike)  # optional attributes undeclared
