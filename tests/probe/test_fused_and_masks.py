"""Fused QKV projections and attention masks: reproduced exactly, or refused in one line."""

import copy

import pytest
import torch
from diffusers.models.attention_processor import Attention
from models import CONFIGS, TEXT_TOKENS, image_tokens, model_inputs
from unets import assert_clean, processors

from diffusion_circuits.probe import AttentionPerturbation, HeadAblation, Probe
from diffusion_circuits.probe.projections import FUSED_LAYERS


def _model(kind: str, **overrides):
    cls, config = CONFIGS[kind]
    torch.manual_seed(0)
    return cls(**{**config, **overrides}).eval()


# diffusers' fused joint processor cannot run SD3.5's image-only second attention, and
# applies no q/k norm: this SD3 fuses into the same function as the unfused one
FUSABLE = {
    "sd15": {},
    "pixart": {},
    "sd3": {"dual_attention_layers": (), "qk_norm": None},
    "flux": {},
}


def _fused(kind: str, **overrides):
    """A fused model, its unfused twin (same weights), and the twin's inputs."""
    twin = _model(kind, **{**FUSABLE[kind], **overrides})
    model = copy.deepcopy(twin)
    model.fuse_qkv_projections()
    return model, twin, model_inputs(kind)


def _stale_unfused_layers(model) -> None:
    """Zero the projections a fused layer replaces: the fused processor never reads
    them, so a probe that did would be visibly wrong instead of float-close."""
    for module in model.modules():
        if not isinstance(module, Attention) and not hasattr(module, "fused_projections"):
            continue
        for layer, names in FUSED_LAYERS.items():
            if isinstance(getattr(module, layer, None), torch.nn.Module):
                for name in names:
                    torch.nn.init.zeros_(getattr(module, name).weight)


def _identity_on_every_z(probe):
    """Hooks putting every attention on the explicit path without changing anything."""
    return probe.hooks([("*.z", lambda z, hook: z.clone())])


@pytest.mark.parametrize("kind", list(FUSABLE))
def test_fused_projections_give_the_unfused_models_sites_and_edits(kind):
    model, twin, inputs = _fused(kind)
    with torch.no_grad():
        plain = model(**inputs).sample
        _stale_unfused_layers(model)
        assert torch.equal(model(**inputs).sample, plain)  # the fused path ignores them
    probe, twin_probe = Probe(model), Probe(twin)
    assert probe.attention_heads == twin_probe.attention_heads
    assert not probe.output_only_attentions
    before = processors(model)
    with torch.no_grad(), probe.capture() as cache:
        captured = model(**inputs).sample
    assert torch.equal(captured, plain)
    with torch.no_grad(), twin_probe.capture("*.pattern") as expected:
        twin(**inputs)
    for name, pattern in expected.items():
        assert torch.allclose(cache[name], pattern, atol=1e-6), name
    attention = next(iter(probe.attention_heads))
    with torch.no_grad():
        with _identity_on_every_z(probe):
            assert torch.allclose(model(**inputs).sample, plain, atol=1e-5)
        with probe.intervene(HeadAblation(attention, 1)):
            ablated = model(**inputs).sample
        with twin_probe.intervene(HeadAblation(attention, 1)):
            twin_ablated = twin(**inputs).sample
    assert not torch.allclose(ablated, plain, atol=1e-4)
    assert torch.allclose(ablated, twin_ablated, atol=1e-5)
    assert_clean(model, before)


def test_fused_sd3_follows_its_processor_which_skips_the_qk_norm():
    model, twin, inputs = _fused("sd3", qk_norm="rms_norm")
    probe = Probe(model)
    with torch.no_grad():
        plain = model(**inputs).sample
        assert not torch.allclose(plain, twin(**inputs).sample, atol=1e-4)  # diffusers' doing
        with _identity_on_every_z(probe):
            assert torch.allclose(model(**inputs).sample, plain, atol=1e-5)


def test_a_cross_attention_mask_is_reproduced():
    model = _model("sd15")
    probe = Probe(model)
    inputs = model_inputs("sd15")
    mask = torch.ones(2, TEXT_TOKENS)
    mask[:, -2:] = 0  # the last two text tokens are padding
    masked = {**inputs, "encoder_attention_mask": mask}
    with torch.no_grad():
        plain = model(**masked).sample
        assert not torch.allclose(plain, model(**inputs).sample, atol=1e-3)  # the mask matters
        with probe.capture("*.cross.pattern") as cache:
            assert torch.equal(model(**masked).sample, plain)
        with _identity_on_every_z(probe):
            assert torch.allclose(model(**masked).sample, plain, atol=1e-5)
        # temperature 1 changes nothing, through the explicit logits (+ mask) path
        unchanged = [AttentionPerturbation(n, "temperature") for n in probe.attention_heads]
        with probe.intervene(*unchanged):
            assert torch.allclose(model(**masked).sample, plain, atol=1e-5)
    assert len(cache) > 4
    for name, pattern in cache.items():
        assert pattern[..., -2:].abs().max() == 0, name  # no attention to padding
        assert torch.allclose(pattern.sum(-1), torch.ones(()), atol=1e-5), name
    assert_clean(model)


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_a_joint_attention_mask_is_refused_for_sites_not_ignored(kind):
    model = _model(kind)
    probe = Probe(model)
    tokens = TEXT_TOKENS + image_tokens(kind)
    mask = torch.ones(2, 1, 1, tokens, dtype=torch.bool)
    mask[..., :2] = False
    inputs = {**model_inputs(kind), "joint_attention_kwargs": {"attention_mask": mask}}
    attention = next(iter(probe.attention_heads))
    before = processors(model)
    with torch.no_grad():
        plain = model(**inputs).sample
        with probe.capture(probe.attentions) as cache:  # module outputs stay available
            assert torch.equal(model(**inputs).sample, plain)
        assert cache
        refused = rf"{attention}: attention sites of \w+ with an attention_mask are not reproduced"
        with pytest.raises(ValueError, match=refused), probe.capture(f"{attention}.pattern"):
            model(**inputs)
        with pytest.raises(ValueError, match=refused), probe.intervene(HeadAblation(attention, 0)):
            model(**inputs)
    assert_clean(model, before)


@pytest.mark.parametrize("kind", ["sd15", "flux"])
def test_fusing_after_the_probe_is_built_is_followed_too(kind):
    twin = _model(kind)
    model = copy.deepcopy(twin)
    probe = Probe(model)  # names from the unfused processors
    model.fuse_qkv_projections()
    _stale_unfused_layers(model)
    inputs = model_inputs(kind)
    with torch.no_grad(), probe.capture("*.pattern") as cache:
        model(**inputs)
    with torch.no_grad(), Probe(twin).capture("*.pattern") as expected:
        twin(**inputs)
    assert cache.keys() == expected.keys()
    for name, pattern in expected.items():
        assert torch.allclose(cache[name], pattern, atol=1e-6), name
