"""The recording attention processor: transparent, explicit path faithful, patterns right."""

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0
from unets import assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import FeatureScaling, Probe, ZeroAblation
from diffusion_circuits.probe.attention import RecordingAttnProcessor

ATTN = "up.0.attn.0"


class Hub:
    """Stand-in for the registry: records the given sites, edits nothing."""

    def __init__(self, sites=()):
        self.sites, self.seen = set(sites), {}

    def has(self, key, edit=None):
        return edit is not True and key.rsplit(".", 1)[1] in self.sites

    def apply(self, key, value):
        if self.has(key):
            self.seen[key.rsplit(".", 1)[1]] = value
        return value


def attention_input(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, module.to_q.in_features, 4, 4, generator=generator)


@pytest.mark.parametrize("original", [AttnProcessor2_0(), AttnProcessor()], ids=type)
def test_recording_output_is_the_original_processors_bit_for_bit(original):
    module = make_unet().up_blocks[0].attentions[0]
    hidden = attention_input(module)
    recording = RecordingAttnProcessor(original, ATTN, Hub(("q", "k", "v", "pattern", "z")))
    with torch.no_grad():
        expected = original(module, hidden)
        got = recording(module, hidden)
    assert torch.equal(got, expected)
    assert set(recording.hub.seen) == {"q", "k", "v", "pattern", "z"}


def test_explicit_path_without_edit_matches_the_default_processor():
    module = make_unet().up_blocks[0].attentions[0]
    hidden = attention_input(module, seed=3)
    with torch.no_grad():
        fused = AttnProcessor2_0()(module, hidden)
        reference = AttnProcessor()(module, hidden)
        explicit = RecordingAttnProcessor(AttnProcessor2_0(), ATTN, Hub()).explicit(module, hidden)
    assert torch.equal(explicit, reference)  # the same steps as diffusers' AttnProcessor
    assert torch.allclose(explicit, fused, atol=1e-5)


def test_explicit_path_without_change_through_the_whole_unet(unet):
    probe = Probe(unet)
    x, t = inputs()
    with torch.no_grad():
        clean = unet(x, t).sample
        with probe.intervene(FeatureScaling(f"{ATTN}.pattern", 1.0)):
            identity = unet(x, t).sample
    assert torch.allclose(clean, identity, atol=1e-5)
    assert_clean(unet)


def test_patterns_are_softmax_of_scaled_scores_and_reproduce_the_output(unet):
    probe = Probe(unet)
    x, t = inputs()
    names = [f"{ATTN}.{s}" for s in ("q", "k", "v", "pattern", "z")] + [ATTN, "up.0.resnet.0"]
    _, cache = probe.run_with_cache(x, t, names=names)
    q, k, v = cache[f"{ATTN}.q"], cache[f"{ATTN}.k"], cache[f"{ATTN}.v"]
    pattern, z = cache[f"{ATTN}.pattern"], cache[f"{ATTN}.z"]
    assert pattern.shape == (3, 8, 16, 16) and q.shape == (3, 8, 16, 8)
    assert torch.allclose(pattern.sum(-1), torch.ones(3, 8, 16), atol=1e-6)
    by_hand = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)  # head_dim 8
    assert torch.allclose(pattern, by_hand, atol=1e-6)
    assert torch.allclose(pattern @ v, z, atol=1e-6)
    # z heads merged, through to_out, plus the residual (the resnet before) is the output
    module = unet.up_blocks[0].attentions[0]
    merged = z.transpose(1, 2).reshape(3, 16, 64)
    with torch.no_grad():
        projected = module.to_out[0](merged).transpose(1, 2).reshape(3, 64, 4, 4)
    assert torch.allclose(projected + cache["up.0.resnet.0"], cache[ATTN], atol=1e-5)


def test_q_k_v_are_the_projections_of_the_group_normalised_input(unet):
    probe = Probe(unet)
    _, cache = probe.run_with_cache(*inputs(), names=["up.0.resnet.0", f"{ATTN}.v"])
    module = unet.up_blocks[0].attentions[0]
    with torch.no_grad():
        tokens = module.group_norm(cache["up.0.resnet.0"]).flatten(2).transpose(1, 2)
        v = module.to_v(tokens).view(3, 16, 8, 8).transpose(1, 2)
    assert torch.equal(cache[f"{ATTN}.v"], v)


def test_an_edit_on_v_flows_through_the_explicit_path(unet):
    """Zero values: z = 0, so the output is the to_out bias plus the residual, exactly."""
    probe = Probe(unet)
    x, t = inputs()
    with (
        torch.no_grad(),
        probe.intervene(ZeroAblation(f"{ATTN}.v")),
        probe.capture([f"{ATTN}.z", ATTN, "up.0.resnet.0"]) as cache,
    ):
        unet(x, t)
    assert (cache[f"{ATTN}.z"] == 0).all()
    bias = unet.up_blocks[0].attentions[0].to_out[0].bias.view(1, -1, 1, 1)
    assert torch.allclose(cache[ATTN], bias + cache["up.0.resnet.0"], atol=1e-6)


def test_processors_are_swapped_only_inside_and_restored_as_the_same_objects():
    unet = make_unet("attn_everywhere")
    custom = AttnProcessor()
    unet.down_blocks[1].attentions[0].set_processor(custom)
    before = processors(unet)
    probe = Probe(unet)
    with probe.capture("*.pattern"):
        swapped = [m.processor for m in before]
        assert all(isinstance(p, RecordingAttnProcessor) for p in swapped)
        assert unet.down_blocks[1].attentions[0].processor.original is custom
    with probe.capture(["mid", "up.1.attn.0"]):  # no site: the processors are left alone
        assert all(m.processor is p for m, p in before.items())
    assert_clean(unet, before)
    assert unet.down_blocks[1].attentions[0].processor is custom


def test_sites_are_recorded_on_every_architecture(any_unet):
    probe = Probe(any_unet)
    if not probe.attention_heads:
        pytest.skip("no attention")
    _, cache = probe.run_with_cache(*inputs(), names="*.pattern")
    for name, heads in probe.attention_heads.items():
        pattern = cache[f"{name}.pattern"]
        assert pattern.shape[:2] == (3, heads) and pattern.shape[2] == pattern.shape[3]
        assert torch.allclose(pattern.sum(-1), torch.ones(pattern.shape[:3]), atol=1e-5)
