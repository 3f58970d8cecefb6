"""Nothing silently skipped: every diffusers attention is named (with sites, or for its
output with a reason), an adapter that misses one is refused naming it, and any other
model falls back to module-path names."""

import pytest
import torch
from diffusers import Transformer2DModel, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from models import CONFIGS, make_model
from unets import ARCHITECTURES, assert_clean, make_unet, processors

from diffusion_circuits.probe import GenericAdapter, HeadAblation, Patch, Probe, ZeroAblation
from diffusion_circuits.probe.adapters import adapter_for
from diffusion_circuits.probe.adapters.builder import is_attention
from diffusion_circuits.probe.adapters.unet import UNet2DAdapter

CONDITIONAL = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    block_out_channels=(8, 16),
    layers_per_block=1,
    cross_attention_dim=12,
    norm_num_groups=4,
)


def gligen_unet() -> UNet2DConditionModel:
    """GLIGEN's layout: every transformer block has a gated self-attention ``fuser``."""
    torch.manual_seed(0)
    return UNet2DConditionModel(
        **CONDITIONAL,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=2,
        attention_type="gated",
    ).eval()


def simple_cross_unet() -> UNet2DConditionModel:
    """DeepFloyd IF's layout: SimpleCrossAttn blocks, attention with added key/values."""
    torch.manual_seed(0)
    return UNet2DConditionModel(
        **CONDITIONAL,
        down_block_types=("SimpleCrossAttnDownBlock2D", "ResnetDownsampleBlock2D"),
        up_block_types=("ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        attention_head_dim=4,
        encoder_hid_dim=12,
    ).eval()


MODELS = {
    **{f"unet:{kind}": lambda kind=kind: make_unet(kind) for kind in ARCHITECTURES},
    **{kind: lambda kind=kind: make_model(kind) for kind in CONFIGS},
    "gligen": gligen_unet,
    "simple_cross": simple_cross_unet,
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_diffusers_attention_is_accounted_for(kind):
    model = MODELS[kind]()
    probe = Probe(model)
    by_path: dict[str, str] = {}  # a joint attention's text output shares its path
    for name in probe.attentions:
        by_path.setdefault(probe.module_path(name), name)
    attentions = [(path, m) for path, m in model.named_modules() if is_attention(m)]
    assert attentions, kind
    for path, module in attentions:
        assert path in by_path, path
        name = by_path[path]
        assert probe.role_of(name) == "attention"
        with_sites = name in probe.attention_heads
        assert with_sites != (name in probe.output_only_attentions), name
        if with_sites:
            assert probe.attention_heads[name] == module.heads
            assert [s.rsplit(".", 1)[1] for s in probe.sites(name)] == list("qkv") + [
                "pattern",
                "z",
            ]
    assert not probe.output_only_attentions, kind  # every default processor is reproduced


def test_gligen_fusers_are_named_with_sites_and_record_their_pattern():
    model = gligen_unet()
    probe = Probe(model)
    block = "down.0.attn.0.block.0"
    order = probe.hook_points
    assert order.index(f"{block}.self") < order.index(f"{block}.fuser.attn")
    assert order.index(f"{block}.fuser") < order.index(f"{block}.cross")
    generator = torch.Generator().manual_seed(0)
    objects = 3
    gligen = {
        "boxes": torch.rand(2, objects, 4, generator=generator),
        "masks": torch.ones(2, objects),
        "positive_embeddings": torch.randn(2, objects, 12, generator=generator),
    }
    inputs = dict(
        sample=torch.randn(2, 4, 8, 8, generator=generator),
        timestep=torch.tensor([10, 500]),
        encoder_hidden_states=torch.randn(2, 5, 12, generator=generator),
        cross_attention_kwargs={"gligen": gligen},
    )
    with torch.no_grad():
        plain = model(**inputs).sample
        with probe.capture(f"{block}.fuser*") as cache:
            eps = model(**inputs).sample
    assert torch.equal(plain, eps)
    pattern = cache[f"{block}.fuser.attn.pattern"]
    pixels = 8 * 8
    # self-attention over [pixels; grounding tokens], the fuser keeps the pixels
    assert pattern.shape == (2, 2, pixels + objects, pixels + objects)
    assert cache[f"{block}.fuser"].shape[1] == pixels


def test_simple_cross_attention_has_sites_over_text_then_pixels():
    model = simple_cross_unet()
    probe = Probe(model)
    assert set(probe.attention_keys.values()) == {"encoder+self"}
    text = torch.randn(2, 5, 12)
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 500])
    with torch.no_grad():
        plain = model(x, t, encoder_hidden_states=text).sample
        eps, cache = probe.run_with_cache(x, t, "mid.attn.0.*", encoder_hidden_states=text)
    assert torch.equal(plain, eps)
    pattern = cache["mid.attn.0.pattern"]
    pixels = pattern.shape[-2]
    assert pattern.shape[-1] == 5 + pixels
    image_to_text = probe.quadrant(pattern, "mid.attn.0", "image", "text", text_tokens=5)
    image_to_image = probe.quadrant(pattern, "mid.attn.0", "image", "image", text_tokens=5)
    total = image_to_text.sum(-1) + image_to_image.sum(-1)
    assert torch.allclose(total, torch.ones(()), atol=1e-5)
    with pytest.raises(ValueError, match="no 'text' tokens on its queries"):
        probe.quadrant(pattern, "mid.attn.0", "text", "image", text_tokens=5)


def test_an_unreproduced_processor_gives_output_only_and_refuses_site_edits():
    class CustomProcessor(AttnProcessor2_0):
        pass

    unet = make_unet("paper")
    unet.mid_block.attentions[0].set_processor(CustomProcessor())
    probe = Probe(unet)
    assert "mid.attn.0" in probe.attentions and "mid.attn.0" not in probe.attention_heads
    assert "CustomProcessor" in probe.output_only_attentions["mid.attn.0"]
    assert "mid.attn.0.pattern" not in probe.hook_points
    before = processors(unet)
    with (
        pytest.raises(ValueError, match="needs an attention hook point"),
        probe.intervene(HeadAblation("mid.attn.0", 0)),
    ):
        pass
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([1, 2])
    with torch.no_grad():
        with probe.intervene(ZeroAblation("mid.attn.0.out")):
            ablated = unet(x, t).sample
        plain = unet(x, t).sample
    assert not torch.equal(ablated, plain)
    assert_clean(unet, before)


def test_an_adapter_missing_an_attention_is_refused_naming_it():
    class Forgetful(UNet2DAdapter):
        def add_attention(self, names, name, module, path, group):
            if not name.startswith("mid."):
                super().add_attention(names, name, module, path, group)

    with pytest.raises(ValueError, match=r"attention mid_block\.attentions\.0 \(Attention\)"):
        Probe(make_unet("paper"), adapter=Forgetful())


def test_any_other_model_is_probed_by_module_path():
    torch.manual_seed(0)
    model = Transformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=8, norm_num_groups=4
    ).eval()
    assert isinstance(adapter_for(model), GenericAdapter)
    probe = Probe(model)
    before = processors(model)
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        plain = model(x).sample
        with probe.capture() as cache:
            eps = model(x).sample
    assert torch.equal(plain, eps)
    assert "proj_in" in cache and "transformer_blocks.0.attn1.pattern" in cache
    assert probe.main_path == [] and probe.skips == [] and probe.bottleneck is None
    with torch.no_grad():
        with probe.intervene(ZeroAblation("transformer_blocks.0.ff")):
            ablated = model(x).sample
        with probe.intervene(Patch("proj_in", cache["proj_in"])):
            patched = model(x).sample
    assert not torch.equal(ablated, plain)
    assert torch.equal(patched, plain)
    with pytest.raises(ValueError, match="forward order"), probe.record():
        pass
    assert_clean(model, before)


def test_editing_a_module_output_that_is_no_tensor_is_refused():
    torch.manual_seed(0)
    model = Transformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=8, norm_num_groups=4
    ).eval()
    wrapper = torch.nn.Sequential()
    wrapper.add_module("inner", model)  # returns a Transformer2DModelOutput
    probe = Probe(wrapper)
    with (
        pytest.raises(ValueError, match="inner \\(inner\\) returns Transformer2DModelOutput"),
        torch.no_grad(),
        probe.intervene(ZeroAblation("inner")),
    ):
        wrapper(torch.randn(1, 8, 4, 4))
    assert_clean(wrapper)
