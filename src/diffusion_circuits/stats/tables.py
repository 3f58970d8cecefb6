"""The paper's Tables 1-4, computed from the tidy analysis tables, and a Markdown writer.

With one training seed the statistical unit is the image and the model is fixed: the
tables then speak about this model's behaviour on these images, not about training runs.
With several seeds pass ``unit="seed"`` for model-level claims. Every table records its
unit in ``attrs["unit_note"]``, which :func:`to_markdown` prints under the table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from diffusion_circuits.stats.compare import bootstrap_ci, compare_datasets
from diffusion_circuits.stats.corrections import adjust_family

__all__ = [
    "GROUP_ORDER",
    "unit_note",
    "table1_circuit_complexity",
    "table2_head_specialisation",
    "table3_layer_ablation",
    "table4_cross_dataset",
    "to_markdown",
]

GROUP_ORDER = (
    "encoder_early", "encoder_middle", "encoder_late", "middle",
    "decoder_early", "decoder_middle", "decoder_late",
)  # fmt: skip

TABLE1_COLUMNS = [
    "timestep", "n_a", "n_b", "mean_a", "sd_a", "mean_b", "sd_b", "ratio", "estimate",
    "ci_low", "ci_high", "effect_size", "effect_label", "power", "p_value", "p_bonferroni",
    "p_holm", "significant", "note",
]  # fmt: skip


def unit_note(unit: str) -> str:
    """One line saying what the statistical unit of a table is."""
    if unit == "seed":
        return "unit: training seed (model-level comparison across independently trained models)"
    if unit == "image_id":
        return (
            "unit: image (one trained model per dataset, held fixed: the tests speak about "
            "these models on these images, not about training runs)"
        )
    return f"unit: {unit}"


def _finish(table: pd.DataFrame, unit: str, **attrs) -> pd.DataFrame:
    table = table.reset_index(drop=True)
    table.attrs.update(attrs, unit=unit, unit_note=unit_note(unit))
    return table


def _check_columns(df: pd.DataFrame, needed, what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def _select(df: pd.DataFrame, column: str, allowed, what: str) -> pd.DataFrame:
    rows = df[df[column].isin(list(allowed))]
    if rows.empty:
        present = sorted(df[column].dropna().unique().tolist(), key=str)
        raise ValueError(f"{what}: no rows with {column} in {list(allowed)}; present: {present}")
    return rows


def table1_circuit_complexity(
    circuit_df: pd.DataFrame, *, unit: str = "image_id", **compare_kwargs
) -> pd.DataFrame:
    """Table 1: circuit complexity per timestep, natural vs synthetic.

    Uses the rows with ``metric == "circuit_complexity"``; ``compare_kwargs`` go to
    :func:`compare_datasets` (``groups``, ``n_resamples``, ``seed``, ``confidence``).

    Returns
    -------
    One row per timestep: ``timestep, n_a, n_b, mean_a, sd_a, mean_b, sd_b`` (a =
    synthetic, b = natural), ``ratio`` (mean_b / mean_a, the paper's "Ratio"),
    ``estimate`` (mean_b - mean_a) with bootstrap ``ci_low, ci_high``, ``effect_size``
    (Cohen's d), ``effect_label``, ``power``, ``p_value`` (Welch), ``p_bonferroni`` and
    ``p_holm`` over the timesteps of the table, ``significant`` (Holm, alpha .05), ``note``.

    Examples
    --------
    >>> df = pd.DataFrame({"dataset": ["synthetic"] * 3 + ["natural"] * 3,
    ...     "image_id": [0, 1, 2, 0, 1, 2], "timestep": 100, "metric": "circuit_complexity",
    ...     "value": [0.1, 0.2, 0.3, 0.2, 0.3, 0.4]})
    >>> table1_circuit_complexity(df, n_resamples=100)[["timestep", "ratio"]].round(2)
       timestep  ratio
    0       100    1.5
    """
    _check_columns(circuit_df, ["metric", "timestep"], "circuit table")
    rows = _select(circuit_df, "metric", ["circuit_complexity"], "table 1")
    table = adjust_family(compare_datasets(rows, by=["timestep"], unit=unit, **compare_kwargs))
    return _finish(table[TABLE1_COLUMNS], unit, groups=table.attrs["groups"],
                   confidence=table.attrs["confidence"])  # fmt: skip


def table2_head_specialisation(
    attention_df: pd.DataFrame,
    roles_df: pd.DataFrame,
    *,
    unit: str = "image_id",
    timestep: int | None = None,
) -> pd.DataFrame:
    """Table 2: each attention head's data-derived role, entropy and specialisation.

    Parameters
    ----------
    attention_df : tidy attention table (``dataset, hook, head, metric, value`` and the
        unit column; ``metric`` in ``entropy`` (bits), ``specialisation``).
    roles_df : ``hook, head, role, edge_score, texture_score, semantic_score`` (and
        ``semantic_part``); with a ``dataset`` column when roles differ per dataset and a
        ``seed`` column when several models were trained per dataset.
    unit : rows are averaged per unit first (over timesteps unless ``timestep`` is given),
        then summarised over units. Heads belong to one trained model, so the unit must
        be an image-level column, not the seed.
    timestep : restrict to one timestep (the paper shows t = 300); None pools all.

    Returns
    -------
    One row per dataset (and seed, when several) and head: ``dataset, hook,
    [layer_group], head, role, n`` (units), ``entropy_mean, entropy_sd`` (bits),
    ``specialisation_mean, specialisation_sd``, ``edge_score, texture_score,
    semantic_score`` [, ``semantic_part``].

    Examples
    --------
    >>> att = pd.DataFrame({"dataset": "synthetic", "hook": "mid.attn.0", "head": 0,
    ...     "image_id": [0, 1, 0, 1], "metric": ["entropy"] * 2 + ["specialisation"] * 2,
    ...     "value": [2.0, 4.0, 0.5, 0.3]})
    >>> roles = pd.DataFrame({"hook": ["mid.attn.0"], "head": [0], "role": ["edge"],
    ...     "edge_score": [0.4], "texture_score": [0.1], "semantic_score": [0.2]})
    >>> table2_head_specialisation(att, roles)[["role", "n", "entropy_mean", "specialisation_mean"]]
       role  n  entropy_mean  specialisation_mean
    0  edge  2           3.0                  0.4
    """
    scores = ["role", "edge_score", "texture_score", "semantic_score"]
    _check_columns(attention_df, ["dataset", "hook", "head", "metric", "value", unit], "attention table")  # fmt: skip
    _check_columns(roles_df, ["hook", "head", *scores], "roles table")
    rows = _select(attention_df, "metric", ["entropy", "specialisation"], "table 2")
    if timestep is not None:
        _check_columns(rows, ["timestep"], "attention table")
        rows = _select(rows, "timestep", [timestep], "table 2")
    seeds = "seed" in roles_df.columns and roles_df["seed"].nunique() > 1
    role_keys = [c for c in ("dataset",) if c in roles_df.columns] + (["seed"] if seeds else [])
    keys = ["dataset", *(["seed"] if seeds else []), "hook", "head"]
    _check_columns(rows, keys, "attention table")
    if unit in keys:
        raise ValueError(f"table 2 describes the heads of each model; unit must be image-level, not {unit!r}")  # fmt: skip
    per_unit = rows.groupby([*keys, "metric", unit], dropna=False)["value"].mean()
    summary = per_unit.groupby(level=[*keys, "metric"]).agg(["mean", "std", "count"])
    summary = summary.rename(columns={"std": "sd"}).unstack("metric")
    summary.columns = [f"{metric}_{stat}" for stat, metric in summary.columns]
    summary = summary.reset_index().rename(columns={"entropy_count": "n"})
    role_columns = [*role_keys, "hook", "head"]
    if roles_df.duplicated(role_columns).any():
        raise ValueError(f"roles table has several rows per {role_columns}; add the dataset/seed column")  # fmt: skip
    extra = [c for c in ("semantic_part",) if c in roles_df.columns]
    table = summary.merge(roles_df[[*role_columns, *scores, *extra]], on=role_columns, how="left")
    group = []
    if "layer_group" in rows.columns:
        group = ["layer_group"]
        groups = rows.drop_duplicates("hook").set_index("hook")["layer_group"]
        table["layer_group"] = table["hook"].map(groups)
    columns = [*keys[:-1], *group, "head", "role", "n", "entropy_mean", "entropy_sd",
               "specialisation_mean", "specialisation_sd", *scores[1:], *extra]  # fmt: skip
    order = {"synthetic": 0, "natural": 1}  # the paper's column order, others after
    table = table.reindex(columns=columns).sort_values(
        keys, key=lambda s: s.map(lambda v: (order.get(v, 2), v)) if s.name == "dataset" else s
    )
    return _finish(table, unit, timestep=timestep)


def table3_layer_ablation(
    interventions_df: pd.DataFrame,
    *,
    dataset: str = "synthetic",
    timestep: int = 300,
    method: str = "zero",
    family: str | None = "layer_ablation",
    unit: str = "image_id",
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Table 3: ablating each layer group at one timestep, ranked by mean impact.

    Uses rows of ``dataset``, ``timestep`` and ``method`` (and ``family`` when the table
    has a ``family`` column; None keeps all), ``target`` = layer group, ``metric`` in
    ``mse_base, mse_int, impact``. Values are averaged per unit first.

    Returns
    -------
    One row per layer group (paper order, others after): ``dataset, timestep, method,
    layer_group, n`` (units), ``mse_base, mse_ablated`` (means over units), ``impact``
    (mean of the per-unit impacts I = (MSE_int - MSE_base) / MSE_base), ``impact_sd``,
    ``ci_low, ci_high`` (bootstrap CI of the mean impact), ``rank`` (1 = largest mean
    impact; ties share the smallest rank).

    Examples
    --------
    >>> df = pd.DataFrame({"dataset": "synthetic", "timestep": 300, "method": "zero",
    ...     "image_id": 0, "target": ["middle", "encoder_early"], "metric": "impact",
    ...     "value": [1.5, 0.2]})
    >>> table3_layer_ablation(df)[["layer_group", "impact", "rank"]]
         layer_group  impact  rank
    0  encoder_early     0.2     2
    1         middle     1.5     1
    """
    needed = ["dataset", "timestep", "method", "target", "metric", "value", unit]
    _check_columns(interventions_df, needed, "interventions table")
    rows = interventions_df
    if family is not None and "family" in rows.columns:
        rows = _select(rows, "family", [family], "table 3")
    chosen = rows[(rows["dataset"] == dataset) & (rows["timestep"] == timestep)
                  & (rows["method"] == method) & (rows["metric"] == "impact")]  # fmt: skip
    if chosen.empty:
        present = {c: sorted(rows[c].dropna().unique().tolist(), key=str)
                   for c in ("dataset", "timestep", "method")}  # fmt: skip
        raise ValueError(
            f"table 3: no impact rows for dataset={dataset!r}, timestep={timestep}, "
            f"method={method!r}; present: {present}"
        )
    rows = rows[(rows["dataset"] == dataset) & (rows["timestep"] == timestep)
                & (rows["method"] == method)]  # fmt: skip
    wide = rows.pivot_table(
        index=["target", unit], columns="metric", values="value", aggfunc="mean"
    )
    wide = wide.reindex(columns=["mse_base", "mse_int", "impact"])
    targets = wide.index.get_level_values("target").unique()
    order = [g for g in GROUP_ORDER if g in targets] + sorted(set(targets) - set(GROUP_ORDER))
    out = []
    for group in order:
        part = wide.loc[group]
        impact = part["impact"].to_numpy(dtype=float)
        impact = impact[np.isfinite(impact)]
        low, high = np.nan, np.nan
        if len(impact) >= 2 and np.ptp(impact) > 0:
            low, high, _ = bootstrap_ci((impact,), np.mean, n_resamples=n_resamples,
                                        seed=seed, confidence=confidence)  # fmt: skip
        out.append({
            "dataset": dataset, "timestep": timestep, "method": method, "layer_group": group,
            "n": len(impact), "mse_base": part["mse_base"].mean(),
            "mse_ablated": part["mse_int"].mean(),
            "impact": impact.mean() if len(impact) else np.nan,
            "impact_sd": impact.std(ddof=1) if len(impact) > 1 else np.nan,
            "ci_low": low, "ci_high": high,
        })  # fmt: skip
    table = pd.DataFrame(out)
    table["rank"] = table["impact"].rank(ascending=False, method="min").astype("Int64")
    return _finish(table, unit, confidence=confidence)


def table4_cross_dataset(
    frames: dict[str, pd.DataFrame], *, unit: str = "image_id", **compare_kwargs
) -> pd.DataFrame:
    """Table 4: one natural-vs-synthetic comparison per metric, pooled per unit.

    Parameters
    ----------
    frames : label -> tidy table already filtered to that metric, e.g.
        ``{"circuit_complexity": ..., "attention_entropy": ..., "feature_complexity": ...,
        "intervention_impact": ...}`` (feature complexity is the paper's "feature
        hierarchy"). Rows are averaged per unit over timesteps, hooks and heads.
    unit, compare_kwargs : passed to :func:`compare_datasets`.

    Returns
    -------
    ``metric`` (the label), then the :func:`compare_datasets` columns, then
    ``p_bonferroni``, ``p_holm`` and ``significant`` over the family of these rows.
    """
    if not frames:
        raise ValueError("table 4 needs at least one metric frame")
    rows = []
    for label, frame in frames.items():
        if "metric" in frame.columns and frame["metric"].nunique() > 1:
            raise ValueError(f"table 4: frame {label!r} holds several metrics {sorted(frame['metric'].unique())}; filter it to one")  # fmt: skip
        pooled = frame.assign(metric=label)
        rows.append(compare_datasets(pooled, by=["metric"], unit=unit, **compare_kwargs))
    attrs = dict(rows[0].attrs)
    table = adjust_family(pd.concat(rows, ignore_index=True))
    return _finish(table, unit, groups=attrs["groups"], confidence=attrs["confidence"])


# ---- Markdown -------------------------------------------------------------------------

P_COLUMNS = ("p_value", "ks_p_value")


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _number(value) -> str:
    """4 significant digits; integral values without decimals; NA for missing."""
    if _is_missing(value):
        return "NA"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.replace("|", "\\|")
    value = float(value)
    if abs(value) < 1e9 and (value.is_integer() or abs(value) >= 1e4):
        return f"{value:.0f}"  # counts, ranks, timesteps; large values without exponent
    return f"{value:.4g}"


def _p(value) -> str:
    if _is_missing(value):
        return "NA"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mean_sd(mean, sd) -> str:
    """SD to 2 significant digits and the mean to the same decimals (0.1100 ± 0.0080)."""
    if _is_missing(mean) or _is_missing(sd) or not math.isfinite(sd) or sd <= 0:
        return _number(mean)
    decimals = min(max(0, 1 - math.floor(math.log10(sd))), 12)
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def _pairs(columns, groups) -> list[tuple[str, str, str]]:
    """(mean column, sd column, header) for mean_a/sd_a and x_mean/x_sd pairs."""
    found = []
    for column in columns:
        if column.startswith("mean_") and f"sd_{column[5:]}" in columns:
            suffix = column[5:]
            name = {"a": groups[0], "b": groups[1]}.get(suffix, suffix) if groups else suffix
            found.append((column, f"sd_{suffix}", f"{name} (mean ± sd)"))
        elif column.endswith("_mean") and f"{column[:-5]}_sd" in columns:
            found.append((column, f"{column[:-5]}_sd", f"{column[:-5]} (mean ± sd)"))
    return found


def to_markdown(table: pd.DataFrame, caption: str, note: str | None = None, *, columns=None) -> str:
    """A GitHub pipe table with a bold caption line and notes under it.

    Means and SDs become one "mean ± sd" column (a/b named after ``attrs["groups"]``),
    ``ci_low``/``ci_high`` one "[lo, hi]" column, p-values show 3 decimals or "<0.001",
    other numbers 4 significant digits, booleans yes/no, missing values "NA". A constant
    ``test`` or ``contrast`` column, ``note`` and ``attrs["unit_note"]`` go under the
    table; an all-empty ``note`` column is left out. ``columns`` selects columns first.

    Examples
    --------
    >>> t = pd.DataFrame({"timestep": [100], "mean_a": [0.1104], "sd_a": [0.0081],
    ...     "ci_low": [0.00123], "ci_high": [0.0156], "p_value": [0.0004]})
    >>> print(to_markdown(t, "Table 1", "toy"))
    **Table 1**
    <BLANKLINE>
    | timestep | a (mean ± sd) | 95% CI | p_value |
    |---:|---:|---:|---:|
    | 100 | 0.1104 ± 0.0081 | [0.00123, 0.0156] | <0.001 |
    <BLANKLINE>
    _toy_
    <BLANKLINE>
    """
    shown = (table if columns is None else table[list(columns)]).reset_index(drop=True)
    groups = table.attrs.get("groups")
    footer = [note] if note else []
    for column in ("test", "contrast"):
        if column in shown.columns and shown[column].nunique(dropna=False) == 1:
            footer.append(f"{column}: {shown[column].iloc[0]}")
            shown = shown.drop(columns=column)
    if table.attrs.get("unit_note"):
        footer.append(table.attrs["unit_note"])
    cells: dict[str, list[str]] = {}
    numeric: set[str] = set()
    pairs = {mean: (sd, header) for mean, sd, header in _pairs(list(shown.columns), groups)}
    skip = {sd for sd, _ in pairs.values()} | {"ci_high"}
    level = round(100 * table.attrs.get("confidence", 0.95))
    for column in shown.columns:
        values = shown[column].tolist()
        if column in skip or (column == "note" and not any(map(bool, values))):
            continue
        if column in pairs:
            sd, header = pairs[column]
            cells[header] = [_mean_sd(m, s) for m, s in zip(values, shown[sd], strict=True)]
            numeric.add(header)
        elif column == "ci_low" and "ci_high" in shown.columns:
            header = f"{level}% CI"
            cells[header] = [f"[{_number(lo)}, {_number(hi)}]"
                             for lo, hi in zip(values, shown["ci_high"], strict=True)]  # fmt: skip
            numeric.add(header)
        elif column in P_COLUMNS or column.startswith("p_"):
            cells[column] = [_p(v) for v in values]
            numeric.add(column)
        else:
            cells[column] = [_number(v) for v in values]
            if pd.api.types.is_numeric_dtype(shown[column]) and not pd.api.types.is_bool_dtype(
                shown[column]
            ):
                numeric.add(column)
    headers = list(cells)
    lines = [f"**{caption}**", "", "| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if h in numeric else "---" for h in headers) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells.values(), strict=True)]
    if footer:
        for line in footer:  # one paragraph each: adjacent lines would run together
            lines += ["", f"_{line}_"]
    return "\n".join(lines) + "\n"
