"""Joint-attention transformers (SD3, FLUX): names, the joint pattern's quadrants, the
sites reproducing both output streams, head ablation, patching and streaming."""

import pytest
import torch
from models import TEXT_TOKENS, image_tokens, make_model, model_inputs
from unets import assert_clean, processors

from diffusion_circuits.probe import HeadAblation, MemorySink, Patch, Probe, TokenAblation
from diffusion_circuits.probe.attention_recipes import merge_heads

JOINT = ["sd3", "flux"]


@pytest.fixture(params=JOINT, scope="module")
def joint(request):
    kind = request.param
    model = make_model(kind)
    return kind, model, Probe(model), model_inputs(kind)


def test_names_of_both_streams():
    sd3, flux = Probe(make_model("sd3")), Probe(make_model("flux"))
    assert sd3.main_path == ["patch_embed", "block.0", "block.1", "block.2", "proj_out"]
    assert flux.main_path == [
        "patch_embed",
        "block.0",
        "block.1",
        "single.0",
        "single.1",
        "proj_out",
    ]
    # SD3's last block is context-pre-only: its text stream ends in the attention
    assert "block.1.text" in sd3.hook_points and "block.2.text" not in sd3.hook_points
    assert "block.2.joint.text" not in sd3.hook_points
    assert sd3.attention_keys == {
        "block.0.joint": "joint",
        "block.0.self": "self",  # SD3.5's image-only second attention
        "block.1.joint": "joint",
        "block.2.joint": "joint",
    }
    assert flux.module_path("single.1.joint.pattern") == "single_transformer_blocks.1.attn"
    assert flux.module_path("block.0.ff_text") == "transformer_blocks.0.ff_context"
    assert flux.token_slices("block.0.joint", "keys", 21, 5) == {
        "text": slice(0, 5),
        "image": slice(5, 21),
    }
    assert sd3.token_slices("block.0.joint", "keys", 21, 5) == {
        "image": slice(0, 16),
        "text": slice(16, 21),
    }


def test_sites_reproduce_both_output_streams(joint):
    """to_out(z over the image queries) is the image output, to_add_out(z over the text
    queries) the text output: the segments are where the probe says they are."""
    kind, model, probe, inputs = joint
    with torch.no_grad(), probe.capture() as cache:
        model(**inputs)
    attn_name = "block.0.joint"
    attn = model.get_submodule(probe.module_path(attn_name))
    z = merge_heads(cache[f"{attn_name}.z"])
    rows = probe.token_slices(attn_name, "queries", z.shape[1], TEXT_TOKENS)
    assert rows["image"].stop - rows["image"].start == image_tokens(kind)
    with torch.no_grad():
        image = attn.to_out[0](z[:, rows["image"]])
        text = attn.to_add_out(z[:, rows["text"]])
    assert torch.allclose(image, cache[attn_name], atol=1e-5)
    assert torch.allclose(text, cache[f"{attn_name}.text"], atol=1e-5)
    if kind == "flux":  # single-stream: the attention returns z merged, unprojected
        single = merge_heads(cache["single.0.joint.z"])
        assert torch.allclose(single, cache["single.0.joint"], atol=1e-5)


def test_quadrants_partition_the_joint_pattern(joint):
    kind, model, probe, inputs = joint
    _, cache = probe.run_with_cache(
        inputs["hidden_states"], inputs["timestep"], "block.1.joint.*", **_rest(inputs)
    )
    pattern = cache["block.1.joint.pattern"]
    q, k = cache["block.1.joint.q"], cache["block.1.joint.k"]
    expected = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1)
    assert torch.allclose(pattern, expected, atol=1e-6)
    n_image = image_tokens(kind)
    quadrants = {
        (a, b): probe.quadrant(pattern, "block.1.joint", a, b, text_tokens=TEXT_TOKENS)
        for a in ("image", "text")
        for b in ("image", "text")
    }
    sizes = {"image": n_image, "text": TEXT_TOKENS}
    for (a, b), block in quadrants.items():
        assert block.shape == (*pattern.shape[:2], sizes[a], sizes[b]), (a, b)
    for a in ("image", "text"):  # a query's attention is split between the two key segments
        total = quadrants[a, "image"].sum(-1) + quadrants[a, "text"].sum(-1)
        assert torch.allclose(total, torch.ones(()), atol=1e-5)
    mass = sum(block.sum() for block in quadrants.values())
    assert torch.allclose(mass, pattern.sum())


def test_head_ablation_removes_exactly_that_heads_projected_contribution(joint):
    kind, model, probe, inputs = joint
    attn_name, head = "block.1.joint", 1
    attn = model.get_submodule(probe.module_path(attn_name))
    before = processors(model)
    with torch.no_grad():
        base = model(**inputs).sample
        with probe.capture(f"{attn_name}*") as clean:
            model(**inputs)
        with probe.intervene(HeadAblation(attn_name, head)), probe.capture(f"{attn_name}*") as cut:
            ablated = model(**inputs).sample
    assert not torch.equal(base, ablated)
    assert torch.equal(cut[f"{attn_name}.z"][:, 0], clean[f"{attn_name}.z"][:, 0])
    assert not cut[f"{attn_name}.z"][:, head].any()
    z = clean[f"{attn_name}.z"]
    d = z.shape[-1]
    rows = probe.token_slices(attn_name, "queries", z.shape[2], TEXT_TOKENS)["image"]
    weight = attn.to_out[0].weight[:, head * d : (head + 1) * d]
    contribution = z[:, head, rows] @ weight.T
    change = cut[attn_name] - clean[attn_name]
    assert torch.allclose(change, -contribution, atol=1e-5)
    assert_clean(model, before)


def test_patching_a_text_stream_from_another_prompt(joint):
    kind, model, probe, inputs = joint
    other = {**inputs, "encoder_hidden_states": inputs["encoder_hidden_states"].flip(0)}
    with torch.no_grad():
        base = model(**inputs).sample
        with probe.capture("block.0.text") as donor:
            donor_out = model(**other).sample
        with probe.capture("block.0.text") as own:
            model(**inputs)
        with probe.intervene(Patch("block.0.text", own["block.0.text"])):
            same = model(**inputs).sample
        with probe.intervene(Patch("block.0.text", donor["block.0.text"])):
            patched = model(**inputs).sample
    assert torch.equal(same, base)  # patching a run's own activation changes nothing
    assert not torch.equal(patched, base) and not torch.equal(patched, donor_out)


def test_ablating_text_keys_empties_their_columns(joint):
    kind, model, probe, inputs = joint
    attn_name = "block.0.joint"
    keys = probe.token_slices(attn_name, "keys", image_tokens(kind) + TEXT_TOKENS, TEXT_TOKENS)
    text = list(range(keys["text"].start, keys["text"].stop))
    with (
        torch.no_grad(),
        probe.intervene(TokenAblation(attn_name, text)),
        probe.capture(f"{attn_name}.pattern") as cache,
    ):
        model(**inputs)
    pattern = cache[f"{attn_name}.pattern"]
    assert not pattern[..., keys["text"]].any()
    assert torch.allclose(pattern.sum(-1), torch.ones(()), atol=1e-5)


def test_streaming_keeps_float_timesteps_and_selects_on_them(joint):
    """Flow-matching models call the transformer with float timesteps (FLUX: in [0, 1])."""
    kind, model, probe, inputs = joint
    scale = 1.0 if kind == "flux" else 1000.0
    values = [0.9 * scale, 0.45 * scale, 0.25 * scale]
    name = f"{probe.attentions[-1]}.pattern"
    sink = MemorySink()
    with (
        torch.no_grad(),
        probe.stream(name, sink, timesteps=lambda t: t > 0.3 * scale) as state,
    ):
        for value in values:
            model(**{**inputs, "timestep": torch.full_like(inputs["timestep"], value)})
    assert state.step == 2
    assert sink.timesteps(name) == pytest.approx(values[:2])
    assert sink.stacked(name).shape[:3] == (2, len(inputs["timestep"]), 2)


def _rest(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if k not in ("hidden_states", "timestep")}
