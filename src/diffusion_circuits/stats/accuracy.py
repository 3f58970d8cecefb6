"""The accuracy table: the model's noise-prediction accuracy beside its no-learning baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffusion_circuits.layout import DATASETS
from diffusion_circuits.stats.compare import bootstrap_ci

__all__ = ["ACCURACY_METRICS", "accuracy_table", "margin_intervals"]

# metric -> column: the model, the two no-learning predictors, model minus the better one.
ACCURACY_METRICS = {
    "accuracy": "model",
    "accuracy_identity": "identity_predictor",
    "accuracy_gaussian": "gaussian_predictor",
    "accuracy_margin": "margin",
}


def accuracy_table(accuracy: pd.DataFrame, *, unit: str = "image_id") -> pd.DataFrame:
    """Mean held-out accuracy (R^2) per dataset and timestep, beside the baselines.

    Parameters
    ----------
    accuracy : tidy ``data/eval/<d>-seed<s>/accuracy.parquet`` rows (``dataset, timestep,
        metric, value`` and ``unit``); ``metric`` in :data:`ACCURACY_METRICS` (others,
        e.g. ``noise_mse``, are ignored).
    unit : values are averaged per unit (over seeds' models) first, then over units.

    Returns
    -------
    One row per dataset and timestep: ``dataset, timestep, n`` (units), ``model``,
    ``identity_predictor``, ``gaussian_predictor``, ``margin`` (model minus the better
    baseline): means over units; a metric the table lacks is absent.

    Examples
    --------
    >>> rows = pd.DataFrame({"dataset": "synthetic", "timestep": 100, "image_id": [0, 1] * 3,
    ...     "metric": ["accuracy"] * 2 + ["accuracy_identity"] * 2 + ["accuracy_gaussian"] * 2,
    ...     "value": [0.9, 0.7, -1.0, -1.0, 0.1, 0.3]})
    >>> accuracy_table(rows)[["model", "identity_predictor", "gaussian_predictor"]]
       model  identity_predictor  gaussian_predictor
    0    0.8                -1.0                 0.2
    """
    needed = ["dataset", "timestep", "metric", "value", unit]
    missing = [c for c in needed if c not in accuracy.columns]
    if missing:
        raise ValueError(f"accuracy table lacks column(s) {missing}; it has {list(accuracy.columns)}")  # fmt: skip
    rows = accuracy[accuracy["metric"].isin(list(ACCURACY_METRICS))]
    if not (rows["metric"] == "accuracy").any():
        raise ValueError("accuracy table has no 'accuracy' rows")
    keys = ["dataset", "timestep"]
    per_unit = rows.groupby([*keys, "metric", unit])["value"].mean()
    means = per_unit.groupby(level=[*keys, "metric"]).mean().unstack("metric")
    n = per_unit.xs("accuracy", level="metric").groupby(level=keys).size().rename("n")
    table = means.join(n).rename(columns=ACCURACY_METRICS).reset_index()
    columns = [*keys, "n", *[c for c in ACCURACY_METRICS.values() if c in table.columns]]
    order = {dataset: rank for rank, dataset in enumerate(DATASETS)}
    table = table.sort_values(keys, key=lambda s: s.map(order) if s.name == "dataset" else s)
    table = table[columns].reset_index(drop=True)
    table.columns.name = None
    table.attrs["unit_note"] = (
        "held-out R^2 of the noise prediction, mean over images; identity / Gaussian "
        "predictor: no-learning baselines; margin = model - the better baseline"
    )
    return table


def margin_intervals(
    accuracy: pd.DataFrame, *, n_resamples: int, seed: int, confidence: float
) -> dict[str, list[float]]:
    """``t<timestep> -> [low, high]``: BCa interval over images of one model's mean margin
    over the better no-learning baseline (``accuracy_margin`` rows of its accuracy table).

    Images are the unit of a claim about one model: the interval says whether a margin of
    a few 1e-4 is above 0 or inside the spread of the evaluation set.
    """
    margins = accuracy[accuracy["metric"] == "accuracy_margin"].groupby("timestep")["value"]
    ci = dict(n_resamples=n_resamples, seed=seed, confidence=confidence)
    return {
        f"t{t}": list(bootstrap_ci((values.to_numpy(),), np.mean, **ci)[:2])
        for t, values in margins
    }
