"""Circuit complexity, component rankings and circuit robustness (paper 4.2, 4.6, 4.9)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from diffusion_circuits.metrics.impact import participation_ratio

__all__ = ["circuit_complexity", "top_components", "circuit_robustness"]


def _component_impacts(interventions: pd.DataFrame) -> pd.DataFrame:
    rows = interventions[
        (interventions["family"] == "component_ablation") & (interventions["metric"] == "impact")
    ]
    if rows.empty:
        raise ValueError("no component_ablation impact rows: run the interventions first")
    return rows


def circuit_complexity(interventions: pd.DataFrame) -> pd.DataFrame:
    """Participation ratio of the per-image component impacts, per image and timestep.

    Returns
    -------
    DataFrame ``image_id, timestep, metric="circuit_complexity", value, n_components``.
    """
    rows = _component_impacts(interventions)
    wide = rows.pivot_table(index=["image_id", "timestep"], columns="target", values="value")
    ratio = participation_ratio(torch.tensor(wide.to_numpy(dtype=np.float64)))
    out = wide.index.to_frame(index=False)
    out["metric"] = "circuit_complexity"
    out["value"] = ratio.numpy()
    out["n_components"] = wide.shape[1]
    return out


def top_components(interventions: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ``k`` components with the largest mean impact at each timestep (rank 1 = largest)."""
    rows = _component_impacts(interventions)
    means = rows.groupby(["timestep", "target"], as_index=False)["value"].mean()
    means["rank"] = means.groupby("timestep")["value"].rank(ascending=False, method="first")
    top = means[means["rank"] <= k].sort_values(["timestep", "rank"])
    return top.rename(columns={"value": "mean_impact"}).reset_index(drop=True)


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else float("nan")


def circuit_robustness(tops: pd.DataFrame) -> pd.DataFrame:
    """Overlap (Jaccard) of top-k component sets across datasets and across timesteps.

    ``tops`` is :func:`top_components` output with a ``dataset`` column. Returns one row
    per compared pair: ``comparison`` ("across_datasets" at one timestep, or
    "across_timesteps" within one dataset), ``dataset``, ``timestep``, ``timestep_b``,
    ``metric="top_k_overlap"``, ``value``.
    """
    sets = {key: set(group["target"]) for key, group in tops.groupby(["dataset", "timestep"])}
    datasets = sorted({d for d, _ in sets})
    timesteps = sorted({t for _, t in sets})
    rows = []
    for t in timesteps:
        for a, b in itertools.combinations(datasets, 2):
            if (a, t) in sets and (b, t) in sets:
                rows.append(("across_datasets", f"{a}|{b}", t, t, _jaccard(sets[a, t], sets[b, t])))
    for d in datasets:
        for t, u in itertools.combinations(timesteps, 2):
            if (d, t) in sets and (d, u) in sets:
                rows.append(("across_timesteps", d, t, u, _jaccard(sets[d, t], sets[d, u])))
    out = pd.DataFrame(rows, columns=["comparison", "dataset", "timestep", "timestep_b", "value"])
    out.insert(4, "metric", "top_k_overlap")
    return out
