"""The intervention sweep: what it runs, and that replaying the clean prefix changes nothing."""

import numpy as np
import pytest
import torch

from diffusion_circuits.analysis.interventions import intervention_specs, run_interventions
from diffusion_circuits.analysis.probing import ProbeSet
from diffusion_circuits.model.factory import build_scheduler, build_unet
from diffusion_circuits.probe import Head, Probe


@pytest.fixture
def model(tiny_params):
    return build_unet(tiny_params.model, seed=0).eval(), build_scheduler(tiny_params.scheduler)


def probe_set(n: int = 3, channels: int = 1) -> ProbeSet:
    generator = torch.Generator().manual_seed(5)
    x0 = torch.rand(n, channels, 16, 16, generator=generator) * 2 - 1
    images = ((x0.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return ProbeSet(np.arange(10, 10 + n), x0, images, None, "heldout")


def test_specs_cover_every_family_and_scope_decides_the_perturbation_targets(tiny_params, model):
    probe = Probe(model[0])
    layer = intervention_specs(probe, tiny_params.analyze)
    heads = tiny_params.analyze.model_copy(update={"perturbation_scope": "head"})
    per_head = intervention_specs(probe, heads)
    families = {s.family for s in layer}
    assert families == {
        "layer_ablation", "feature_scaling", "component_ablation",
        "attention_perturbation", "circuit_interruption",
    }  # fmt: skip
    perturbed = [s.target for s in per_head if s.family == "attention_perturbation"]
    assert len(perturbed) == 3 * sum(probe.attention_heads.values())  # 3 kinds x 24 heads
    assert "up.0.attn.1.head.7" in perturbed
    assert [s.target for s in layer if s.family == "attention_perturbation"] == [
        attn for attn in probe.attention_heads for _ in range(3)
    ]
    assert len(per_head) - len(layer) == 3 * (24 - 3)
    components = [s for s in layer if s.family == "component_ablation"]
    assert len(components) == 3 * (24 + len(probe.resnets))
    residuals = {s.target for s in components if Head.from_name(s.target) is None}
    assert residuals == {f"{r}.residual" for r in probe.resnets}  # the shortcut stays
    assert {(s.method, s.subset) for s in components} == {
        ("mean", False), ("resample", True), ("zero", True)
    }  # fmt: skip


def test_sweep_with_replay_equals_the_plain_forward_and_ablation_hurts(
    tiny_params, model, monkeypatch
):
    unet, scheduler = model
    channels = unet.config.in_channels
    reference = torch.rand(4, channels, 16, 16, generator=torch.Generator().manual_seed(6)) * 2 - 1
    args = (unet, scheduler, probe_set(channels=channels), reference, [100, 900])
    params = tiny_params.analyze.model_copy(update={"baseline_images": 2})
    kwargs = dict(seed=0, batch_size=2, params=params, progress=False)
    fast = run_interventions(*args, **kwargs)

    def without_replay(self, *interventions, replay=None):
        return original(self, *interventions)

    original = Probe.intervene
    monkeypatch.setattr(Probe, "intervene", without_replay)
    slow = run_interventions(*args, **kwargs)
    np.testing.assert_array_equal(fast["value"].to_numpy(), slow["value"].to_numpy())

    impact = fast[fast.metric == "impact"]
    assert set(impact.image_id) == {10, 11, 12} and set(impact.timestep) == {100, 900}
    assert set(fast.metric) == {"mse_base", "mse_int", "impact", "delta_mse"}
    wide = fast.pivot_table(
        index=["image_id", "timestep", "family", "target", "method"],
        columns="metric",
        values="value",
    )
    np.testing.assert_allclose(wide["delta_mse"], wide["mse_int"] - wide["mse_base"], rtol=1e-6)
    # Zero and resample component ablations ran on the first batch only (baseline_images=2).
    baselines = impact[(impact.family == "component_ablation") & (impact.method != "mean")]
    assert set(baselines.image_id) == {10, 11}
    # Zeroing, mean-ablating or scaling by 0 decoder_late makes the prediction the same
    # for every image (it no longer depends on the input): flagged, and nothing else is.
    constant = impact[impact.output_constant]
    assert set(zip(constant.family, constant.target, constant.method, strict=True)) >= {
        ("layer_ablation", "decoder_late", "zero"),
        ("layer_ablation", "decoder_late", "mean"),
        ("feature_scaling", "decoder_late", "x0"),
    }
    assert set(constant.target) == {"decoder_late"}
    group = impact[(impact.family == "layer_ablation") & (impact.method == "zero")]
    head = impact[(impact.family == "component_ablation") & impact.target.str.contains(".head.")]
    # Zeroing the last decoder group (the output becomes constant) moves the error more
    # than removing any one head. Untrained nets predict worse than a constant, so the
    # sign is not fixed; an untrained 1-channel net barely uses its bottleneck either.
    assert (
        group[group.target == "decoder_late"]["value"].abs().mean()
        > head[head.method == "mean"].groupby("target")["value"].mean().abs().max()
    )
