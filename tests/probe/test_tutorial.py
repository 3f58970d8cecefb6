"""examples/probe_tutorial.py runs end to end and shows what it says."""

import runpy
from pathlib import Path

import numpy as np
import torch

TUTORIAL = Path(__file__).resolve().parents[2] / "examples" / "probe_tutorial.py"


def test_tutorial_streams_cross_attention_and_ablates_a_window(tmp_path, capsys):
    main = runpy.run_path(str(TUTORIAL), run_name="tutorial")["main"]
    result = main(tmp_path)
    assert (tmp_path / "model" / "unet" / "config.json").exists()
    assert (tmp_path / "trajectory" / "manifest.json").exists()
    steps, images, tokens = result["weights"].shape
    assert (steps, images, tokens) == (10, 2, 6) and result["timesteps"][0] == 900
    assert np.allclose(result["weights"].sum(-1), 1, atol=1e-5)  # per-token weights, rows sum to 1
    assert not torch.allclose(result["clean"], result["ablated"])
    assert "RMS change" in capsys.readouterr().out
