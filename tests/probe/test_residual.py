"""The ResNet residual-branch site ``<resnet>.residual``: conv2's output, shortcut intact."""

import pytest
import torch
from unets import ARCHITECTURES, assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import (
    FeatureScaling,
    MeanAblation,
    Patch,
    Probe,
    ResampleAblation,
    ZeroAblation,
)

# a down resnet (identity shortcut), a mid resnet and an up resnet (1x1 conv shortcut)
RESNETS = ["down.1.resnet.0", "mid.resnet.1", "up.2.resnet.1"]


def block_inputs(unet, probe, name, x, t):
    """(input, temb) the resnet behind ``name`` receives in a plain forward."""
    seen = {}
    module = unet.get_submodule(probe.module_path(name))
    handle = module.register_forward_pre_hook(lambda m, a: seen.setdefault("args", a))
    try:
        with torch.no_grad():
            unet(x, t)
    finally:
        handle.remove()
    return module, seen["args"]


def shortcut(resnet, hidden: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hidden if resnet.conv_shortcut is None else resnet.conv_shortcut(hidden)


@pytest.mark.parametrize("name", RESNETS)
def test_residual_is_the_branch_added_to_the_shortcut(unet, name):
    probe = Probe(unet)
    x, t = inputs()
    resnet, (hidden, _) = block_inputs(unet, probe, name, x, t)
    _, cache = probe.run_with_cache(x, t, names=[name, f"{name}.residual"])
    rebuilt = (shortcut(resnet, hidden) + cache[f"{name}.residual"]) / resnet.output_scale_factor
    assert torch.equal(cache[name], rebuilt)
    assert probe.group_of(f"{name}.residual") == probe.group_of(name)
    assert f"{name}.residual" in probe.residuals and name in probe.resnets


@pytest.mark.parametrize("name", RESNETS)
def test_ablating_the_branch_keeps_the_shortcut(unet, name):
    probe = Probe(unet)
    before = processors(unet)
    x, t = inputs()
    branch = f"{name}.residual"
    resnet, (hidden, _) = block_inputs(unet, probe, name, x, t)
    _, clean = probe.run_with_cache(x, t, names=[name, branch, "conv_in"])
    scale = resnet.output_scale_factor

    with torch.no_grad(), probe.intervene(ZeroAblation(branch)), probe.capture(name) as zero:
        unet(x, t)
    assert torch.equal(zero[name], shortcut(resnet, hidden) / scale)

    mean = clean[branch].mean(dim=0)
    with torch.no_grad(), probe.intervene(MeanAblation(branch, mean)), probe.capture(name) as mean_:
        unet(x, t)
    expected = clean[name] - clean[branch] / scale + mean.expand_as(clean[branch]) / scale
    assert torch.allclose(mean_[name], expected, atol=1e-5)
    assert_clean(unet, before)


def test_every_intervention_kind_on_a_branch_changes_only_what_follows(unet):
    probe = Probe(unet)
    x, t = inputs()
    branch = "down.1.resnet.0.residual"
    _, clean = probe.run_with_cache(x, t, names=["down.0.downsample", branch, "down.1.resnet.0"])
    activation = clean[branch]
    for intervention, edited in [
        (FeatureScaling(branch, 0.5), activation * 0.5),
        (Patch(branch, activation.flip(0)), activation.flip(0)),
        (ResampleAblation(branch, activation[:1]), activation[:1].expand_as(activation)),
    ]:
        names = ["down.0.downsample", branch, "down.1.resnet.0"]
        with torch.no_grad(), probe.intervene(intervention), probe.capture(names) as cache:
            unet(x, t)
        assert torch.equal(cache[branch], edited), intervention
        assert torch.equal(cache["down.0.downsample"], clean["down.0.downsample"])
        assert not torch.allclose(cache["down.1.resnet.0"], clean["down.1.resnet.0"])


@pytest.mark.parametrize("kind", ["attn_everywhere", "resnet_samplers", "skip_blocks"])
def test_branch_interventions_replay_like_full_runs(kind):
    unet = make_unet(kind)
    probe = Probe(unet)
    assert len(probe.residuals) == len(probe.resnets)
    x, t = inputs()
    branch = probe.residuals[len(probe.residuals) // 2]
    means = probe.reference_means(x, t, names=branch)
    with torch.no_grad():
        with probe.record() as clean:
            base = unet(x, t).sample
        with probe.intervene(MeanAblation(branch, means[branch])):
            full = unet(x, t).sample
        with probe.intervene(MeanAblation(branch, means[branch]), replay=clean):
            fast = unet(x, t).sample
    assert torch.equal(full, fast) and not torch.equal(full, base)
    assert_clean(unet)


def test_residual_sites_exist_on_every_architecture():
    for kind in ARCHITECTURES:
        probe = Probe(make_unet(kind))
        assert [r.removesuffix(".residual") for r in probe.residuals] == probe.resnets, kind
