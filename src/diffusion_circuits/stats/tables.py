"""The paper's Tables 1-4, computed from the tidy analysis tables, and a Markdown writer.

Tables 1 and 4 compare the datasets at two units, one row each (column ``unit``): the
image (each image's values averaged over the seeds' models; about these models on these
images) and the training seed (the crossed seeds x images model of stats/seed_level.py; about
training runs, which is what a claim about a dataset needs). With one seed the seed rows
say that no seed-level inference exists. Every table records its unit in
``attrs["unit_note"]``, which :func:`to_markdown` prints under the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffusion_circuits.layout import ALL_LAYER_GROUPS
from diffusion_circuits.stats.compare import ALPHA, bootstrap_ci
from diffusion_circuits.stats.corrections import adjust_family
from diffusion_circuits.stats.markdown import to_markdown
from diffusion_circuits.stats.unit_comparison import compare_by_unit

__all__ = [
    "GROUP_ORDER",
    "ROLE_LABELS",
    "ROLE_TEST_COLUMNS",
    "unit_note",
    "component_type_order",
    "table1_circuit_complexity",
    "table2_head_specialisation",
    "table3_layer_ablation",
    "table4_cross_dataset",
    "to_markdown",
]

# Layer groups in forward order (a U-Net's, then a transformer's); the lists live in layout.py.
GROUP_ORDER = ALL_LAYER_GROUPS

# Head-role labels (analysis/roles.py): "semantic" is never assigned on either dataset.
ROLE_LABELS = ("global", "edge", "texture", "semantic", "none", "undetermined")
# Optional columns of the head-roles table shown beside the label in Table 2.
ROLE_TEST_COLUMNS = ("role_candidate", "role_score", "null_threshold", "p_value",
                     "semantic_score", "semantic_part", "semantic_p_value")  # fmt: skip

TABLE1_COLUMNS = [
    "component_type", "timestep", "unit", "n_a", "n_b", "mean_a", "sd_a", "mean_b", "sd_b", "ratio", "estimate",
    "ci_low", "ci_high", "ci_method", "effect_size", "effect_label", "d_for_power_80",
    "p_value", "p_bonferroni", "p_holm", "significant", "note",
]  # fmt: skip


def unit_note(unit: str) -> str:
    """One line saying what the statistical unit of a table is."""
    if unit == "image and seed":
        return (
            "unit: image rows test these models on these images; seed rows test training "
            "runs and images (crossed seeds x images model: seed and image random effects) and "
            "are the ones that speak "
            "about a dataset; Holm within each unit"
        )
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


def _by_unit(rows: pd.DataFrame, by: list[str], image: str, *, alpha: float = ALPHA,
             family: str | list[str] = "unit", **compare_kwargs) -> pd.DataFrame:  # fmt: skip
    """compare_by_unit, Holm at level ``alpha`` within each ``family`` (default: each unit);
    no ``seed`` column: one model per dataset."""
    if "seed" not in rows.columns:
        rows = rows.assign(seed=0)
    table = compare_by_unit(rows, by=by, image=image, alpha=alpha, **compare_kwargs)
    attrs = dict(table.attrs)
    table = adjust_family(table, family=family, alpha=alpha)
    table.attrs.update(attrs)
    return table


COMBINED = "all"  # the component_type of the participation ratio over every component


def component_type_order(types) -> list[str]:
    """Per-type rows first (the primary result), the combined ratio last.

    >>> component_type_order(["all", "resnet", "head"])
    ['head', 'resnet', 'all']
    """
    types = sorted(set(types))
    return [t for t in types if t != COMBINED] + ([COMBINED] if COMBINED in types else [])


def table1_circuit_complexity(
    circuit_df: pd.DataFrame, *, image: str = "image_id", **compare_kwargs
) -> pd.DataFrame:
    """Table 1: circuit complexity per component type and timestep, natural vs synthetic.

    Uses the participation-ratio rows (``metric`` ``circuit_complexity`` over every
    component, ``component_type`` ``"all"``; ``circuit_complexity_<type>`` per component
    type: attention heads, ResNets, ... as the analysis stage labels them). The per-type rows are
    the primary result: a head's and a ResNet's ablation impacts differ in scale, so the
    combined ratio mostly counts how the impact splits between the two types. The
    combined rows are the quantity compared with the paper's. Without a
    ``component_type`` column every row is the combined ratio. ``compare_kwargs`` go
    to :func:`~diffusion_circuits.stats.unit_comparison.compare_by_unit` (``groups``,
    ``n_resamples``, ``seed``, ``confidence``, ``alpha``: the level of ``significant``).

    Returns
    -------
    Two rows per component type and timestep (``unit`` image, then seed):
    ``component_type, timestep, unit, n_a, n_b, mean_a, sd_a, mean_b, sd_b`` (a =
    synthetic, b = natural; n counts the unit), ``ratio`` (mean_b / mean_a, the paper's
    "Ratio"), ``estimate`` (mean_b - mean_a) with ``ci_low, ci_high`` and
    ``ci_method``, ``effect_size`` (Cohen's d), ``effect_label``, ``d_for_power_80``,
    ``p_value``, ``p_bonferroni`` and ``p_holm`` over the timesteps of one unit and
    component type, ``significant`` (Holm p < alpha), ``note``.

    Examples
    --------
    >>> df = pd.DataFrame({"dataset": ["synthetic"] * 3 + ["natural"] * 3,
    ...     "image_id": [0, 1, 2, 0, 1, 2], "timestep": 100, "metric": "circuit_complexity",
    ...     "value": [0.1, 0.2, 0.3, 0.2, 0.3, 0.4]})
    >>> table1_circuit_complexity(df, n_resamples=100)[["component_type", "unit", "ratio"]].round(2)
      component_type   unit  ratio
    0            all  image    1.5
    1            all   seed    1.5
    """
    _check_columns(circuit_df, ["metric", "timestep"], "circuit table")
    if "component_type" not in circuit_df.columns:
        circuit_df = circuit_df.assign(component_type=COMBINED)
    # the analysis names each type's ratio circuit_complexity_<type> (analysis/circuits.py)
    names = {"circuit_complexity", *(f"circuit_complexity_{t}" for t in circuit_df["component_type"].unique())}  # fmt: skip
    rows = _select(circuit_df, "metric", sorted(names), "table 1")
    table = _by_unit(rows, ["component_type", "timestep"], image,
                     family=["unit", "component_type"], **compare_kwargs)  # fmt: skip
    order = {t: k for k, t in enumerate(component_type_order(table["component_type"]))}
    table = table.sort_values("component_type", key=lambda s: s.map(order), kind="stable")
    return _finish(table[TABLE1_COLUMNS], "image and seed", groups=table.attrs["groups"],
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
    roles_df : ``hook, head, role, edge_score, texture_score`` and, where present, the
        role test (``role_score, null_threshold, p_value``) and the descriptive semantic
        columns (``semantic_score, semantic_part, semantic_p_value``; NaN without part
        masks); with a ``dataset`` column when roles differ per dataset and a ``seed``
        column when several models were trained per dataset. ``role`` is one of global,
        edge, texture, none (no positive score beats the null), undetermined.
    unit : rows are averaged per unit first (over timesteps unless ``timestep`` is given),
        then summarised over units. Heads belong to one trained model, so the unit must
        be an image-level column, not the seed.
    timestep : restrict to one timestep (the paper shows t = 300); None pools all.

    Returns
    -------
    One row per dataset (and seed, when several) and head: ``dataset, hook,
    [layer_group], head, role, n`` (units), ``entropy_mean, entropy_sd`` (bits),
    ``specialisation_mean, specialisation_sd``, ``edge_score, texture_score`` and the
    optional columns of ``roles_df`` present (:data:`ROLE_TEST_COLUMNS`). ``attrs``
    ``role_counts`` counts heads per label (every label of :data:`ROLE_LABELS`, zeros
    included, so an absent ``semantic`` shows as 0).

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
    scores = ["role", "edge_score", "texture_score"]
    _check_columns(attention_df, ["dataset", "hook", "head", "metric", "value", unit], "attention table")  # fmt: skip
    _check_columns(roles_df, ["hook", "head", *scores], "roles table")
    unknown = sorted(set(roles_df["role"].dropna()) - set(ROLE_LABELS))
    if unknown:
        raise ValueError(f"roles table has unknown role label(s) {unknown}; expected {list(ROLE_LABELS)}")  # fmt: skip
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
    extra = [c for c in ROLE_TEST_COLUMNS if c in roles_df.columns]
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
    counts = roles_df.drop_duplicates(role_columns)["role"].value_counts()
    role_counts = {r: int(counts.get(r, 0)) for r in ROLE_LABELS}
    out = _finish(table, unit, timestep=timestep, role_counts=role_counts)
    out.attrs["unit_note"] += (
        "; heads per role: "
        + ", ".join(f"{r} {n}" for r, n in role_counts.items())
        + " (a role needs a positive mean score that beats the image-permutation null: "
        "p_value < analyze.role_alpha; 'none' otherwise)"
    )
    return out


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
    impact; ties share the smallest rank), ``output_constant`` (the ablated model's
    prediction no longer depends on the input: its impact measures accuracy, not a
    circuit; False when the table has no such column).

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
    constant = (rows.groupby("target")["output_constant"].any() if "output_constant" in rows.columns
                else pd.Series(dtype=bool))  # fmt: skip
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
            "output_constant": bool(constant.get(group, False)),
        })  # fmt: skip
    table = pd.DataFrame(out)
    table["rank"] = table["impact"].rank(ascending=False, method="min").astype("Int64")
    return _finish(table, unit, confidence=confidence)


def table4_cross_dataset(
    frames: dict[str, pd.DataFrame],
    *,
    image: str = "image_id",
    alpha: float = ALPHA,
    **compare_kwargs,
) -> pd.DataFrame:
    """Table 4: one natural-vs-synthetic comparison per metric, pooled per unit.

    Parameters
    ----------
    frames : label -> tidy table already filtered to that metric, e.g.
        ``{"circuit_complexity": ..., "attention_entropy": ..., "feature_complexity": ...,
        "intervention_impact": ...}`` (feature complexity is the paper's "feature
        hierarchy"). Rows are averaged per image (and seed) over timesteps, hooks, heads.
        A frame's ``attrs["note"]`` (e.g. which output-constant runs the pooled
        intervention impact leaves out) is added to its rows' ``note`` and to the table's
        ``unit_note``.
    image, compare_kwargs : passed to
        :func:`~diffusion_circuits.stats.unit_comparison.compare_by_unit`.
    alpha : level of ``significant`` and of the power columns.

    Returns
    -------
    Two rows per metric (``unit`` image, then seed): ``metric`` (the label), ``unit``,
    then the other :func:`compare_by_unit` columns, then ``p_bonferroni``, ``p_holm`` and
    ``significant`` over the metrics of one unit.
    """
    if not frames:
        raise ValueError("table 4 needs at least one metric frame")
    rows, notes = [], []
    for label, frame in frames.items():
        if "metric" in frame.columns and frame["metric"].nunique() > 1:
            raise ValueError(f"table 4: frame {label!r} holds several metrics {sorted(frame['metric'].unique())}; filter it to one")  # fmt: skip
        pooled = frame.assign(metric=label)
        if "seed" not in pooled.columns:
            pooled = pooled.assign(seed=0)
        row = compare_by_unit(pooled, by=["metric"], image=image, alpha=alpha, **compare_kwargs)
        if frame.attrs.get("note"):
            notes.append(f"{label}: {frame.attrs['note']}")
            row["note"] = [f"{n}; {frame.attrs['note']}" if n else frame.attrs["note"]
                           for n in row["note"].fillna("")]  # fmt: skip
        rows.append(row)
    attrs = dict(rows[0].attrs)
    table = adjust_family(pd.concat(rows, ignore_index=True), family="unit", alpha=alpha)
    table = table[["metric", "unit", *[c for c in table.columns if c not in ("metric", "unit")]]]
    out = _finish(table, "image and seed", groups=attrs["groups"], confidence=attrs["confidence"])
    if notes:
        out.attrs["unit_note"] = "; ".join([out.attrs["unit_note"], *notes])
    return out
