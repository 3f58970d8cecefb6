"""Diffusion transformers (DiT, PixArt-alpha): conditioning hook points mean what they say."""

import pytest
import torch
from models import make_model, model_inputs
from unets import assert_clean

from diffusion_circuits.probe import Probe, ZeroAblation


@pytest.fixture(scope="module")
def dit():
    model = make_model("dit")
    return model, Probe(model), model_inputs("dit")


@pytest.fixture(scope="module")
def pixart():
    model = make_model("pixart")
    return model, Probe(model), model_inputs("pixart")


def test_dit_adaln_is_the_blocks_modulation_and_zeroing_it_makes_the_block_an_identity(dit):
    model, probe, inputs = dit
    names = ["block.2", "block.3.adaln", "block.3", "patch_embed", "proj_out"]
    with torch.no_grad(), probe.capture(names) as clean:
        model(**inputs)
        norm1 = model.transformer_blocks[3].norm1
        emb = norm1.emb(inputs["timestep"], inputs["class_labels"], hidden_dtype=torch.float32)
        modulation = norm1.linear(norm1.silu(emb))
    assert torch.equal(clean["block.3.adaln"], modulation)
    assert clean["block.3.adaln"].shape == (2, 6 * 8)  # shift, scale, gate x (attn, mlp)
    assert clean["patch_embed"].shape == (2, 16, 8) and clean["proj_out"].shape == (2, 16, 32)
    with torch.no_grad(), probe.intervene(ZeroAblation("block.3.adaln")), probe.capture(names) as c:
        model(**inputs)
    assert torch.equal(c["block.3"], c["block.2"])  # adaLN-Zero: zero gates skip the block
    assert torch.equal(c["block.2"], clean["block.2"])
    assert probe.group_of("block.3.adaln") == probe.group_of("block.3") == "middle_blocks"
    assert_clean(model)


def test_pixart_shared_conditioning_and_text_tokens(pixart):
    model, probe, inputs = pixart
    assert probe.hook_points[:4] == ["patch_embed", "time_emb", "adaln", "text_proj"]
    assert probe.group_of("adaln") is None and probe.group_of("text_proj") == "early_blocks"
    with torch.no_grad(), probe.capture(["time_emb", "adaln", "text_proj", "block.0.cross.k"]) as c:
        model(**inputs)
        modulation, embedded = model.adaln_single(
            inputs["timestep"], None, batch_size=2, hidden_dtype=torch.float32
        )
        text = model.caption_projection(inputs["encoder_hidden_states"])
    assert torch.equal(c["adaln"], modulation) and torch.equal(c["time_emb"], embedded)
    assert torch.equal(c["text_proj"], text)
    assert c["block.0.cross.k"].shape[2] == inputs["encoder_hidden_states"].shape[1]
    # the layer groups of a 4-block transformer: early, middle and late blocks by depth
    groups = {g: [n for n in v if n.count(".") == 1] for g, v in probe.layer_groups.items()}
    assert groups == {
        "early_blocks": ["block.0", "block.1"], "middle_blocks": ["block.2"],
        "late_blocks": ["block.3"],
    }  # fmt: skip
    assert_clean(model)
