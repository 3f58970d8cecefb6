"""Batched activation patching equals single runs; attribution patching estimates it."""

import pytest
import torch
from models import make_model, model_inputs
from unets import assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import Head, HeadPatch, Patch, Probe
from diffusion_circuits.probe.patching import (
    activation_patching,
    attribution_patching,
    batched_patches,
    rank_agreement,
    repeat_batch,
)


def per_item_mse(target: torch.Tensor):
    return lambda eps: (eps - target).pow(2).flatten(1).mean(1)


def test_row_patches_in_one_forward_equal_single_runs():
    unet = make_unet("paper")
    probe = Probe(unet)
    x, t = inputs(2)
    corrupt, _ = inputs(2, seed=7)
    names = ["down.1.resnet.0", "mid.attn.0.pattern", "skip.3", "up.0.attn.1.z"]
    with torch.no_grad():
        _, donor = probe.run_with_cache(corrupt, t, names)
        singles = []
        for name in names:
            with probe.intervene(Patch(name, donor[name])):
                singles.append(unet(x, t).sample)
        clean = {"sample": x, "timestep": t}
        patches = batched_patches([(n, donor[n]) for n in names], batch=2)
        with probe.intervene(*patches):
            batched = unet(**repeat_batch(clean, len(names))).sample
    for k, single in enumerate(singles):
        assert torch.allclose(batched[2 * k : 2 * k + 2], single, atol=1e-5), names[k]
        assert not torch.allclose(single, unet(x, t).sample, atol=1e-4), names[k]
    assert_clean(unet)


def test_a_row_patch_checks_the_rows_shape():
    patch = Patch("mid", torch.zeros(2, 3), rows=slice(0, 2))
    assert torch.equal(patch(torch.ones(4, 3), "mid")[2:], torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"rows slice\(0, 2, None\) has shape \(2, 3\)"):
        Patch("mid", torch.zeros(2, 3), rows=slice(0, 2))(torch.ones(4, 4), "mid")


def test_repeat_batch_leaves_position_ids_alone():
    flux = model_inputs("flux", batch=2)
    repeated = repeat_batch(flux, 3)
    assert repeated["hidden_states"].shape[0] == 6 and repeated["timestep"].shape == (6,)
    assert torch.equal(repeated["img_ids"], flux["img_ids"])
    assert torch.equal(repeated["hidden_states"][4:], flux["hidden_states"])


@pytest.mark.parametrize("per_forward", [1, 3])
def test_sweep_equals_single_patches_whatever_the_packing(per_forward):
    unet = make_unet("paper")
    probe = Probe(unet)
    x, t = inputs(2)
    corrupt, _ = inputs(2, seed=7)
    metric = per_item_mse(torch.zeros_like(x))
    names = probe.residuals[:4] + ["mid.attn.0.z"]
    sweep = activation_patching(
        probe,
        names,
        {"sample": x, "timestep": t},
        {"sample": corrupt, "timestep": t},
        metric,
        components_per_forward=per_forward,
    )
    _, donor = probe.run_with_cache(corrupt, t, names)
    with torch.no_grad():
        base = metric(unet(x, t).sample)
        for name in names:
            with probe.intervene(Patch(name, donor[name])):
                expected = float((metric(unet(x, t).sample) - base).mean())
            assert sweep[name] == pytest.approx(expected, rel=1e-4, abs=1e-7), name
    assert list(sweep) == names


def _pair(kind: str, strength: float = 0.05):
    """A model, clean inputs and corrupted ones (noise of ``strength`` added to the
    sample, or to FLUX's text): slightly by default."""
    if kind == "unet":
        model = make_unet("paper")
        x, t = inputs(2)
        noise = inputs(2, seed=7)[0]
        return model, {"sample": x, "timestep": t}, {"sample": x + strength * noise, "timestep": t}
    model, clean = make_model("flux"), model_inputs("flux")
    text = clean["encoder_hidden_states"]
    noise = torch.randn(text.shape, generator=torch.Generator().manual_seed(3))
    return model, clean, {**clean, "encoder_hidden_states": text + strength * noise}


COMPONENT_ROLES = ("resnet", "residual", "attention", "block", "ff", "sampler", "skip", "output")


@pytest.mark.parametrize("kind", ["unet", "flux"])
def test_attribution_patching_orders_components_like_exact_patching(kind):
    model, clean, corrupt = _pair(kind)
    probe = Probe(model)
    before = processors(model)
    metric = per_item_mse(torch.zeros_like(next(iter(clean.values()))))
    names = [n for n in probe.hook_points if probe.role_of(n) in COMPONENT_ROLES]
    exact = activation_patching(probe, names, clean, corrupt, metric, components_per_forward=8)
    estimate = attribution_patching(probe, names, clean, corrupt, metric)
    assert list(estimate) == names and len(names) > 15
    assert rank_agreement(exact, estimate) > (0.8 if kind == "unet" else 0.95)
    assert_clean(model, before)


@pytest.mark.parametrize("kind", ["unet", "flux"])
def test_attribution_patching_is_exact_where_the_metric_is_linear(kind):
    """The output is the metric's own input: a linear metric makes first order exact."""
    model, clean, corrupt = _pair(kind)
    probe = Probe(model)
    sample = next(iter(clean.values()))
    weights = torch.randn(sample.shape[1:], generator=torch.Generator().manual_seed(5))
    metric = lambda eps: (eps * weights).flatten(1).sum(1)  # noqa: E731
    names = [probe.output_point]
    exact = activation_patching(probe, names, clean, corrupt, metric)
    estimate = attribution_patching(probe, names, clean, corrupt, metric)
    assert exact[names[0]] != 0
    assert estimate[names[0]] == pytest.approx(exact[names[0]], rel=1e-3)


def test_rank_agreement_refuses_mismatched_sweeps():
    with pytest.raises(ValueError, match="same components"):
        rank_agreement({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})
    assert rank_agreement({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 3.0, "b": 2.0, "c": 1.0}) == -1.0


@pytest.mark.parametrize("kind", ["unet", "flux"])
def test_head_sweep_in_batched_forwards_equals_one_run_per_head(kind):
    """Two heads of one attention and heads of different attentions share forwards."""
    model, clean, corrupt = _pair(kind, strength=1.0)
    # float64: a head's effect is ~1e-4 of the metric, where float32 rounding would
    # show; upcast_softmax off, or the explicit path's softmax would still be float32
    model = model.double()
    for module in model.modules():
        if hasattr(module, "upcast_softmax"):
            module.upcast_softmax = False
    clean, corrupt = ({k: _double(v) for k, v in inputs.items()} for inputs in (clean, corrupt))
    probe = Probe(model)
    heads = [h for h in probe.heads if h.index < 2][:5]
    metric = per_item_mse(torch.zeros_like(next(iter(clean.values()))))
    sweep = activation_patching(
        probe, [h.name for h in heads], clean, corrupt, metric, components_per_forward=3
    )
    assert list(sweep) == [h.name for h in heads]
    with torch.no_grad(), probe.capture("*.z") as donor:
        model(**corrupt)
    with torch.no_grad():
        base = metric(model(**clean).sample)
        for head in heads:
            z = donor[f"{head.attention}.z"][:, head.index]
            with probe.intervene(HeadPatch(head.attention, head.index, z)):
                expected = float((metric(model(**clean).sample) - base).mean())
            assert expected != 0, head.name
            assert sweep[head.name] == pytest.approx(expected, rel=1e-8), head.name
    assert_clean(model)


def _double(value):
    return value.double() if value.is_floating_point() else value


def test_head_effects_are_exact_and_hand_checkable_where_the_metric_is_linear():
    """Metric linear in an attention's output: patching head h moves that output by
    W_out[:, h] @ (z_corrupt - z_clean)_h, so exact patching and AtP both equal it."""
    model, clean, corrupt = _pair("unet")
    probe = Probe(model)
    attention = "mid.attn.0"
    module = model.get_submodule(probe.module_path(attention))

    def attention_output(inputs):  # a forward whose output is the attention's
        with probe.capture(attention, grad=True) as cache:
            model(**inputs)
        return cache[attention]

    with torch.no_grad():
        shape = attention_output(clean).shape
        _, z_clean = probe.run_with_cache(clean["sample"], clean["timestep"], f"{attention}.z")
        _, z_corrupt = probe.run_with_cache(
            corrupt["sample"], corrupt["timestep"], f"{attention}.z"
        )
    weights = torch.randn(shape[1:], generator=torch.Generator().manual_seed(5))
    metric = lambda out: (out * weights).flatten(1).sum(1)  # noqa: E731
    heads = [h.name for h in probe.heads if h.attention == attention]
    exact = activation_patching(
        probe, heads, clean, corrupt, metric, components_per_forward=4, forward=attention_output
    )
    estimate = attribution_patching(probe, heads, clean, corrupt, metric, forward=attention_output)
    dim = module.to_out[0].in_features // module.heads
    for label in heads:
        h = Head.from_name(label).index
        dz = (z_corrupt[f"{attention}.z"] - z_clean[f"{attention}.z"])[:, h]  # [B, tokens, d]
        moved = dz @ module.to_out[0].weight[:, h * dim : (h + 1) * dim].T  # [B, tokens, C]
        moved = moved.transpose(1, 2).reshape(shape) / module.rescale_output_factor
        by_hand = float((moved * weights).flatten(1).sum(1).mean().detach())
        assert by_hand != 0
        assert exact[label] == pytest.approx(by_hand, rel=1e-3, abs=1e-6), label
        assert estimate[label] == pytest.approx(by_hand, rel=1e-3, abs=1e-6), label


@pytest.mark.parametrize("kind", ["unet", "flux"])
def test_attribution_patching_orders_heads_like_exact_patching(kind):
    model, clean, corrupt = _pair(kind)
    probe = Probe(model)
    metric = per_item_mse(torch.zeros_like(next(iter(clean.values()))))
    heads = [h.name for h in probe.heads]
    exact = activation_patching(probe, heads, clean, corrupt, metric, components_per_forward=8)
    estimate = attribution_patching(probe, heads, clean, corrupt, metric)
    assert list(estimate) == heads and len(heads) >= 8
    assert rank_agreement(exact, estimate) > 0.8
    assert_clean(model)


def test_a_head_sweep_refuses_heads_that_do_not_exist():
    probe = Probe(make_unet("paper"))
    x, t = inputs(2)
    clean = {"sample": x, "timestep": t}
    metric = per_item_mse(torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"mid.attn.0.head.99: mid.attn.0 has \d+ heads"):
        attribution_patching(probe, ["mid.attn.0.head.99"], clean, clean, metric)
    with pytest.raises(ValueError, match="unknown hook point"):
        activation_patching(probe, [Head("mid.atn.0", 0)], clean, clean, metric)


class _Net(torch.nn.Module):
    """A model with a submodule at path ``net.head.0``: a head label's shape."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Module()
        self.net.head = torch.nn.ModuleList([torch.nn.Linear(3, 1)])

    def forward(self, x):
        return self.net.head[0](x)


def test_a_module_path_that_reads_like_a_head_label_stays_a_hook_point():
    model = _Net()
    probe = Probe(model)
    assert "net.head.0" in probe.hook_points
    clean, corrupt = {"x": torch.ones(2, 3)}, {"x": torch.zeros(2, 3)}
    sweep = activation_patching(
        probe, ["net.head.0"], clean, corrupt, lambda y: y[:, 0], forward=lambda i: model(**i)
    )
    with torch.no_grad():
        expected = float((model(torch.zeros(2, 3)) - model(torch.ones(2, 3))).mean())
    assert sweep == {"net.head.0": pytest.approx(expected)}
