"""dvc-plots curves: tidy rows (timestep, dataset, estimate, ci_low, ci_high), seed-level CIs."""

import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.figures.curves import timestep_curve
from diffusion_circuits.stats.seed_level import crossed_mean


def test_one_tidy_row_per_timestep_and_dataset_with_the_crossed_interval():
    rng = np.random.default_rng(0)
    values = pd.DataFrame([
        {"dataset": d, "seed": s, "image_id": i, "timestep": t, "value": rng.normal()}
        for d in ("synthetic", "natural") for s in range(3) for i in range(5) for t in (100, 900)
    ])  # fmt: skip
    curve = timestep_curve(values, confidence=0.95)
    assert list(curve.columns) == ["timestep", "dataset", "estimate", "ci_low", "ci_high"]
    assert len(curve) == 4
    part = values[(values.dataset == "natural") & (values.timestep == 900)]
    expected = crossed_mean(part.pivot(index="seed", columns="image_id", values="value").to_numpy())
    row = curve[(curve.dataset == "natural") & (curve.timestep == 900)].iloc[0]
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx(
        (expected["estimate"], expected["ci_low"], expected["ci_high"]))  # fmt: skip
