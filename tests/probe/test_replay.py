"""Replay of the clean prefix: same result as a full intervened run, less computed."""

import pytest
import torch
from unets import ARCHITECTURES, assert_clean, inputs, make_unet, processors

from diffusion_circuits.probe import (
    AttentionPerturbation,
    BottleneckCut,
    FeatureScaling,
    HeadAblation,
    Probe,
    SkipCut,
    ZeroAblation,
)
from diffusion_circuits.probe.replay import BlockRecord


def interventions_for(probe: Probe) -> list[list]:
    """One intervention (list) per kind of hook point, spread over the network."""
    out = [[ZeroAblation(name)] for name in probe.hook_points if name.split(".")[-1] not in
           ("q", "k", "v", "pattern", "z") and not name.startswith("skip.")]  # fmt: skip
    out += [[SkipCut(int(n.split(".")[1]))] for n in probe.hook_points if n.startswith("skip.")]
    out += [[BottleneckCut()]] if "mid" in probe.hook_points else []
    for attn in probe.attention_heads:
        out += [
            [HeadAblation(attn, 0)],
            [AttentionPerturbation(attn, kind="logit_noise", head=1, seed=3)],
            [AttentionPerturbation(attn, kind="uniform")],
        ]
    resnets = probe.resnets
    out.append([FeatureScaling(resnets[-1], 2.0), ZeroAblation(resnets[len(resnets) // 2])])
    return out


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
def test_replayed_runs_equal_full_runs_and_leave_nothing_behind(kind):
    unet = make_unet(kind)
    before = processors(unet)
    probe = Probe(unet)
    x, t = inputs()
    with torch.no_grad():
        with probe.record() as clean:
            base = unet(x, t).sample
        for interventions in interventions_for(probe):
            with probe.intervene(*interventions):
                full = unet(x, t).sample
            with probe.intervene(*interventions, replay=clean):
                fast = unet(x, t).sample
            assert torch.equal(full, fast), interventions
        assert torch.equal(unet(x, t).sample, base)
    assert_clean(unet, before)


def test_upstream_modules_do_not_run_and_downstream_ones_do():
    unet = make_unet("paper")
    probe = Probe(unet)
    x, t = inputs()
    calls: list[str] = []
    watched = {"down_blocks.0.resnets.0.conv1": "encoder", "up_blocks.2.resnets.0.conv1": "decoder"}
    with torch.no_grad():
        with probe.record() as clean:
            unet(x, t)
        handles = [
            unet.get_submodule(path).register_forward_hook(lambda *a, w=w: calls.append(w))
            for path, w in watched.items()
        ]
        try:
            with probe.intervene(HeadAblation("up.0.attn.0", 1), replay=clean):
                unet(x, t)
        finally:
            for handle in handles:
                handle.remove()
    assert calls == ["decoder"]


def test_replay_on_another_input_is_refused_and_cleaned_up():
    unet = make_unet("paper")
    before = processors(unet)
    probe = Probe(unet)
    x, t = inputs()
    with torch.no_grad():
        with probe.record() as clean:
            unet(x, t)
        late = ZeroAblation("up.1.resnet.0")
        with pytest.raises(ValueError, match="another input"), probe.intervene(late, replay=clean):
            unet(x + 1, t)
        with pytest.raises(ValueError, match="another input"), probe.intervene(late, replay=clean):
            unet(x, t + 1)
        with (
            pytest.raises(ValueError, match="empty"),
            probe.intervene(late, replay=BlockRecord(probe._map)),
        ):
            pass
    assert_clean(unet, before)
    assert all("forward" not in vars(m) for m in unet.modules())


def test_a_forward_already_wrapped_on_the_instance_comes_back():
    unet = make_unet("paper")
    probe = Probe(unet)
    resnet = unet.down_blocks[0].resnets[0]
    wrapped = resnet.forward  # a bound method stored on the instance, as wrappers do
    resnet.forward = wrapped
    x, t = inputs()
    with torch.no_grad():
        with probe.record() as clean:
            base = unet(x, t).sample
        with probe.intervene(ZeroAblation("up.2.resnet.0"), replay=clean):
            unet(x, t)
        assert vars(resnet)["forward"] is wrapped
        assert torch.equal(unet(x, t).sample, base)
