"""Interventions: each does what it says, only where it says, and leaves nothing behind."""

import pytest
import torch
from unets import assert_clean, inputs, make_unet, processors

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
ENCODER = ["conv_in", "down.0.resnet.0", "down.0.downsample", "down.1.resnet.0"] + [
    "down.1.downsample",
    "down.2.resnet.0",
]


def run(unet, *interventions, names=None, batch=3):
    x, t = inputs(batch)
    with torch.no_grad(), Probe(unet).intervene(*interventions), Probe(unet).capture(names) as c:
        eps = unet(x, t).sample
    return eps, c


def test_zero_ablation_of_the_bottleneck_changes_only_what_follows(unet):
    clean_eps, clean = run(unet)
    eps, ablated = run(unet, ZeroAblation("mid"))
    assert (ablated["mid"] == 0).all()
    for name in [*ENCODER, "mid.resnet.1"]:
        assert torch.equal(ablated[name], clean[name])
    assert not torch.allclose(ablated["up.0.resnet.0"], clean["up.0.resnet.0"])
    assert not torch.allclose(eps, clean_eps, atol=1e-3)


def test_mean_ablation_with_the_mean_of_one_repeated_image_changes_nothing(unet):
    probe = Probe(unet)
    x, t = inputs(batch=1)
    means = probe.reference_means(x.repeat(4, 1, 1, 1), t.repeat(4), ["mid", "skip.3", f"{ATTN}.z"])
    with torch.no_grad():
        clean = unet(x, t).sample
        with probe.intervene(
            MeanAblation("mid", means["mid"]),
            SkipCut(3, mode="mean", mean=means["skip.3"]),
            HeadAblation(ATTN, 2, mode="mean", mean=means[f"{ATTN}.z"]),
        ):
            same = unet(x, t).sample
        with probe.intervene(MeanAblation("mid", means["mid"] + 1)):
            shifted = unet(x, t).sample
    assert torch.allclose(clean, same, atol=1e-5)
    assert not torch.allclose(clean, shifted, atol=1e-3)
    with pytest.raises(ValueError, match=r"mean for mid has shape \(3,\); expected"):
        run(unet, MeanAblation("mid", torch.zeros(3)))
    assert_clean(unet)


def test_resample_ablation_draws_reference_items_with_the_generator(unet):
    _, reference = run(unet, names="mid", batch=4)
    source = reference["mid"]
    _, resampled = run(
        unet, ResampleAblation("mid", source, torch.Generator().manual_seed(7)), names="mid"
    )
    drawn = torch.randint(4, (3,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(resampled["mid"], source[drawn])
    with pytest.raises(ValueError, match="source activations for mid have item shape"):
        run(unet, ResampleAblation("mid", source[:, :2]))


def test_feature_scaling_and_the_order_of_composed_interventions(unet):
    clean_eps, clean = run(unet, names="mid")
    eps, _ = run(unet, FeatureScaling("mid", 1.0))
    assert torch.equal(eps, clean_eps)
    _, scaled = run(unet, FeatureScaling("mid", 2.0), FeatureScaling("mid", 3.0), names="mid")
    assert torch.allclose(scaled["mid"], 6 * clean["mid"])
    other = torch.ones_like(clean["mid"])
    _, patch_then_scale = run(unet, Patch("mid", other), FeatureScaling("mid", 2.0), names="mid")
    _, scale_then_patch = run(unet, FeatureScaling("mid", 2.0), Patch("mid", other), names="mid")
    assert (patch_then_scale["mid"] == 2).all() and (scale_then_patch["mid"] == 1).all()


def test_patching_from_the_same_run_and_from_another_model():
    model_a, model_b = make_unet(seed=0), make_unet(seed=1)
    probe_a = Probe(model_a)
    x, t = inputs()
    eps_a, cache_a = probe_a.run_with_cache(x, t)
    eps_b, cache_b = Probe(model_b).run_with_cache(x, t, names=["mid", "conv_out"])
    clean_patches = [Patch(n, cache_a[n]) for n in ("mid", "skip.2", f"{ATTN}.pattern", ATTN)]
    with torch.no_grad():
        with probe_a.intervene(*clean_patches):
            assert torch.equal(model_a(x, t).sample, eps_a)
        with probe_a.intervene(Patch("conv_out", cache_b["conv_out"])):
            assert torch.equal(model_a(x, t).sample, eps_b)
        with probe_a.intervene(Patch("mid", cache_b["mid"])), probe_a.capture("mid") as cache:
            assert not torch.allclose(model_a(x, t).sample, eps_a)
        assert torch.equal(cache["mid"], cache_b["mid"])
        with (
            pytest.raises(ValueError, match=r"patch for mid has shape \(1, 64, 4, 4\)"),
            probe_a.intervene(Patch("mid", cache_b["mid"][:1])),
        ):
            model_a(x, t)
    assert_clean(model_a)


def test_skip_cut_acts_where_the_decoder_consumes_the_skip(unet):
    # skip.2 (down.0.downsample) is the first of up block 1's two skips; up block b pops
    # from the end, so its second resnet (up.1.resnet.1) concatenates it
    point = Probe(unet)._map.points["skip.2"]
    assert (point.consumer, point.position) == (1, 0)
    clean_eps, clean = run(unet)
    eps, cut = run(unet, SkipCut(2))
    for name in [*ENCODER, "mid", "up.0.upsample", "up.1.resnet.0", "skip.3"]:
        assert torch.equal(cut[name], clean[name]), name  # before the consumer: untouched
    assert (cut["skip.2"] == 0).all() and torch.equal(cut["down.0.downsample"], clean["skip.2"])
    assert not torch.allclose(cut["up.1.resnet.1"], clean["up.1.resnet.1"])
    assert not torch.allclose(eps, clean_eps)
    mean = clean["skip.2"].mean(dim=0)
    _, mean_cut = run(unet, SkipCut(2, mode="mean", mean=mean), names="skip.2")
    assert torch.equal(mean_cut["skip.2"], mean.expand(3, -1, -1, -1))


def test_bottleneck_cut_is_the_mid_output(unet):
    _, clean = run(unet, names=["mid", "down.2.resnet.0", "skip.5"])
    _, zero = run(unet, BottleneckCut(), names=["mid", "down.2.resnet.0", "skip.5"])
    assert (zero["mid"] == 0).all()
    assert torch.equal(zero["down.2.resnet.0"], clean["down.2.resnet.0"])
    assert torch.equal(zero["skip.5"], clean["skip.5"])
    mean = torch.full(clean["mid"].shape[1:], 0.5)
    _, half = run(unet, BottleneckCut(mode="mean", mean=mean), names="mid")
    assert (half["mid"] == 0.5).all()


def test_head_ablation_acts_only_through_that_head(unet):
    names = [f"{ATTN}.z", ATTN]
    _, clean = run(unet, FeatureScaling(f"{ATTN}.z", 1.0), names=names)  # explicit path too
    _, ablated = run(unet, HeadAblation(ATTN, head=3), names=names)
    others = [h for h in range(8) if h != 3]
    assert torch.equal(ablated[f"{ATTN}.z"][:, others], clean[f"{ATTN}.z"][:, others])
    assert (ablated[f"{ATTN}.z"][:, 3] == 0).all()
    weight = unet.up_blocks[0].attentions[0].to_out[0].weight  # [channels, heads * head_dim]
    expected = -(clean[f"{ATTN}.z"][:, 3] @ weight[:, 24:32].T)  # [batch, queries, channels]
    change = (ablated[ATTN] - clean[ATTN]).flatten(2).transpose(1, 2)
    assert torch.allclose(change, expected, atol=1e-5)
    with pytest.raises(ValueError, match="head 8 out of range, up.0.attn.0 has 8 heads"):
        run(unet, HeadAblation(ATTN, head=8))
    with pytest.raises(ValueError, match="needs an attention hook point"):
        run(unet, HeadAblation("mid", head=0))


def scores(cache):
    q, k = cache[f"{ATTN}.q"], cache[f"{ATTN}.k"]
    return q @ k.transpose(-1, -2) / 8**0.5


def test_uniform_attention_on_one_head(unet):
    names = [f"{ATTN}.pattern"]
    _, clean = run(unet, names=names)
    _, uniform = run(unet, AttentionPerturbation(ATTN, "uniform", head=2), names=names)
    pattern = uniform[f"{ATTN}.pattern"]
    assert (pattern[:, 2] == 1 / 16).all()
    assert torch.equal(pattern[:, [0, 1, 3]], clean[f"{ATTN}.pattern"][:, [0, 1, 3]])


def test_logit_noise_and_temperature_worked_out_by_hand(unet):
    names = [f"{ATTN}.q", f"{ATTN}.k", f"{ATTN}.pattern"]
    noisy_eps, noisy = run(
        unet, AttentionPerturbation(ATTN, "logit_noise", strength=2.0, seed=5), names=names
    )
    noise = torch.randn(3, 8, 16, 16, generator=torch.Generator().manual_seed(5))
    expected = torch.softmax(scores(noisy) + 2.0 * noise, dim=-1)
    assert torch.allclose(noisy[f"{ATTN}.pattern"], expected, atol=1e-6)
    again, _ = run(unet, AttentionPerturbation(ATTN, "logit_noise", strength=2.0, seed=5))
    assert torch.equal(noisy_eps, again)  # common random numbers
    by_generator, _ = run(
        unet,
        AttentionPerturbation(
            ATTN, "logit_noise", strength=2.0, generator=torch.Generator().manual_seed(5)
        ),
    )
    assert torch.equal(by_generator, noisy_eps)
    _, hot = run(unet, AttentionPerturbation(ATTN, "temperature", strength=4.0), names=names)
    assert torch.allclose(hot[f"{ATTN}.pattern"], torch.softmax(scores(hot) / 4, -1), atol=1e-6)
    with pytest.raises(ValueError, match="temperature strength must be > 0"):
        AttentionPerturbation(ATTN, "temperature", strength=0.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        AttentionPerturbation(ATTN, "dropout")


def test_skip_block_downsample_ablation_reaches_the_skip_too():
    unet = make_unet("skip_blocks")
    probe = Probe(unet)
    source = next(n for n in probe.hook_points if probe.skip_source(n) == "down.0.downsample")
    _, cache = run(unet, ZeroAblation("down.0.downsample"), names=["down.1.resnet.0", source])
    assert (cache[source] == 0).all()
    with torch.no_grad():
        temb = unet.time_embedding(unet.time_proj(inputs()[1]))
        expected = unet.down_blocks[1].resnets[0](torch.zeros(3, 32, 8, 8), temb)
    assert torch.equal(cache["down.1.resnet.0"], expected)


def test_bad_interventions_fail_clearly_and_leave_nothing(unet):
    before = processors(unet)

    class Exploding(ZeroAblation):
        def __call__(self, tensor, name):
            raise RuntimeError("boom")

    class WrongShape(ZeroAblation):
        def __call__(self, tensor, name):
            return tensor[:1]

    for bad, error, message in (
        (Exploding(f"{ATTN}.z"), RuntimeError, "boom"),
        (Exploding("skip.1"), RuntimeError, "boom"),
        (WrongShape("mid"), ValueError, r"WrongShape\('mid'\) returned \(1, 64, 4, 4\) at mid"),
        (ZeroAblation("mid.atention.0"), ValueError, "unknown hook point 'mid.atention.0'; did"),
        (object(), ValueError, "an intervention needs a .name"),
    ):
        with pytest.raises(error, match=message):
            run(unet, ZeroAblation("conv_in"), bad)
        assert_clean(unet, before)
    with pytest.raises(ValueError, match="mode must be one of"):
        SkipCut(1, mode="noise")
    with pytest.raises(ValueError, match="mode='mean' needs mean="):
        HeadAblation(ATTN, 0, mode="mean")
