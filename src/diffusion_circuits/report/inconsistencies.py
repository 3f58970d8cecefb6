"""Internal inconsistencies of the paper, found by recomputing its own numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pingouin as pg
import yaml

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.stats.tables import GROUP_ORDER

__all__ = ["find_inconsistencies", "documented_inconsistencies", "INCONSISTENCIES_FILE"]

INCONSISTENCIES_FILE = Path(__file__).with_name("paper_inconsistencies.yaml")


def documented_inconsistencies(
    claims: list[Claim], path: str | Path = INCONSISTENCIES_FILE
) -> list[dict]:
    """Inconsistencies noted when the claims were extracted (``paper_inconsistencies.yaml``),
    except those found to be rounding only; every ``claim_ids`` entry must name a claim."""
    ids = {claim.id for claim in claims}
    entries = yaml.safe_load(Path(path).read_text()) or []
    for entry in entries:
        unknown = sorted(set(entry["claim_ids"]) - ids)
        if unknown:
            raise ValueError(f"{path}: inconsistency {entry['id']} names unknown claims {unknown}")
    return [entry for entry in entries if entry.get("severity") != "rounding"]


def find_inconsistencies(claims: list[Claim], n_parameters: int | None = None) -> list[dict]:
    """Each entry: ``id``, ``claim_ids`` and a ``description`` with the recomputed numbers."""
    by_id = {c.id: c for c in claims}
    v = {c.id: c.value for c in claims}
    found: list[dict] = []

    def add(key: str, ids: list[str], text: str) -> None:
        if all(i in by_id for i in ids):
            found.append({"id": key, "claim_ids": ids, "description": text})

    base = v.get("t3_baseline")
    for g in GROUP_ORDER:
        ablated, printed = v.get(f"t3_{g}_ablated"), v.get(f"t3_{g}_impact")
        if base and ablated is not None and printed is not None:
            implied = (ablated - base) / base
            # MSEs are printed to 4 decimals: allow the error that rounding alone can cause.
            slack = 5e-5 / base + 5e-5 * ablated / base**2 + 5e-4
            if abs(implied - printed) > slack:
                add(f"table3_impact_{g}", ["t3_baseline", f"t3_{g}_ablated", f"t3_{g}_impact"],
                    f"Table 3, {g}: (ablated - baseline) / baseline = ({ablated} - {base}) / "
                    f"{base} = {implied:.3f}, but the printed impact is {printed}.")  # fmt: skip
    ranks = [(g, v[f"t3_{g}_rank"]) for g in GROUP_ORDER if f"t3_{g}_rank" in v]
    seen: dict[float, list[str]] = {}
    for g, r in ranks:
        seen.setdefault(r, []).append(g)
    for r, groups in seen.items():
        if len(groups) > 1:
            add(
                f"table3_rank_{int(r)}",
                [f"t3_{g}_rank" for g in groups],
                f"Table 3 gives rank {int(r)} to {len(groups)} groups ({', '.join(groups)}), "
                f"although their impacts differ; rank {len(ranks)} is then missing or shifted.",
            )
    for m in (
        "circuit_complexity",
        "attention_entropy",
        "feature_complexity",
        "intervention_impact",
    ):
        ids = [f"t4_{m}_synthetic", f"t4_{m}_natural", f"t4_{m}_difference", f"t4_{m}_d"]
        if not all(i in by_id for i in ids):
            continue
        a, b = by_id[ids[0]], by_id[ids[1]]
        pooled = math.sqrt((a.sd**2 + b.sd**2) / 2)
        implied = (b.value - a.value) / pooled
        add(f"table4_d_{m}", ids,
            f"Table 4, {m}: difference {b.value - a.value:+.3f} with SDs {a.sd} and {b.sd} "
            f"implies |d| = {abs(implied):.2f}, not the printed {v[ids[3]]:.2f}.")  # fmt: skip
        if m != "circuit_complexity" and abs(round(b.value - a.value, 3) - v[ids[2]]) > 5e-4:
            add(f"table4_diff_{m}", ids[:3],
                f"Table 4, {m}: {b.value} - {a.value} = {b.value - a.value:+.3f}, printed "
                f"{v[ids[2]]:+.3f}.")  # fmt: skip
    if "intro_power" in by_id:
        powers = {m: pg.power_ttest2n(nx=100, ny=100, d=v[f"t4_{m}_d"]) for m in
                  ("attention_entropy", "feature_complexity") if f"t4_{m}_d" in v}  # fmt: skip
        low = {m: p for m, p in powers.items() if p < 0.95}
        if low:
            text = ", ".join(
                f"d = {v[f't4_{m}_d']:.2f} gives power {p:.2f}" for m, p in low.items()
            )
            add("power_claim", ["intro_power", "intro_n_per_condition", "t4_feature_complexity_d"],
                f"Power > 0.95 with N = 100 per condition is not possible at the printed effect "
                f"sizes: {text} (two-sample t-test, alpha .05).")  # fmt: skip
    add(
        "impact_range",
        ["abs_impact_low", "abs_impact_high", "d52_impact_low", "d52_impact_high"],
        f"The abstract gives an ablation impact range of {v.get('abs_impact_low')}% to "
        f"{v.get('abs_impact_high')}%, sections 5.2 and 6 (and Table 3) "
        f"{v.get('d52_impact_low')}% to {v.get('d52_impact_high')}%.",
    )
    add(
        "texture_entropy",
        ["abs_texture_entropy", "c_texture", "t2_texture_entropy"],
        f"Texture-head entropy is {v.get('abs_texture_entropy')} bits in the abstract but "
        f"{v.get('c_texture')} in Table 2 and the conclusion.",
    )
    if "t4_circuit_complexity_synthetic" in v:
        ratio = v["t4_circuit_complexity_natural"] / v["t4_circuit_complexity_synthetic"]
        add("overall_ratio", ["abs_cc_ratio", "t1_ratio_t100", "t4_circuit_complexity_synthetic"],
            f"The abstract's overall complexity ratio {v['abs_cc_ratio']} (an 8.4% increase) is "
            f"the t=100 row of Table 1; Table 4's pooled means give {ratio:.3f}, and at t=600 and "
            f"t=900 Table 1 shows natural below synthetic.")  # fmt: skip
    for t in (100, 300, 600, 900):
        ids = [f"t1_synthetic_t{t}", f"t1_natural_t{t}", f"t1_ratio_t{t}"]
        if all(i in v for i in ids):
            implied = v[ids[1]] / v[ids[0]]
            slack = 5e-4 / v[ids[0]] + 5e-4 * v[ids[1]] / v[ids[0]] ** 2 + 5e-4  # rounding
            if abs(implied - v[ids[2]]) > slack:
                add(f"table1_ratio_t{t}", ids,
                    f"Table 1, t={t}: {v[ids[1]]} / {v[ids[0]]} = {implied:.3f}, printed ratio "
                    f"{v[ids[2]]}.")  # fmt: skip
    big_p = [m for m in ("attention_entropy", "feature_complexity", "intervention_impact")
             if v.get(f"t4_{m}_p", 0) >= 0.001]  # fmt: skip
    if big_p:
        add(
            "all_metrics_p",
            ["d51_all_p", *[f"t4_{m}_p" for m in big_p]],
            "Section 5.1 and 6 claim p < 0.001 across all metrics, but Table 4 prints "
            + ", ".join(f"p = {v[f't4_{m}_p']}" for m in big_p)
            + ".",
        )
    syn = [v.get(f"fc_synthetic_t{t}") for t in (100, 300, 600, 900)]
    if None not in syn and any(b < a for a, b in zip(syn[:-1], syn[1:], strict=True)):
        add(
            "monotonic",
            [f"fc_synthetic_t{t}" for t in (100, 300, 600, 900)],
            f"Section 4.1 calls synthetic feature complexity a 'monotonic increase', but the "
            f"printed series {syn} falls at the end.",
        )
    if "abs_entropy_div_low" in v and "ent_div_t900" in v:
        add(
            "divergence_low",
            ["abs_entropy_div_low", "ent_div_t900"],
            f"The abstract's entropy divergence range starts at {v['abs_entropy_div_low']}, but "
            f"the smallest value in section 4.8 is {v['ent_div_t900']}.",
        )
    if n_parameters is not None and "d54_params" in v:
        add(
            "parameters",
            ["d54_params", "m_heads", "m_layers", "m_width"],
            f"Section 5.4 reports {v['d54_params']:.0f}M parameters; a U-Net with the stated 3 "
            f"attention layers of 8 heads at 256 channels, as built here, has "
            f"{n_parameters / 1e6:.1f}M.",
        )
    return found
