"""Capture: transparency, contents, name filters, reductions, nesting and cleanup."""

import pytest
import torch
from unets import assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import FeatureScaling, Probe, ZeroAblation, run_with_cache
from diffusion_circuits.probe.hooks import registry_for


def test_full_capture_is_bit_identical_and_leaves_nothing(any_unet):
    before = processors(any_unet)
    x, t = inputs()
    with torch.no_grad():
        plain = any_unet(x, t).sample
        eps, cache = run_with_cache(any_unet, x, t)
    assert torch.equal(plain, eps)
    assert_clean(any_unet, before)
    probe = Probe(any_unet)
    assert set(cache) == set(probe.hook_points)  # everything
    for k, source in enumerate(probe._map.skip_sources):
        assert torch.equal(cache[f"skip.{k}"], cache[source])
    assert torch.equal(cache.timesteps, t)


def test_cached_values_are_the_module_outputs(unet):
    x, t = inputs()
    probe = Probe(unet)
    eps, cache = probe.run_with_cache(x, t)
    assert torch.equal(cache["conv_out"], eps)
    with torch.no_grad():
        conv_in = unet.conv_in(x)
        emb = unet.time_embedding(unet.time_proj(t))
        first = unet.down_blocks[0].resnets[0](conv_in, emb)
    assert torch.equal(cache["conv_in"], conv_in) and torch.equal(cache["time_emb"], emb)
    assert torch.equal(cache["down.0.resnet.0"], first)
    assert cache["mid.attn.0.out"] is cache["mid.attn.0"] and "mid.attn.0.out" in cache
    assert cache["up.0.attn.0.pattern"].shape == (3, 8, 16, 16)  # 4x4 tokens, 8 heads
    assert cache["up.0.attn.0.q"].shape == (3, 8, 16, 8)  # head_dim 8


def test_conv_out_is_copied_before_the_skip_sample_is_added_in_place():
    unet = make_unet("skip_blocks")
    x, t = inputs()
    eps, cache = Probe(unet).run_with_cache(x, t)
    with torch.no_grad():
        last = cache["up.1.resnet.2"]  # the final SkipUpBlock2D has no resnet_up
        expected = unet.conv_out(unet.conv_act(unet.conv_norm_out(last)))
    assert torch.equal(cache["conv_out"], expected)
    assert not torch.allclose(cache["conv_out"], eps)  # eps also holds the image-space skip


def test_name_filters_select_what_is_stored(unet):
    probe = Probe(unet)
    x, t = inputs()
    _, by_glob = probe.run_with_cache(x, t, names="up.0.*.pattern")
    assert list(by_glob) == ["up.0.attn.0.pattern", "up.0.attn.1.pattern"]
    _, by_list = probe.run_with_cache(x, t, names=["skip.3", "mid.attn.0.out", "conv_in"])
    assert set(by_list) == {"conv_in", "skip.3", "mid.attn.0"}
    _, by_predicate = probe.run_with_cache(x, t, names=lambda n: n.endswith(".v"))
    assert list(by_predicate) == [f"{a}.v" for a in probe.attention_heads]
    with pytest.raises(ValueError, match="unknown hook point 'mid.resnet.7'"):
        probe.run_with_cache(x, t, names="mid.resnet.7")
    assert_clean(unet)


def test_reduce_keeps_only_the_summary(unet):
    probe = Probe(unet)
    x, t = inputs()
    _, full = probe.run_with_cache(x, t, names=["mid", "up.0.attn.0.pattern"])
    seen = []

    def per_item_mean(name, tensor):
        seen.append(name)
        assert not tensor.requires_grad
        return tensor.flatten(1).mean(dim=1)

    with probe.capture(["mid", "up.0.attn.0.pattern"], reduce=per_item_mean) as summary:
        unet(x, t)  # grad enabled: the stored tensors are still detached
    assert seen == ["mid", "up.0.attn.0.pattern"]
    assert torch.equal(summary["mid"], full["mid"].flatten(1).mean(dim=1))
    # each row of a pattern sums to 1, so its mean over keys is 1 / n_keys
    assert torch.allclose(summary["up.0.attn.0.pattern"], torch.full((3,), 1 / 16))


def test_streaming_over_batches_with_a_running_reduction(unet):
    probe = Probe(unet)
    x, t = inputs(batch=6)
    totals = {}

    def accumulate(name, tensor):
        totals[name] = totals.get(name, 0.0) + tensor.double().sum().item()
        return totals[name]

    with torch.no_grad(), probe.capture("mid", reduce=accumulate):
        for chunk in (slice(0, 2), slice(2, 4), slice(4, 6)):
            unet(x[chunk], t[chunk])
    _, full = probe.run_with_cache(x, t, names="mid")
    assert totals["mid"] == pytest.approx(full["mid"].double().sum().item(), rel=1e-6)


def test_capture_records_intervened_activations_whichever_is_outer(unet):
    probe = Probe(unet)
    x, t = inputs()
    _, clean = probe.run_with_cache(x, t, names=["mid", "skip.2"])
    with torch.no_grad(), probe.intervene(FeatureScaling("mid", 2.0)), probe.capture() as inner:
        unet(x, t)
    with torch.no_grad(), probe.capture() as outer, probe.intervene(ZeroAblation("skip.2")):
        unet(x, t)
    assert torch.equal(inner["mid"], 2 * clean["mid"])
    assert (outer["skip.2"] == 0).all() and not (clean["skip.2"] == 0).all()
    assert_clean(unet)


def test_nested_captures_and_two_probes_share_one_hook_per_module(unet):
    x, t = inputs()
    first, second = Probe(unet), Probe(unet)
    before = processors(unet)
    with torch.no_grad(), first.capture("mid.attn.0.*") as a:
        with second.capture(["mid.attn.0.pattern", "mid"]) as b:
            assert len(unet.mid_block._forward_hooks) == 1
            unet(x, t)
        assert unet.mid_block.attentions[0].processor is not before[unet.mid_block.attentions[0]]
        unet(x[:1], t[:1])  # the outer capture still works after the inner one left
    assert a["mid.attn.0.pattern"].shape[0] == 1  # overwritten by the second forward
    assert torch.allclose(a["mid.attn.0.pattern"], b["mid.attn.0.pattern"][:1], atol=1e-6)
    assert set(a) == {f"mid.attn.0.{s}" for s in ("q", "k", "v", "pattern", "z")}
    assert_clean(unet, before)


def test_capture_under_grad_stays_transparent(unet):
    x, t = inputs()
    plain = unet(x, t).sample
    with Probe(unet).capture() as cache:
        eps = unet(x, t).sample
    assert torch.equal(plain, eps) and eps.requires_grad
    assert not any(v.requires_grad for v in cache.values())
    eps.sum().backward()  # the graph through the model is intact
    assert unet.conv_in.weight.grad is not None


def test_exceptions_leave_no_hook(unet):
    probe = Probe(unet)
    before = processors(unet)
    x, t = inputs()
    with (
        pytest.raises(RuntimeError, match="boom"),
        probe.capture(),
        probe.intervene(
            ZeroAblation("mid"), ZeroAblation("skip.1"), ZeroAblation("up.0.attn.0.pattern")
        ),
    ):
        unet(x, t)
        raise RuntimeError("boom")
    assert_clean(unet, before)

    def explode(*args, **kwargs):
        raise RuntimeError("module failed")

    resnet = unet.up_blocks[1].resnets[0]
    resnet.forward = explode  # a module that raises half-way through the forward
    with pytest.raises(RuntimeError, match="module failed"), probe.capture():
        unet(x, t)
    del resnet.forward
    assert_clean(unet, before)

    def bad_reduce(name, tensor):
        raise ValueError("reduce failed")

    with pytest.raises(ValueError, match="reduce failed"), probe.capture(reduce=bad_reduce):
        unet(x, t)
    assert_clean(unet, before)
    with pytest.raises(ValueError, match="unknown hook point"), probe.capture(["mid", "nope"]):
        pass
    assert_clean(unet, before)
    assert registry_for(unet).empty  # no entry left behind either


def test_reference_means_in_chunks_equal_the_plain_mean(unet):
    probe = Probe(unet)
    x, t = inputs(batch=5)
    names = ["mid", "up.0.attn.0.z", "skip.4"]
    _, cache = probe.run_with_cache(x, t, names=names)
    whole = probe.reference_means(x, t, names)
    chunked = probe.reference_means(x, t, names, batch_size=2)
    for name in names:
        assert whole[name].shape == cache[name].shape[1:]
        assert torch.allclose(whole[name], cache[name].mean(dim=0), atol=1e-6)
        assert torch.allclose(chunked[name], whole[name], atol=1e-6)
    with pytest.raises(ValueError, match="at least one reference image"):
        probe.reference_means(x[:0], t[:0], names)
