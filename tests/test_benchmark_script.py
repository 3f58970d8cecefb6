"""scripts/benchmark.py's reference model stays the fixed 2026-12-01 default model.

Every time in the docs is scaled by the plain loop's rate on this model, so the script
must keep building it whatever params.yaml grows (a new required key once broke it).
"""

from pathlib import Path

from script_helper import load_script

ROOT = Path(__file__).resolve().parents[1]


def test_reference_params_build_the_fixed_reference_unet(monkeypatch):
    monkeypatch.chdir(ROOT)
    params = load_script("benchmark").reference_params()
    assert params.model.backbone == "unet"
    assert (params.model.in_channels, params.data.resolution) == (3, 32)
    assert list(params.model.block_out_channels) == [32, 64, 256]
    assert params.train.batch_size == 32
    assert params.scheduler.prediction_type == "epsilon"
