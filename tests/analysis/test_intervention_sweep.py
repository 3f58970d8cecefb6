"""The intervention sweep: what it runs, and that replaying the clean prefix changes nothing."""

import numpy as np
import pytest
import torch

from diffusion_circuits.analysis.interventions import intervention_specs, run_interventions
from diffusion_circuits.analysis.probing import ProbeSet
from diffusion_circuits.model.factory import build_scheduler, build_unet
from diffusion_circuits.probe import Probe


@pytest.fixture
def model(tiny_params):
    return build_unet(tiny_params.model, seed=0).eval(), build_scheduler(tiny_params.scheduler)


def probe_set(n: int = 3) -> ProbeSet:
    generator = torch.Generator().manual_seed(5)
    x0 = torch.rand(n, 3, 16, 16, generator=generator) * 2 - 1
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


def test_sweep_with_replay_equals_the_plain_forward_and_ablation_hurts(
    tiny_params, model, monkeypatch
):
    unet, scheduler = model
    reference = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(6)) * 2 - 1
    args = (unet, scheduler, probe_set(), reference, [100, 900])
    kwargs = dict(seed=0, batch_size=3, params=tiny_params.analyze, progress=False)
    fast = run_interventions(*args, **kwargs)

    def without_replay(self, *interventions, replay=None):
        return original(self, *interventions)

    original = Probe.intervene
    monkeypatch.setattr(Probe, "intervene", without_replay)
    slow = run_interventions(*args, **kwargs)
    np.testing.assert_array_equal(fast["value"].to_numpy(), slow["value"].to_numpy())

    impact = fast[fast.metric == "impact"]
    assert set(impact.image_id) == {10, 11, 12} and set(impact.timestep) == {100, 900}
    group = impact[(impact.family == "layer_ablation") & (impact.method == "zero")]
    head = impact[(impact.family == "component_ablation") & impact.target.str.contains(".head.")]
    # Zeroing the whole bottleneck costs more than mean-ablating any one head.
    assert (
        group[group.target == "middle"]["value"].mean()
        > head.groupby("target")["value"].mean().max()
    )
