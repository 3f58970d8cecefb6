"""Attention's causal share and sample-level impact on tiny models whose answer is known."""

import contextlib
import math

import numpy as np
import pytest
import torch

from diffusion_circuits.analysis.attention_share import (
    attention_branches_removed,
    one_step_share,
    share_runs,
    share_summary,
    yardstick_resnet,
)
from diffusion_circuits.analysis.interventions import intervention_specs, sample_level_specs
from diffusion_circuits.analysis.probing import ProbeSet
from diffusion_circuits.analysis.sample_impact import (
    SampleRun,
    sample_impact,
    share_sample_runs,
    spec_sample_runs,
)
from diffusion_circuits.model.factory import build_scheduler, build_unet
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.probe import Probe


def probe_set(n: int = 3) -> ProbeSet:
    x0 = torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(5)) * 2 - 1
    images = ((x0.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return ProbeSet(np.arange(n), x0, images, None, "heldout")


@pytest.fixture
def model(tiny_params):
    return build_unet(tiny_params.model, seed=0).eval(), build_scheduler(tiny_params.scheduler)


def _summary(unet, scheduler):
    table = one_step_share(unet, scheduler, probe_set(), [100, 600], seed=0, batch_size=3)
    return share_summary(table).set_index(["target", "method", "timestep"])


def test_zero_output_projections_give_share_zero_and_identical_samples(model):
    unet, scheduler = model
    for attn in Probe(unet).attention_heads:
        out = unet.get_submodule(Probe(unet).module_path(attn)).to_out[0]
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.zeros_(out.bias)
    summary = _summary(unet, scheduler)
    attention = summary.drop(index=yardstick_resnet(Probe(unet)), level="target")
    # the residual alone, handed on in another memory layout: equal up to float rounding
    assert attention["mse_rise"].abs().max() < 1e-6 and attention["share"].abs().max() < 1e-6
    assert (attention.xs("uniform", level="method")["mse_rise"] == 0).all()
    probe = Probe(unet)
    runs = [r for r in share_runs(probe) if r.target == "attention"]
    table, _ = sample_impact(
        unet, scheduler, share_sample_runs(probe, runs), 2, 3, 0, progress=False
    )
    assert table.loc[table.metric == "rms_distance", "value"].max() < 1e-5


def _attention_only(unet):
    """Hand-built: the decoder sees the input only through the mid attention's branch, and
    everything after that branch is bias-free, so without the branch the output is 0."""
    unet.mid_block.attentions[0].residual_connection = False
    after = [unet.mid_block.resnets[1], *unet.up_blocks, unet.conv_norm_out, unet.conv_out]
    widths = list(reversed(unet.config.block_out_channels))
    with torch.no_grad():
        for module in after:
            for name, parameter in module.named_parameters():
                if name.endswith("bias") or "time_emb_proj" in name:
                    parameter.zero_()
        for j, block in enumerate(unet.up_blocks):
            for i, resnet in enumerate(block.resnets):
                # an up-block resnet reads cat([hidden, skip]): hidden first
                hidden = (widths[j - 1] if j else widths[0]) if i == 0 else widths[j]
                resnet.conv1.weight[:, hidden:] = 0
                if resnet.conv_shortcut is not None:
                    resnet.conv_shortcut.weight[:, hidden:] = 0
    return unet


def test_attention_carrying_all_the_signal_has_share_one(tiny_params):
    # equal widths: every group norm of a decoder resnet keeps hidden and skip channels in
    # separate groups, so cutting the skip's weights cuts everything it carries
    config = tiny_params.model.model_copy(update={"block_out_channels": (32, 32, 32)})
    unet, scheduler = build_unet(config, seed=0).eval(), build_scheduler(tiny_params.scheduler)
    _attention_only(unet)
    with attention_branches_removed(Probe(unet), ["mid.attn.0"]), torch.no_grad():
        assert unet(torch.randn(2, 1, 16, 16), torch.tensor([5, 500])).sample.abs().max() == 0
    summary = _summary(unet, scheduler)
    for target in ("attention", "mid.attn.0"):
        shares = summary.loc[(target, "branch_zero"), "share"]
        assert shares.to_numpy() == pytest.approx(1.0, abs=1e-9)
    assert (summary.loc[("mid.attn.0", "branch_zero"), "mse_rise"].abs() > 0).all()


def test_yardstick_is_the_resnet_nearest_an_attention_layer_in_parameters(model):
    unet, _ = model
    probe = Probe(unet)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    attention = np.mean(
        [count(unet.get_submodule(probe.module_path(a))) for a in probe.attention_heads]
    )
    branch = {}
    for resnet in probe.resnets:
        module = unet.get_submodule(probe.module_path(resnet))
        shortcut = count(module.conv_shortcut) if module.conv_shortcut is not None else 0
        branch[resnet] = count(module) - shortcut
    gaps = {r: abs(math.log(b / attention)) for r, b in branch.items()}
    assert yardstick_resnet(probe) == min(gaps, key=gaps.get)
    assert [r.target for r in share_runs(probe)][-1] == yardstick_resnet(probe)


def test_identity_intervention_has_sample_impact_zero_on_common_noise(model, tiny_params):
    unet, scheduler = model
    probe = Probe(unet)
    analyze = tiny_params.analyze.model_copy(update={"scaling_factors": (1.0, 0.0)})
    specs = [s for s in sample_level_specs(intervention_specs(probe, analyze))]
    scaling = [s for s in specs if s.family == "feature_scaling" and s.target == "middle"]
    reference = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    runs = spec_sample_runs(probe, scheduler, scaling, reference, seed=0)
    runs.append(SampleRun("none", "none", "identity", lambda t: contextlib.nullcontext()))
    table, intact = sample_impact(unet, scheduler, runs, 3, 4, seed=7, progress=False)
    assert torch.equal(intact, sample_trajectory(unet, scheduler, 3, 7, 4, record=[]).samples)
    rms = table[table.metric == "rms_distance"].groupby("method")["value"].max()
    assert rms["x1"] == 0 and rms["identity"] == 0
    assert rms["x0"] > 0.01  # zeroing the middle's output moves every sample


def test_sample_level_specs_keep_one_method_for_ablations_and_every_scaling(model, tiny_params):
    probe = Probe(model[0])
    specs = sample_level_specs(intervention_specs(probe, tiny_params.analyze))
    methods = {(s.family, s.method) for s in specs}
    assert ("component_ablation", "mean") in methods and (
        "component_ablation",
        "zero",
    ) not in methods
    assert ("layer_ablation", "resample") not in methods
    assert {m for f, m in methods if f == "feature_scaling"} == {"x0", "x0.5", "x2"}
    mean_ablations = [s for s in specs if s.method == "mean"]
    reference = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    runs = spec_sample_runs(probe, model[1], mean_ablations[:3], reference, seed=0)
    table, _ = sample_impact(model[0], model[1], runs, 2, 2, seed=0, progress=False)
    assert set(table.target) == {s.target for s in mean_ablations[:3]}
