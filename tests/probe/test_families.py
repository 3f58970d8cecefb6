"""Every supported family, on tiny random-weight versions of public configs (models.py):
discovery, transparency, patterns, cleanup, confined interventions and replay."""

import pytest
import torch
from models import CONFIGS, image_tokens, make_model, model_inputs
from unets import assert_clean, processors

from diffusion_circuits.probe import (
    LAYER_GROUPS,
    TRANSFORMER_LAYER_GROUPS,
    AttentionPerturbation,
    FeatureScaling,
    HeadAblation,
    MeanAblation,
    Patch,
    Probe,
    ResampleAblation,
    TokenAblation,
    ZeroAblation,
)

FAMILIES = list(CONFIGS)


@pytest.fixture(params=FAMILIES, scope="module")
def family(request):
    kind = request.param
    model = make_model(kind)
    return kind, model, Probe(model), model_inputs(kind)


def forward(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).sample


def test_full_capture_is_bit_identical_and_complete(family):
    kind, model, probe, inputs = family
    before = processors(model)
    plain = forward(model, inputs)
    with torch.no_grad(), probe.capture() as cache:
        eps = model(**inputs).sample
    assert torch.equal(plain, eps)
    assert set(cache) == set(probe.hook_points)
    assert torch.equal(cache.timesteps, inputs["timestep"])
    assert_clean(model, before)


def test_recording_attention_does_not_recompute_the_projections(family):
    """Captured q, k, v are the processor's own projections: one call each per forward."""
    kind, model, probe, inputs = family
    projections = [
        module
        for name, module in model.named_modules()
        if name.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v")
    ]
    calls = {"plain": 0, "captured": 0}
    mode = ["plain"]

    def count(*_):
        calls[mode[0]] += 1

    handles = [m.register_forward_hook(count) for m in projections]
    try:
        forward(model, inputs)
        mode[0] = "captured"
        with torch.no_grad(), probe.capture() as cache:
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    assert calls["plain"] > 0 and calls["captured"] == calls["plain"]
    attn = next(iter(probe.attention_heads))
    rows = cache[f"{attn}.pattern"].sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5)


def test_names_follow_the_order_modules_finish(family):
    kind, model, probe, inputs = family
    owners = {}
    for name, module in probe._map.modules.items():
        owners.setdefault(module, []).append(name)
    fired: list[str] = []
    handles = [m.register_forward_hook(lambda m, a, o: fired.extend(owners[m])) for m in owners]
    try:
        forward(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    assert fired == [n for n in probe.hook_points if n in probe._map.modules]
    for name in probe.hook_points:  # every path leads to the module behind the name
        point = probe._map.points[name]
        if point.kind != "skip":
            assert model.get_submodule(probe.module_path(name)) is point.module, name


def test_layer_groups_cover_every_hook_point_once(family):
    kind, model, probe, inputs = family
    groups = probe.layer_groups
    # a U-Net's encoder / bottleneck / decoder groups; a transformer's blocks by depth
    expected = LAYER_GROUPS if hasattr(model, "down_blocks") else TRANSFORMER_LAYER_GROUPS
    assert list(groups) == list(probe.group_order) == list(expected)
    grouped = [n for names in groups.values() for n in names]
    ungrouped = {n for n in probe.hook_points if probe.group_of(n) is None}
    assert sorted(grouped) == sorted(set(probe.hook_points) - ungrouped)
    assert ungrouped <= {"time_emb", "adaln"}
    if kind == "dit":  # 8 blocks split by array_split into 3 groups: 3, 3, 2
        blocks = {
            g: sorted({n.split(".")[1] for n in v if n.startswith("block.")})
            for g, v in groups.items()
        }
        assert list(blocks.values()) == [["0", "1", "2"], ["3", "4", "5"], ["6", "7"]]


def test_patterns_are_row_stochastic_and_match_their_keys(family):
    kind, model, probe, inputs = family
    _, cache = probe.run_with_cache(**_call(inputs), names="*.pattern")
    batch = len(inputs["timestep"])
    keys = set(probe.attention_keys.values())
    assert keys & {"self", "joint"} and keys <= {"self", "encoder", "joint"}
    for attn, heads in probe.attention_heads.items():
        pattern = cache[f"{attn}.pattern"]
        assert pattern.shape[:2] == (batch, heads)
        if probe.attention_keys[attn] == "encoder":  # [batch, heads, queries, tokens]
            assert pattern.shape[-1] == inputs["encoder_hidden_states"].shape[1]
        elif probe.attention_keys[attn] == "joint":  # image and text tokens, both axes
            text = inputs["encoder_hidden_states"].shape[1]
            assert pattern.shape[-1] == pattern.shape[-2] == image_tokens(kind) + text
        else:
            assert pattern.shape[-1] == pattern.shape[-2]
        assert torch.allclose(pattern.sum(-1), torch.ones(()), atol=1e-5), attn


def test_an_exception_mid_forward_leaves_nothing(family):
    kind, model, probe, inputs = family
    before = processors(model)
    attn = list(probe.attention_heads)[-1]

    class Boom(ZeroAblation):
        def __call__(self, tensor, name):
            raise RuntimeError("boom")

    with (
        pytest.raises(RuntimeError, match="boom"),
        torch.no_grad(),
        probe.capture(),
        probe.intervene(HeadAblation(attn, 0), Boom(attn)),
    ):
        model(**inputs)
    assert_clean(model, before)
    assert probe._registry.empty


def interventions_for(probe: Probe, attn: str, cache) -> list:
    """One intervention of every kind on attention ``attn`` or its sites."""
    z = cache[f"{attn}.z"]
    out = [
        ZeroAblation(attn),
        MeanAblation(attn, cache[attn].mean(0)),
        ResampleAblation(attn, cache[attn][:1]),
        FeatureScaling(f"{attn}.v", 0.5),
        Patch(f"{attn}.pattern", cache[f"{attn}.pattern"].flip(0)),
        HeadAblation(attn, 1),
        HeadAblation(attn, 0, mode="mean", mean=z.mean(0) + 1),
        AttentionPerturbation(attn, kind="uniform", head=0),
        AttentionPerturbation(attn, kind="logit_noise", strength=2.0, seed=1),
        TokenAblation(attn, 1, site="logits"),
        TokenAblation(attn, [0, 2], site="v", head=1),
        TokenAblation(attn, 0, site="k"),
    ]
    return out


def _call(inputs: dict) -> dict:
    """``run_with_cache`` keywords: the sample positional as ``x_t``, ``t`` from timestep."""
    rest = dict(inputs)
    sample = rest.pop("sample", None)
    sample = rest.pop("hidden_states") if sample is None else sample
    return {"x_t": sample, "t": rest.pop("timestep"), **rest}


@pytest.mark.parametrize("which", ["self", "cross", "joint"])
def test_interventions_change_only_what_follows_and_replay_equals_full(family, which):
    kind, model, probe, inputs = family
    attns = [a for a in probe.attention_heads if a.endswith(f".{which}")]
    if not attns:
        pytest.skip(f"{kind} has no {which}-attention")
    attn = attns[len(attns) // 2]
    before = processors(model)
    upstream = probe.hook_points[: probe.hook_points.index(attn)]
    upstream = [n for n in upstream if not n.startswith("skip.")]  # read in the decoder
    with torch.no_grad():
        with probe.record() as record, probe.capture() as clean:
            base = model(**inputs).sample
        for intervention in interventions_for(probe, attn, clean):
            with probe.intervene(intervention), probe.capture() as cache:
                full = model(**inputs).sample
            with probe.intervene(intervention, replay=record):
                fast = model(**inputs).sample
            assert torch.equal(full, fast), intervention
            assert not torch.equal(full, base), intervention
            for name in upstream:
                assert torch.equal(cache[name], clean[name]), (intervention, name)
            if isinstance(intervention, HeadAblation):  # the other heads untouched
                other = 1 - intervention.head
                assert torch.equal(cache[f"{attn}.z"][:, other], clean[f"{attn}.z"][:, other])
    assert_clean(model, before)


def test_a_replay_refuses_other_conditioning(family):
    kind, model, probe, inputs = family
    condition = "encoder_hidden_states" if kind != "dit" else "class_labels"
    other = {**inputs, condition: inputs[condition].flip(0)}
    attn = list(probe.attention_heads)[-1]
    with torch.no_grad():
        with probe.record() as record:
            model(**inputs)
        with (
            pytest.raises(ValueError, match="another input"),
            probe.intervene(HeadAblation(attn, 0), replay=record),
        ):
            model(**other)
    assert_clean(model)
