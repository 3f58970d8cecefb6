"""Stable Diffusion-shaped UNet2DConditionModel: cross-attention, text tokens, CFG halves."""

import pytest
import torch
from diffusers import UNet2DConditionModel
from models import TEXT_TOKENS, make_model, model_inputs
from unets import assert_clean

from diffusion_circuits.probe import HeadAblation, Probe, TokenAblation, ZeroAblation

CROSS = "up.1.attn.0.block.0.cross"


@pytest.fixture(scope="module")
def sd():
    unet = make_model("sd15")
    return unet, Probe(unet)


def test_names_say_which_attention_is_which(sd):
    unet, probe = sd
    block = "down.1.attn.0.block.0"
    at = probe.hook_points.index(f"{block}.self")
    assert probe.hook_points[at : at + 14] == [
        f"{block}.self",
        *(f"{block}.self.{s}" for s in ("q", "k", "v", "pattern", "z")),
        f"{block}.cross",
        *(f"{block}.cross.{s}" for s in ("q", "k", "v", "pattern", "z")),
        f"{block}.ff",
        block,
    ]
    assert probe.hook_points[at + 14] == "down.1.attn.0"  # the spatial transformer's output
    assert probe.attention_keys[f"{block}.self"] == "self"
    assert probe.attention_keys[f"{block}.cross"] == "encoder"
    assert probe.module_path(f"{block}.cross.pattern") == (
        "down_blocks.1.attentions.0.transformer_blocks.0.attn2"
    )
    assert probe.group_of(f"{block}.cross") == probe.group_of("down.1.resnet.0")
    # SD 1.5 layout: attention in 3 down levels x 2 layers, mid, 3 up levels x 3 layers
    assert len(probe.attention_heads) == 2 * (6 + 1 + 9)
    assert "down.3.attn.0" not in probe.hook_points and "up.0.attn.0" not in probe.hook_points


def test_cross_attention_pattern_is_queries_by_text_tokens(sd):
    unet, probe = sd
    inputs = model_inputs("sd15")
    text = inputs["encoder_hidden_states"]
    names = [f"{CROSS}.{s}" for s in ("q", "k", "pattern", "z", "v")]
    with torch.no_grad(), probe.capture(names) as cache:
        unet(**inputs)
    attn = unet.get_submodule(probe.module_path(CROSS))
    k = attn.to_k(text).view(2, TEXT_TOKENS, attn.heads, -1).transpose(1, 2)
    assert torch.allclose(cache[f"{CROSS}.k"], k)
    pattern = cache[f"{CROSS}.pattern"]
    queries = cache[f"{CROSS}.q"].shape[2]
    assert pattern.shape == (2, attn.heads, queries, TEXT_TOKENS)
    expected = (cache[f"{CROSS}.q"] @ k.transpose(-1, -2) * attn.scale).softmax(-1)
    assert torch.allclose(pattern, expected, atol=1e-6)
    assert torch.allclose(cache[f"{CROSS}.z"], pattern @ cache[f"{CROSS}.v"], atol=1e-6)


def test_ablating_a_text_token_removes_exactly_that_token(sd):
    unet, probe = sd
    inputs = model_inputs("sd15")
    names = [f"{CROSS}.pattern", f"{CROSS}.z", f"{CROSS}.v"]
    with torch.no_grad(), probe.capture(names) as clean:
        unet(**inputs)
    with torch.no_grad(), probe.intervene(TokenAblation(CROSS, 3)), probe.capture(names) as cut:
        unet(**inputs)
    pattern = cut[f"{CROSS}.pattern"]
    assert (pattern[..., 3] == 0).all()
    renormalised = clean[f"{CROSS}.pattern"].clone()
    renormalised[..., 3] = 0
    renormalised /= renormalised.sum(-1, keepdim=True)
    assert torch.allclose(pattern, renormalised, atol=1e-6)
    # zeroing token 3's value on head 1: z changes by exactly its weighted value there
    value = TokenAblation(CROSS, 3, site="v", head=1)
    with torch.no_grad(), probe.intervene(value), probe.capture(names) as cut:
        unet(**inputs)
    p, v = clean[f"{CROSS}.pattern"], clean[f"{CROSS}.v"]
    delta = cut[f"{CROSS}.z"] - clean[f"{CROSS}.z"]
    assert torch.allclose(delta[:, 1], -p[:, 1, :, 3:4] * v[:, 1, 3:4], atol=1e-6)
    assert torch.equal(delta[:, 0], torch.zeros_like(delta[:, 0]))
    with (
        pytest.raises(ValueError, match="token out of range"),
        torch.no_grad(),
        probe.intervene(TokenAblation(CROSS, TEXT_TOKENS)),
    ):
        unet(**inputs)
    assert_clean(unet)


def test_guidance_halves_are_captured_and_intervened_apart(sd):
    unet, probe = sd
    cond, uncond = model_inputs("sd15", seed=1), model_inputs("sd15", seed=2)
    # a CFG batch as pipelines build it: the same latents twice, [uncond, cond] text
    batch = {
        "sample": torch.cat([cond["sample"]] * 2),
        "timestep": torch.cat([cond["timestep"]] * 2),
        "encoder_hidden_states": torch.cat(
            [uncond["encoder_hidden_states"], cond["encoder_hidden_states"]]
        ),
    }
    name = f"{CROSS}.pattern"
    with (
        torch.no_grad(),
        probe.capture(name, guidance="cond") as c,
        probe.capture(name, guidance="uncond") as u,
        probe.capture(name) as both,
    ):
        unet(**batch)
    assert torch.equal(u[name], both[name][:2]) and torch.equal(c[name], both[name][2:])
    assert torch.equal(c.timesteps, cond["timestep"])
    with torch.no_grad(), probe.capture(name) as alone:
        unet(**cond)
    assert torch.allclose(c[name], alone[name], atol=1e-6)
    with torch.no_grad():
        clean = unet(**batch).sample
        with probe.intervene(HeadAblation(CROSS, 0), guidance="cond"):
            edited = unet(**batch).sample
    # the unconditional half only goes through the explicit attention path (an edit on
    # that attention switches it over), equal to the fused kernel within float error
    assert torch.allclose(edited[:2], clean[:2], atol=1e-5)
    assert not torch.allclose(edited[2:], clean[2:], atol=1e-3)
    with torch.no_grad(), probe.intervene(ZeroAblation("mid"), guidance="uncond"):
        edited = unet(**batch).sample
    assert torch.equal(edited[2:], clean[2:]) and not torch.allclose(edited[:2], clean[:2])
    with (
        pytest.raises(ValueError, match="even batch"),
        torch.no_grad(),
        probe.capture(name, guidance="cond"),
    ):
        unet(**model_inputs("sd15", batch=3))
    with pytest.raises(ValueError, match="guidance must be"), probe.capture(guidance="both"):
        pass
    assert_clean(unet)


@pytest.mark.parametrize(
    "config",
    [
        dict(only_cross_attention=True),
        dict(mid_block_type="UNetMidBlock2DSimpleCrossAttn", attention_head_dim=4),
        dict(
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            mid_block_type=None,
        ),
    ],
    ids=["only_cross_attention", "simple_cross_attn_mid", "no_mid_block"],
)
def test_other_conditional_configs_are_probed_or_refused_clearly(config):
    base = dict(
        sample_size=8,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{**base, **config}).eval()
    inputs = {
        "sample": torch.randn(2, 4, 8, 8),
        "timestep": torch.tensor([3, 700]),
        "encoder_hidden_states": torch.randn(2, 3, 8),
    }
    try:
        probe = Probe(unet)
    except ValueError as error:  # refused, but with a one-line reason, never AttributeError
        assert "\n" not in str(error)
        return
    with torch.no_grad():
        plain = unet(**inputs).sample
        with probe.capture() as cache:
            eps = unet(**inputs).sample
    assert torch.equal(plain, eps) and set(cache) == set(probe.hook_points)
    if config.get("only_cross_attention"):
        assert probe.attention_keys["down.0.attn.0.block.0.self"] == "encoder"
    assert_clean(unet)
