"""The report header's model-quality lines, read from the stage metrics of every seed."""

import json

from diffusion_circuits.params import Params
from diffusion_circuits.profiles import apply_profile, load_profile
from diffusion_circuits.report.inputs import model_quality, run_scale
from params_helper import params_with, raw_params


def _write(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def test_lines_name_each_seed_and_put_the_real_floor_beside_the_sample_error(tmp_path):
    params = params_with({"train": {"seeds": [0, 1]}, "probe": {"timesteps": [100, 900]}})
    for dataset in ("synthetic", "natural"):
        for seed in (0, 1):
            _write(
                tmp_path / "evaluate" / f"{dataset}-seed{seed}.json",
                {"margin_over_best_baseline": {"t100": 0.5, "t900": -0.00012}},
            )
    _write(
        tmp_path / "evaluate" / "natural-seed1.json",
        {
            "margin_over_best_baseline": {"t100": 0.5, "t900": 0.0002},
            "margin_ci_over_images": {"t100": [0.4, 0.6], "t900": [-0.0001, 0.0004]},
        },
    )
    samples = {"fraction_of_ceiling": {"precision": 0.51, "recall": 0.934}}
    _write(
        tmp_path / "samples" / "synthetic-seed0.json",
        {
            **samples,
            "max_attribute_frequency_error": 0.083,
            "max_attribute_frequency_error_of_real_draws": {"mean": 0.051, "q95": 0.078},
        },
    )
    _write(tmp_path / "samples" / "natural-seed0.json", samples)
    lines = model_quality(params, tmp_path)
    margins, quality, attributes, share, swap, precision = lines.values()
    assert share.startswith("synthetic: seed 0 not run") and swap == "needs two seeds"
    assert "t = 100 / 900" in next(iter(lines))
    assert margins.startswith("synthetic: seed 0 +0.5000 / -0.0001, seed 1 +0.5000 / -0.0001;")
    assert margins.endswith("seed 1 +0.5000 / +0.0002 (CI over images not above 0 at t = 900)")
    assert "seed 0 0.51 / 0.93, seed 1 not run" in quality
    assert attributes == (
        "synthetic: seed 0 0.08 (real draws: 0.05, 95th percentile 0.08), seed 1 not run; "
        "natural: seed 0 no attributes, seed 1 not run"
    )
    assert precision.count("not run") == 4


def test_a_tiny_run_says_it_is_a_smoke_run_and_the_default_does_not():
    assert run_scale(params_with()).startswith("study run")
    tiny = apply_profile(raw_params(), load_profile("tiny"))
    assert run_scale(Params.model_validate(tiny)).startswith("SMOKE RUN")
