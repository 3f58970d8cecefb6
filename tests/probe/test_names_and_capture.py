import pytest
import torch

from conftest import assert_clean, inputs, make_unet
from diffusion_circuits.probe import LAYER_GROUPS, Probe, ZeroAblation, run_with_cache


def test_names_follow_forward_order(any_unet):
    probe = Probe(any_unet)
    modules = {m: n for n, m in probe._map.modules.items()}
    fired = []
    handles = [m.register_forward_hook(lambda m, a, o: fired.append(modules[m])) for m in modules]
    with torch.no_grad():
        any_unet(*inputs())
    for handle in handles:
        handle.remove()
    module_names = [n for n in probe.hook_points if n in probe._map.modules]
    assert fired == module_names
    assert probe.hook_points[:2] == ["time_emb", "conv_in"] and probe.hook_points[-1] == "conv_out"


def test_structure_is_discovered_not_typed():
    paper = Probe(make_unet("paper"))
    assert paper.attention_heads == {"mid.attn.0": 8, "up.0.attn.0": 8, "up.0.attn.1": 8}
    assert paper.layer_groups["encoder_early"][:2] == ["conv_in", "skip.0"]
    assert (
        "mid" in paper.layer_groups["middle"] and "conv_out" in paper.layer_groups["decoder_late"]
    )
    assert paper.module_path("up.0.attn.1.pattern") == "up_blocks.0.attentions.1 (pattern)"
    assert paper.module_path("down.1.downsample") == "down_blocks.1.downsamplers.0"
    other = Probe(make_unet("attn_everywhere"))
    assert set(other.attention_heads) >= {"down.1.attn.0", "down.2.attn.1", "up.1.attn.2"}
    assert other.skip_source("skip.4") == "down.1.attn.0"  # attention blocks skip after attn
    two = Probe(make_unet("two_levels_no_mid_attention"))
    assert "mid.attn.0" not in two.hook_points and two.layer_groups["encoder_late"] == []
    four = Probe(make_unet("four_levels"))
    assert four.attention_heads == {"mid.attn.0": 4}
    assert set(four.layer_groups) == set(LAYER_GROUPS)
    assert four.group_of("down.3.resnet.0") == "encoder_late"
    assert four.group_of("up.0.resnet.0") == "decoder_early"


def test_capture_is_bit_identical_and_leaves_nothing(any_unet):
    x, t = inputs()
    with torch.no_grad():
        plain = any_unet(x, t).sample
        eps, cache = run_with_cache(any_unet, x, t)
    assert torch.equal(plain, eps)
    assert_clean(any_unet)
    probe = Probe(any_unet)
    assert set(cache) == set(probe.hook_points) - {"time_emb"} or set(cache) == set(
        probe.hook_points
    )
    assert torch.equal(cache["conv_out"], plain)
    for k, source in enumerate(probe._map.skip_sources):
        assert torch.equal(cache[f"skip.{k}"], cache[source])  # skip map matches the forward


def test_exception_inside_contexts_leaves_no_hooks(unet):
    probe = Probe(unet)
    x, t = inputs()
    with (
        pytest.raises(RuntimeError, match="boom"),
        probe.capture(),
        probe.intervene(ZeroAblation("mid"), ZeroAblation("skip.1")),
    ):
        unet(x, t)
        raise RuntimeError("boom")
    assert_clean(unet)

    class Exploding(ZeroAblation):
        def __call__(self, tensor, name):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"), probe.intervene(Exploding("mid.attn.0.z")):
        unet(x, t)
    assert_clean(unet)


def test_names_filter_forms(unet):
    probe = Probe(unet)
    assert probe.resolve("up.*.attn.?.pattern") == ["up.0.attn.0.pattern", "up.0.attn.1.pattern"]
    assert probe.resolve(["mid", "conv_in"]) == ["conv_in", "mid"]
    assert probe.resolve(lambda n: n.startswith("skip.")) == [f"skip.{k}" for k in range(6)]
    assert probe.resolve("mid.attn.0.out") == ["mid.attn.0"]
    with pytest.raises(ValueError, match="unknown hook point 'mid.atn.0'; did you mean mid.attn.0"):
        probe.resolve("mid.atn.0")
    _, cache = probe.run_with_cache(*inputs(), names="mid", reduce=lambda n, x: x.mean().item())
    assert set(cache) == {"mid"} and isinstance(cache["mid"], float)
