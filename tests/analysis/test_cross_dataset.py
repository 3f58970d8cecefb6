"""Feature transferability beside its untrained baseline; intervals over images."""

import numpy as np
import pandas as pd
import pytest
import torch

from diffusion_circuits.analysis.cross_dataset import feature_transferability, summarise_cross
from diffusion_circuits.analysis.model_io import TrainedModel
from diffusion_circuits.analysis.probing import ProbeSet
from diffusion_circuits.model.factory import build_scheduler, build_unet
from params_helper import params_with

SMALL = {
    "data": {"resolution": 16},
    "model": {
        "sample_size": 16,
        "block_out_channels": [8, 8, 16],
        "attention_head_dim": 8,
        "norm_num_groups": 8,
    },
}


def _model(dataset: str, unet, n: int, seed: int) -> TrainedModel:
    x0 = (
        torch.rand(
            n, unet.config.in_channels, 16, 16, generator=torch.Generator().manual_seed(seed)
        )
        * 2
        - 1
    )
    probe_set = ProbeSet(np.arange(n), x0, np.zeros((n, 16, 16), np.uint8), None, "heldout")
    params = params_with(SMALL)
    return TrainedModel(dataset, 0, unet.eval(), build_scheduler(params.scheduler), None, probe_set)


def test_cka_beside_the_untrained_baseline_with_image_intervals():
    params = params_with(SMALL)
    init, other = build_unet(params.model, seed=0), build_unet(params.model, seed=1)
    models = [_model("synthetic", init, 4, 0), _model("natural", other, 4, 1)]
    per_layer, summary = feature_transferability(
        models, init, timesteps=[100], seed=0, batch_size=4, n_resamples=50
    )
    wide = per_layer.pivot_table(index="hook", columns="metric", values="value")
    # The "synthetic" model is the untrained network itself: its baseline CKA is 1.
    assert np.allclose(wide["cka_untrained_synthetic"].dropna(), 1.0)
    assert np.allclose(wide["cka_baseline"].dropna(), 1.0)
    assert np.allclose(wide["cka_above_baseline"], wide["cka"] - wide["cka_baseline"])
    finite = per_layer.dropna()
    assert (finite["ci_low"] <= finite["ci_high"]).all() and len(finite) > 0
    assert set(per_layer["n_images"]) == {8}
    assert set(summary["scope"]) == {"timestep", "all"}
    overall = summary[(summary.scope == "all") & (summary.metric == "cka")].iloc[0]
    assert overall["value"] == pytest.approx(per_layer[per_layer.metric == "cka"]["value"].mean())
    assert overall["ci_low"] < overall["ci_high"]


def test_cross_accuracy_interval_resamples_each_probe_set():
    rng = np.random.default_rng(0)
    rows = [
        ("synthetic", d, i, 100, "accuracy", v)
        for d, centre in (("synthetic", 0.8), ("natural", 0.4))
        for i, v in enumerate(centre + 0.05 * rng.standard_normal(30))
    ]
    acc = pd.DataFrame(
        rows, columns=["model", "dataset", "image_id", "timestep", "metric", "value"]
    )
    out = summarise_cross(acc, n_resamples=500).iloc[0]
    assert out["value"] == pytest.approx(0.5, abs=0.03)
    assert out["ci_low"] < out["value"] < out["ci_high"] and out["ci_high"] - out["ci_low"] < 0.1
    assert (out["n_images_own"], out["n_images_other"]) == (30, 30)
