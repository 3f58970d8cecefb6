"""Batched activation patching equals single runs; attribution patching estimates it."""

import pytest
import torch
from models import make_model, model_inputs
from unets import assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import Patch, Probe
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


def _pair(kind: str):
    """A model, clean inputs and slightly corrupted ones (the sample, or FLUX's text)."""
    if kind == "unet":
        model = make_unet("paper")
        x, t = inputs(2)
        noise = inputs(2, seed=7)[0]
        return model, {"sample": x, "timestep": t}, {"sample": x + 0.05 * noise, "timestep": t}
    model, clean = make_model("flux"), model_inputs("flux")
    text = clean["encoder_hidden_states"]
    noise = torch.randn(text.shape, generator=torch.Generator().manual_seed(3))
    return model, clean, {**clean, "encoder_hidden_states": text + 0.05 * noise}


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
