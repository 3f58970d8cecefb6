import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.analysis.circuits import (
    circuit_complexity,
    circuit_robustness,
    top_components,
)


def component_rows(impacts: dict[str, list[float]], timestep: int = 100) -> pd.DataFrame:
    rows = []
    for target, values in impacts.items():
        for image, value in enumerate(values):
            rows.append(
                {
                    "image_id": image,
                    "timestep": timestep,
                    "family": "component_ablation",
                    "target": target,
                    "method": "mean",
                    "metric": "impact",
                    "value": value,
                }
            )
    return pd.DataFrame(rows)


def test_circuit_complexity_is_the_participation_ratio_per_image():
    table = component_rows({"a": [1.0, 2.0], "b": [1.0, 0.0], "c": [1.0, -1.0], "d": [1.0, 0.0]})
    out = circuit_complexity(table).sort_values("image_id")
    assert out["value"].tolist() == pytest.approx([1.0, 0.25])
    assert set(out["n_components"]) == {4}
    with pytest.raises(ValueError, match="no component_ablation"):
        circuit_complexity(table.assign(family="layer_ablation"))


def test_top_components_and_robustness():
    early = component_rows({"a": [3.0], "b": [2.0], "c": [1.0]}, 100)
    late = component_rows({"a": [1.0], "b": [2.0], "c": [3.0]}, 900)
    tops = pd.concat(
        [
            top_components(pd.concat([early, late]), k=2).assign(dataset="synthetic"),
            top_components(early, k=2).assign(dataset="natural"),
        ]
    )
    assert tops[(tops.dataset == "synthetic") & (tops.timestep == 100)]["target"].tolist() == [
        "a",
        "b",
    ]
    robust = circuit_robustness(tops)
    across = robust[robust["comparison"] == "across_datasets"]
    assert across["value"].tolist() == [1.0]  # same top-2 at t=100
    within = robust[
        (robust["comparison"] == "across_timesteps") & (robust["dataset"] == "synthetic")
    ]
    assert within["value"].tolist() == pytest.approx([1 / 3])  # {a,b} vs {b,c}
    assert np.isfinite(robust["value"]).all()
