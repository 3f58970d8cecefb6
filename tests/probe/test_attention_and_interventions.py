import pytest
import torch

from conftest import assert_clean, inputs, make_unet
from diffusion_circuits.probe import (
    AttentionPerturbation,
    BottleneckCut,
    FeatureScaling,
    HeadAblation,
    MeanAblation,
    Patch,
    Probe,
    ResampleAblation,
    SkipCut,
    ZeroAblation,
)

ATTN = "up.0.attn.0"


def run(unet, probe, *interventions, names=None):
    x, t = inputs()
    with torch.no_grad(), probe.intervene(*interventions), probe.capture(names) as cache:
        eps = unet(x, t).sample
    return eps, cache


def test_patterns_are_distributions_that_reproduce_the_output(unet):
    probe = Probe(unet)
    _, cache = run(unet, probe)
    pattern, v, z = cache[f"{ATTN}.pattern"], cache[f"{ATTN}.v"], cache[f"{ATTN}.z"]
    assert pattern.shape == (3, 8, 16, 16)
    assert torch.allclose(pattern.sum(-1), torch.ones(3, 8, 16), atol=1e-5)
    assert torch.allclose(pattern @ v, z, atol=1e-6)
    # z through the output projection plus the residual is the attention's output.
    module = unet.up_blocks[0].attentions[0]
    merged = z.permute(0, 2, 1, 3).reshape(3, 16, -1)
    out = module.to_out[0](merged).transpose(1, 2).reshape(3, -1, 4, 4)
    assert torch.allclose(out + cache["up.0.resnet.0"], cache[ATTN], atol=1e-5)


def test_explicit_path_without_change_matches_the_fused_kernel(unet):
    probe = Probe(unet)
    clean, _ = run(unet, probe)
    identity, _ = run(unet, probe, AttentionPerturbation(ATTN, "temperature", strength=1.0))
    assert torch.allclose(clean, identity, atol=1e-5)
    assert_clean(unet)


def test_head_ablation_acts_only_through_that_head(unet):
    probe = Probe(unet)
    _, clean = run(unet, probe, names=[f"{ATTN}.z", ATTN, "up.0.resnet.0"])
    _, ablated = run(
        unet, probe, HeadAblation(ATTN, head=3), names=[f"{ATTN}.z", ATTN, "up.0.resnet.0"]
    )
    others = [h for h in range(8) if h != 3]
    assert torch.equal(clean[f"{ATTN}.z"][:, others], ablated[f"{ATTN}.z"][:, others])
    assert (ablated[f"{ATTN}.z"][:, 3] == 0).all()
    weight = unet.up_blocks[0].attentions[0].to_out[0].weight  # [C, heads*head_dim]
    head_slice = weight[:, 3 * 8 : 4 * 8]
    expected = -(clean[f"{ATTN}.z"][:, 3] @ head_slice.T)  # [B, queries, C]
    change = (ablated[ATTN] - clean[ATTN]).flatten(2).transpose(1, 2)
    assert torch.allclose(change, expected, atol=1e-5)


def test_attention_perturbations(unet):
    probe = Probe(unet)
    _, uniform = run(
        unet, probe, AttentionPerturbation(ATTN, "uniform", head=2), names=f"{ATTN}.pattern"
    )
    pattern = uniform[f"{ATTN}.pattern"]
    assert torch.allclose(pattern[:, 2], torch.full_like(pattern[:, 2], 1 / 16))
    assert not torch.allclose(pattern[:, 1], torch.full_like(pattern[:, 1], 1 / 16))
    noisy_a, _ = run(unet, probe, AttentionPerturbation(ATTN, "logit_noise", strength=2.0, seed=5))
    noisy_b, _ = run(unet, probe, AttentionPerturbation(ATTN, "logit_noise", strength=2.0, seed=5))
    assert torch.equal(noisy_a, noisy_b)  # common random numbers
    _, clean = run(unet, probe, names=f"{ATTN}.pattern")
    _, hot = run(
        unet,
        probe,
        AttentionPerturbation(ATTN, "temperature", strength=4.0),
        names=f"{ATTN}.pattern",
    )
    entropy = lambda p: -(p * p.clamp_min(1e-12).log()).sum(-1).mean()  # noqa: E731
    assert entropy(hot[f"{ATTN}.pattern"]) > entropy(clean[f"{ATTN}.pattern"])


def test_mean_ablation_with_the_mean_of_identical_images_changes_nothing(unet):
    probe = Probe(unet)
    x, t = inputs(batch=1)
    repeated = x.repeat(4, 1, 1, 1)
    times = t.repeat(4)
    means = probe.reference_means(repeated, times, names=["mid", "down.1.resnet.0", f"{ATTN}.z"])
    with torch.no_grad():
        clean = unet(x, t).sample
        with probe.intervene(
            MeanAblation("mid", means["mid"]),
            MeanAblation("down.1.resnet.0", means["down.1.resnet.0"]),
            HeadAblation(ATTN, 2, mode="mean", mean=means[f"{ATTN}.z"]),
        ):
            same = unet(x, t).sample
        with probe.intervene(ZeroAblation("mid")):
            different = unet(x, t).sample
    assert torch.allclose(clean, same, atol=1e-5)
    assert not torch.allclose(clean, different, atol=1e-3)


def test_skip_cut_changes_only_the_decoder(unet):
    probe = Probe(unet)
    encoder = ["conv_in", "down.0.resnet.0", "down.1.resnet.0", "down.2.resnet.0", "mid"]
    clean_eps, clean = run(unet, probe, names=encoder + ["skip.1"])
    cut_eps, cut = run(unet, probe, SkipCut(1), names=encoder + ["skip.1"])
    for name in encoder:
        assert torch.equal(clean[name], cut[name])
    assert (cut["skip.1"] == 0).all() and not (clean["skip.1"] == 0).all()
    assert not torch.allclose(clean_eps, cut_eps)
    bottleneck_eps, bottleneck = run(unet, probe, BottleneckCut(), names=["mid", "down.2.resnet.0"])
    assert (bottleneck["mid"] == 0).all()
    assert torch.equal(bottleneck["down.2.resnet.0"], clean["down.2.resnet.0"])


def test_patching_and_resampling():
    model_a, model_b = make_unet(seed=0), make_unet(seed=1)
    probe_a, probe_b = Probe(model_a), Probe(model_b)
    x, t = inputs()
    eps_a, cache_a = probe_a.run_with_cache(x, t, names=["mid", "conv_out"])
    eps_b, cache_b = probe_b.run_with_cache(x, t, names=["mid", "conv_out"])
    with torch.no_grad():
        with probe_a.intervene(Patch("mid", cache_a["mid"])):
            assert torch.equal(model_a(x, t).sample, eps_a)
        with probe_a.intervene(Patch("conv_out", cache_b["conv_out"])):
            assert torch.equal(model_a(x, t).sample, eps_b)
        with probe_a.intervene(Patch("mid", cache_b["mid"])):
            assert not torch.allclose(model_a(x, t).sample, eps_a)
        with (
            pytest.raises(ValueError, match="patch for mid has shape"),
            probe_a.intervene(Patch("mid", cache_b["mid"][:1])),
        ):
            model_a(x, t)
        source = torch.stack([cache_a["mid"][0]] * 5)
        generator = torch.Generator().manual_seed(0)
        with (
            probe_a.intervene(ResampleAblation("mid", source, generator)),
            probe_a.capture("mid") as cache,
        ):
            model_a(x, t)
        assert all(torch.equal(row, cache_a["mid"][0]) for row in cache["mid"])
        with probe_a.intervene(FeatureScaling("mid", 2.0)), probe_a.capture("mid") as cache:
            model_a(x, t)
        assert torch.allclose(cache["mid"], 2 * cache_a["mid"])
    assert_clean(model_a)
