"""Circuit complexity, component rankings and circuit robustness (paper 4.2, 4.6, 4.9).

Components are the attention heads (``<attn>.head.<h>``, ablated on their slice of z)
and the other branches that add to the main path: a U-Net's ResNet residual branches
(``<resnet>.residual``, the shortcut left intact), a transformer block's feed-forward
branch (before its gate). Every component is ablated at its own contribution. Each
summary is given per component type (``head``, ``resnet``, ``ff``: the probe's role of
the component, :func:`component_types`) and for all components together (``all``):
branches carry far larger impacts than single heads, and a combined ratio or ranking
says little about the heads.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch
from scipy import stats

from diffusion_circuits.metrics.impact import participation_ratio
from diffusion_circuits.probe import Probe

__all__ = [
    "BRANCH_TYPES",
    "COMPONENT_TYPES",
    "branch_components",
    "component_types",
    "circuit_complexity",
    "top_components",
    "expected_jaccard",
    "circuit_robustness",
    "baseline_agreement",
]

# The probe's role of a non-attention component -> its type in the tables.
BRANCH_TYPES = {"residual": "resnet", "ff": "ff"}
COMPONENT_TYPES = ("all", "head", *BRANCH_TYPES.values())


def branch_components(probe: Probe) -> list[str]:
    """The hook points of the non-attention components, in forward order: a U-Net's
    ResNet residual branches, a transformer's feed-forward branches."""
    return [name for name in probe.hook_points if probe.role_of(name) in BRANCH_TYPES]


def component_types(probe: Probe) -> dict[str, str]:
    """Component label (the ``target`` of a component ablation) -> its type: ``head``
    for each head's label, ``resnet`` or ``ff`` for a branch (:data:`BRANCH_TYPES`)."""
    types = {head.name: "head" for head in probe.heads}
    return types | {name: BRANCH_TYPES[probe.role_of(name)] for name in branch_components(probe)}


def _component_impacts(
    interventions: pd.DataFrame, types: dict[str, str], method: str | None = "mean"
) -> pd.DataFrame:
    rows = interventions[
        (interventions["family"] == "component_ablation") & (interventions["metric"] == "impact")
    ]
    if method is not None and "method" in rows.columns:
        rows = rows[rows["method"] == method]
    if rows.empty:
        raise ValueError("no component_ablation impact rows: run the interventions first")
    unknown = sorted(set(rows["target"]) - set(types))
    if unknown:
        raise ValueError(f"components of no known type: {unknown[:3]} (types from another model?)")
    return rows.assign(component_type=rows["target"].map(types))


def _of_type(rows: pd.DataFrame, kind: str) -> pd.DataFrame:
    return rows if kind == "all" else rows[rows["component_type"] == kind]


def circuit_complexity(interventions: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Participation ratio of the per-image mean-ablation impacts, per component type
    (``types``: :func:`component_types` of the model).

    Returns
    -------
    pandas.DataFrame
        ``image_id, timestep, component_type, metric, value, n_components``; metric
        ``circuit_complexity`` (all components), ``circuit_complexity_head``,
        ``circuit_complexity_resnet`` or ``circuit_complexity_ff`` (the types the model
        has). Its null: 1/K when one component carries every
        positive impact, 1 when all carry the same.
    """
    rows = _component_impacts(interventions, types)
    frames = []
    for kind in COMPONENT_TYPES:
        part = _of_type(rows, kind)
        if part.empty:
            continue
        wide = part.pivot_table(index=["image_id", "timestep"], columns="target", values="value")
        out = wide.index.to_frame(index=False)
        out["component_type"] = kind
        out["metric"] = "circuit_complexity" if kind == "all" else f"circuit_complexity_{kind}"
        out["value"] = participation_ratio(torch.tensor(wide.to_numpy(dtype=np.float64))).numpy()
        out["n_components"] = wide.shape[1]
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def top_components(interventions: pd.DataFrame, k: int, types: dict[str, str]) -> pd.DataFrame:
    """The ``k`` components with the largest mean impact per timestep and component type.

    Returns ``timestep, component_type, target, mean_impact, rank`` (1 = largest),
    ``n_components`` (K, the number ranked). ``types``: :func:`component_types`.
    """
    rows = _component_impacts(interventions, types)
    frames = []
    for kind in COMPONENT_TYPES:
        part = _of_type(rows, kind)
        if part.empty:
            continue
        means = part.groupby(["timestep", "target"], as_index=False)["value"].mean()
        means["rank"] = means.groupby("timestep")["value"].rank(ascending=False, method="first")
        means["n_components"] = means.groupby("timestep")["target"].transform("size")
        top = means[means["rank"] <= k].assign(component_type=kind)
        frames.append(top)
    top = pd.concat(frames, ignore_index=True).sort_values(["component_type", "timestep", "rank"])
    top = top.rename(columns={"value": "mean_impact"}).reset_index(drop=True)
    return top[["timestep", "component_type", "target", "mean_impact", "rank", "n_components"]]


def expected_jaccard(k_a: int, k_b: int, n: int) -> float:
    """Expected Jaccard overlap of two independent uniformly random subsets of size k_a, k_b of n.

    The overlap m is hypergeometric (mean k_a k_b / n); Jaccard = m / (k_a + k_b - m).

    Examples
    --------
    >>> expected_jaccard(2, 2, 4)  # m = 0, 1, 2 with probability 1/6, 4/6, 1/6
    0.38888888888888884
    >>> expected_jaccard(5, 5, 5)
    1.0
    """
    m = np.arange(max(0, k_a + k_b - n), min(k_a, k_b) + 1)
    pmf = stats.hypergeom.pmf(m, n, k_a, k_b)
    return float((pmf * m / (k_a + k_b - m)).sum())


def expected_jaccard_by_type(
    counts_a: dict[str, int], counts_b: dict[str, int], sizes: dict[str, int]
) -> float:
    """Expected Jaccard overlap of two random sets that keep their number of each type.

    Each set holds ``counts[t]`` components of type ``t`` (of ``sizes[t]`` in the model),
    drawn uniformly within the type: the overlap is a sum of independent hypergeometric
    overlaps, one per type. When the top-k of every model are all ResNets, this is the
    chance of two random k-subsets of the ResNets, not of all components.

    Examples
    --------
    >>> expected_jaccard_by_type({"resnet": 2}, {"resnet": 2}, {"resnet": 4, "head": 30})
    0.38888888888888884
    >>> expected_jaccard_by_type({"resnet": 1, "head": 1}, {"resnet": 1, "head": 1},
    ...                          {"resnet": 1, "head": 1})
    1.0
    """
    overlap = np.array([1.0])  # pmf of the total overlap m = 0, 1, ...
    for kind in set(counts_a) | set(counts_b):
        k_a, k_b, n = counts_a.get(kind, 0), counts_b.get(kind, 0), sizes[kind]
        m = np.arange(0, min(k_a, k_b) + 1)
        overlap = np.convolve(overlap, stats.hypergeom.pmf(m, n, k_a, k_b))
    k_a, k_b = sum(counts_a.values()), sum(counts_b.values())
    m = np.arange(len(overlap))
    return float((overlap * m / (k_a + k_b - m)).sum())


def _type_counts(targets: set, types: dict[str, str]) -> dict[str, int]:
    kinds = [types[t] for t in targets]
    return {kind: kinds.count(kind) for kind in set(kinds)}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else float("nan")


def circuit_robustness(tops: pd.DataFrame) -> pd.DataFrame:
    """Overlap (Jaccard) of top-k sets across datasets and timesteps, beside its chance level.

    ``tops`` is :func:`top_components` output with a ``dataset`` column (and optionally
    ``seed``: pairs are then formed within a seed). Returns one row per compared pair:
    ``seed`` (if given), ``component_type``, ``comparison`` ("across_datasets" at one
    timestep, or "across_timesteps" within one dataset), ``dataset``, ``timestep``,
    ``timestep_b``, ``metric="top_k_overlap"``, ``value`` (Jaccard), ``chance`` (its
    expectation for two random k-subsets of the K components, :func:`expected_jaccard`),
    ``value_minus_chance``, ``k``, ``n_components``, ``chance_by_type`` (the expectation
    for random sets that keep each set's number of ResNets and heads,
    :func:`expected_jaccard_by_type`; the per-type rows' ``chance``) and
    ``value_minus_chance_by_type``.
    """
    seed_key = ["seed"] if "seed" in tops.columns else []
    # components of each type in the model, read from the per-type top-k tables
    typed_rows = tops[tops["component_type"] != "all"]
    type_sizes = typed_rows.groupby("component_type")["n_components"].max().to_dict()
    # a component in an overall top-k is in its own type's top-k too (fewer rivals there)
    types = dict(zip(typed_rows["target"], typed_rows["component_type"], strict=True))
    rows = []
    for key, group in tops.groupby([*seed_key, "component_type"]):
        key = key if isinstance(key, tuple) else (key,)
        sets = {(d, t): set(g["target"]) for (d, t), g in group.groupby(["dataset", "timestep"])}
        sizes = group.groupby(["dataset", "timestep"])["n_components"].first().to_dict()
        datasets = sorted({d for d, _ in sets})
        timesteps = sorted({t for _, t in sets})
        pairs = [
            ("across_datasets", f"{a}|{b}", (a, t), (b, t))
            for t in timesteps
            for a, b in itertools.combinations(datasets, 2)
        ] + [
            ("across_timesteps", d, (d, t), (d, u))
            for d in datasets
            for t, u in itertools.combinations(timesteps, 2)
        ]
        for comparison, label, first, second in pairs:
            if first not in sets or second not in sets:
                continue
            n = int(min(sizes[first], sizes[second]))
            chance = expected_jaccard(len(sets[first]), len(sets[second]), n)
            # within one type, or with components of no per-type table: the plain chance
            if key[-1] != "all" or not sets[first] | sets[second] <= types.keys():
                by_type = chance
            else:
                counts = [_type_counts(sets[first], types), _type_counts(sets[second], types)]
                by_type = expected_jaccard_by_type(*counts, type_sizes)
            value = _jaccard(sets[first], sets[second])
            rows.append((*key, comparison, label, first[1], second[1], value, chance,
                         len(sets[first]), n, by_type))  # fmt: skip
    columns = [*seed_key, "component_type", "comparison", "dataset", "timestep", "timestep_b"]
    out = pd.DataFrame(
        rows, columns=[*columns, "value", "chance", "k", "n_components", "chance_by_type"]
    )
    out.insert(len(columns), "metric", "top_k_overlap")
    out.insert(
        out.columns.get_loc("chance") + 1, "value_minus_chance", out["value"] - out["chance"]
    )
    out["value_minus_chance_by_type"] = out["value"] - out["chance_by_type"]
    return out


def baseline_agreement(interventions: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Spearman rank agreement of component importance between ablation baselines.

    Importance is a component's mean impact over the images every baseline was run on
    (the ``analyze.baseline_images`` subset), per timestep and component type.

    Returns
    -------
    pandas.DataFrame
        ``timestep, component_type, method_a, method_b, metric="baseline_rank_agreement",
        value`` (Spearman rho, ``scipy.stats.spearmanr``), ``p_value``, ``n_components``,
        ``n_images``. Null: rho = 0 (unrelated rankings).
    """
    rows = _component_impacts(interventions, types, method=None)
    methods = sorted(rows["method"].unique())
    per_image = rows.pivot_table(
        index=["timestep", "image_id", "target", "component_type"], columns="method", values="value"
    ).dropna()  # images every baseline saw
    out = []
    groups = [((t, "all"), g) for t, g in per_image.groupby(level="timestep")]
    groups += list(per_image.groupby(level=["timestep", "component_type"]))
    for (timestep, kind), part in groups:
        means = part.groupby(level="target").mean()
        n_images = part.index.get_level_values("image_id").nunique()
        for a, b in itertools.combinations(methods, 2):
            rho, p = stats.spearmanr(means[a], means[b]) if len(means) > 2 else (np.nan, np.nan)
            out.append((timestep, kind, a, b, float(rho), float(p), len(means), n_images))
    columns = ["timestep", "component_type", "method_a", "method_b", "value", "p_value",
               "n_components", "n_images"]  # fmt: skip
    table = pd.DataFrame(out, columns=columns)
    table.insert(4, "metric", "baseline_rank_agreement")
    return table.sort_values(["component_type", "timestep"], ignore_index=True)
