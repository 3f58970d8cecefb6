"""The rule that turns a claim and our measurement into a verdict (docs/VERDICTS.md).

Each claim gets a *kind* from its fields (:func:`claim_kind`), and each kind one branch of
the rule (:func:`verdict`), which also names the branch it used. Every judged claim gets
one of three answers, so that evidence against the paper is never mixed up with the
absence of evidence: directional claims are *replicated*, *opposite* or *inconclusive*;
point values *consistent*, *contradicted* or *inconclusive* against a margin of practical
equivalence. :data:`RULE_TEXT` is the rule in words, printed in the report header.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.stats.compare import ALPHA

__all__ = [
    "ALPHA",
    "CONSISTENT",
    "CONTRADICTED",
    "DESIGN_INPUTS",
    "INCONCLUSIVE",
    "MODEL_LEVEL",
    "Measurement",
    "NOT_COMPARABLE_SCALE",
    "OPPOSITE",
    "REPLICATED",
    "RULE_TEXT",
    "VERDICTS",
    "ci_side",
    "claim_kind",
    "cohen_band",
    "is_model_level",
    "paper_threshold",
    "rule_text",
    "verdict",
]

REPLICATED, OPPOSITE = "replicated", "opposite"
CONSISTENT, CONTRADICTED = "consistent", "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable: one model per dataset"
DESIGN = "not comparable (design input)"
NOT_COMPARABLE = "not comparable"
VERDICTS = (REPLICATED, CONSISTENT, INCONCLUSIVE, OPPOSITE, CONTRADICTED, NOT_TESTABLE, DESIGN,
            NOT_COMPARABLE)  # fmt: skip

# Quantities we set rather than measure. The paper's power is a property of its design;
# ours is reported prospectively (at the paper's effect), never at the observed effect.
DESIGN_INPUTS = frozenset({
    "sample_size", "model_heads", "model_attention_layers", "model_width", "timesteps_total",
    "ci_level", "n_synthetic_attributes", "model_parameters", "power",
})  # fmt: skip
# Quantities whose scale differs between implementations: the reason is printed.
NOT_COMPARABLE_SCALE = {
    "feature_complexity": "feature complexity is in activation units^2: its scale is set by "
    "the network's activations, not comparable across implementations",
    "circuit_complexity": "the paper does not define circuit complexity; our participation "
    "ratio's scale depends on the number of components K (directions remain comparable)",
    "information_flow_efficiency": "the paper's IFE is a raw plug-in estimator, whose chance "
    "level rises on coarse grids (many bins, few positions); ours is chance-adjusted (0 = "
    "independent maps), so raw IFE is not comparable; the ordering of the bands is judged "
    "(ife_order)",
    "phase_timesteps": "the paper names phase boundaries but gives no rule that detects them",
    "phase_feature_complexity": "phase values restate 4.1 per timestep; no phase-detection rule",
    "processing_phases": "the paper names four phases but gives no rule that detects them",
}
# Claims about a dataset or a model family (synthetic vs natural, or the pair of models).
MODEL_LEVEL = frozenset({
    "circuit_complexity_ratio", "circuit_complexity_increase", "entropy_divergence",
    "specialisation_divergence", "all_metrics_p", "effect_size_range",
    "cross_dataset_accuracy", "feature_transferability", "feature_transferability_raw",
    "circuit_robustness",
})  # fmt: skip
NULLS = {"ratio": 1.0, "difference": 0.0, "percent": 0.0, "effect_size": 0.0}
# Cohen's bands of |d|: negligible, small, medium, large.
COHEN_EDGES = (0.0, 0.2, 0.5, 0.8, np.inf)


def rule_text(alpha: float = ALPHA) -> str:
    """The rule in words, with ``alpha`` (``params.stats.alpha``) for exact printed p values."""
    return (
        "Three answers for every judged claim, so that evidence against the paper is told from "
        "no evidence either way. Directional claims (ratio vs 1, signed difference or percent "
        "change vs 0) are 'replicated' when our 95% CI excludes the null on the paper's side, "
        "'opposite' when it excludes it on the other side, 'inconclusive' otherwise (no CI: "
        "inconclusive). Significance claims (a p value) are replicated when every test they refer "
        "to has a Holm-adjusted p below the paper's own threshold (its printed bound, or "
        f"{alpha:g} where it prints an exact p) in the paper's direction, opposite when one is "
        "significant in the other direction, inconclusive otherwise. Point values have a margin "
        "of practical equivalence (paper_claims.yaml: the paper's own ±, one point of R^2, ...): "
        "'consistent' when our CI lies within the margin around the paper's value, "
        "'contradicted' when it lies wholly outside it, inconclusive otherwise; a value without "
        "a CI decides nothing and is inconclusive whatever the claim's kind. Effect sizes are "
        "point values whose margin is the Cohen band of the "
        "paper's label, signed by the paper's direction; ranks are consistent when our rank "
        "interval is the paper's rank alone, contradicted when it excludes it; bounds are "
        "replicated / contradicted / inconclusive by the CI against the bound. Every "
        "inconclusive row states the smallest effect the design detects with power 0.8 and "
        "the units (seeds, images) the paper's effect would need. Claims about a dataset or a "
        "model family use the training seed as the unit (the same probe images serve every "
        "seed, so intervals come from a crossed seeds x images random-effects model, CI and p "
        "from the same model) and with one seed are 'not testable: one model "
        "per dataset'. Design inputs are 'not comparable (design input)'; quantities whose "
        "scale differs across implementations are 'not comparable' with the reason."
    )


RULE_TEXT = rule_text()


@dataclass(frozen=True)
class Measurement:
    """Our value for one claim, with how it was obtained.

    ``unit``: the statistical unit of the CI or test (``image``, ``seed``, or ``""``);
    ``ci_method``: how ``ci_low``/``ci_high`` were obtained (``""``: no CI); ``tests``:
    ids of the stats-stage tests the claim refers to, with their Holm-adjusted ``p_adj``,
    the ``signs`` of our estimates and the paper's ``paper_signs`` (0: not stated);
    ``direction_ci``: for an effect size, the CI of the same test's mean difference,
    which gives the sign of d; ``testable``: False for a model-level claim with one model
    per dataset. ``se``, ``df`` and ``n_units`` (units per group: one entry for a mean,
    two for a comparison) describe the interval's design, for the power statement of
    inconclusive rows; ``paper_value``: the paper's value as judged where it differs
    from the printed one (a printed magnitude signed by the paper's direction);
    ``inconclusive``: why the evidence is absent (e.g. no head earns the role);
    ``paper_effect``: the paper's effect in the units of ``se`` (for the power statement).
    """

    value: float
    ci_low: float = np.nan
    ci_high: float = np.nan
    comparable: bool = True
    reason: str = ""
    unit: str = ""
    ci_method: str = ""
    tests: tuple[str, ...] = ()
    p_adj: tuple[float, ...] = ()
    signs: tuple[float, ...] = ()
    paper_signs: tuple[float, ...] = ()
    direction_ci: tuple[float, float] = (np.nan, np.nan)
    testable: bool = True
    se: float = np.nan
    df: float = np.nan
    n_units: tuple[int, ...] = ()
    paper_value: float = np.nan
    inconclusive: str = ""
    paper_effect: float = np.nan


def claim_kind(claim: Claim) -> str:
    """design input | scale | significance | effect size | directional | bound | rank | point."""
    if claim.quantity in DESIGN_INPUTS:
        return "design input"
    scale_key = claim.target if claim.quantity == "table4" and claim.statistic == "mean" else claim.quantity  # fmt: skip
    if scale_key in NOT_COMPARABLE_SCALE:
        return "scale"
    if claim.statistic == "p_value":
        return "significance"
    if claim.statistic == "effect_size":
        return "effect size"
    if (claim.statistic == "ratio" or claim.quantity == "circuit_complexity_increase"
            or (claim.statistic == "difference" and claim.quantity == "table4")):  # fmt: skip
        return "directional"
    if claim.comparator in ("<", ">"):
        return "bound"
    return "rank" if claim.statistic == "rank" else "point"


def is_model_level(claim: Claim) -> bool:
    """A claim about a dataset or a model family: synthetic vs natural, or the model pair."""
    return claim.quantity in MODEL_LEVEL or (
        claim.quantity == "table4" and claim.statistic != "mean"
    )


def paper_threshold(claim: Claim, alpha: float = ALPHA) -> float:
    """The paper's own significance threshold: its bound, else ``alpha`` (exact p printed)."""
    return claim.value if claim.comparator == "<" else alpha


def _valid_ci(m: Measurement) -> bool:
    return bool(np.isfinite(m.ci_low) and np.isfinite(m.ci_high) and m.ci_low <= m.ci_high)


def ci_side(low: float, high: float, null: float) -> int:
    """+1 / -1 when [low, high] lies above / below the null, 0 when it contains it."""
    return 1 if low > null else -1 if high < null else 0


def cohen_band(d: float, sign: float) -> tuple[float, float]:
    """The signed interval of Cohen's band holding |d| (e.g. 0.6, -1 -> (-0.8, -0.5))."""
    edges = COHEN_EDGES
    index = int(np.searchsorted(edges, abs(d), side="right")) - 1
    low, high = edges[index], edges[index + 1]
    return (low, high) if sign >= 0 else (-high, -low)


def _within(low: float, high: float, band: tuple[float, float]) -> str:
    """consistent / contradicted / inconclusive of [low, high] against ``band``."""
    if band[0] <= low and high <= band[1]:
        return CONSISTENT
    if high < band[0] or low > band[1]:
        return CONTRADICTED
    return INCONCLUSIVE


def _significance(claim: Claim, ours: Measurement, alpha: float) -> tuple[str, str]:
    if not ours.tests:
        return NOT_COMPARABLE, "no test of ours corresponds to this p value"
    threshold = paper_threshold(claim, alpha)
    paper = ours.paper_signs or (0.0,) * len(ours.tests)
    reversed_, passed = [], []
    for p, ours_sign, paper_sign in zip(ours.p_adj, ours.signs, paper, strict=True):
        significant = bool(np.isfinite(p) and p < threshold)
        against = paper_sign != 0 and np.sign(ours_sign) == -np.sign(paper_sign)
        reversed_.append(significant and against)
        passed.append(significant and not against)
    if any(reversed_):
        return OPPOSITE, f"significant (p_holm < {threshold:g}) in the other direction"
    if all(passed):
        return REPLICATED, f"every test p_holm < {threshold:g}, paper's direction"
    return INCONCLUSIVE, f"not every test reaches p_holm < {threshold:g}"


def _directional(claim: Claim, ours: Measurement) -> tuple[str, str]:
    null = NULLS.get(claim.statistic, 0.0)
    paper_side = np.sign(claim.value - null)
    if not _valid_ci(ours):
        return INCONCLUSIVE, "no valid CI: direction not established"
    side = ci_side(ours.ci_low, ours.ci_high, null)
    if side == 0:
        return INCONCLUSIVE, f"CI contains the null {null:g}"
    if side == paper_side:
        return REPLICATED, f"CI excludes {null:g} on the paper's side"
    return OPPOSITE, f"CI excludes {null:g} on the other side"


def _effect_size(claim: Claim, ours: Measurement) -> tuple[str, str]:
    stated = ours.paper_signs[0] if ours.paper_signs else 0.0
    paper_sign = stated if stated != 0 else np.sign(claim.value)
    low, high = ours.direction_ci
    if np.isfinite(low) and np.isfinite(high) and ci_side(low, high, 0.0) == -paper_sign:
        return OPPOSITE, "the mean difference's CI excludes 0 on the other side"
    band = cohen_band(claim.value, paper_sign)
    if not _valid_ci(ours):
        return INCONCLUSIVE, "no CI of d"
    result = _within(ours.ci_low, ours.ci_high, band)
    words = {
        CONSISTENT: "inside",
        CONTRADICTED: "wholly outside",
        INCONCLUSIVE: "across an edge of",
    }
    return result, f"CI of d {words[result]} the paper's Cohen band [{band[0]:g}, {band[1]:g}]"


def _no_ci(ours: Measurement) -> str:
    """Why a value without an interval decides nothing, with the value itself."""
    why = ours.reason or "no CI at this unit"
    return f"{why}; the value {ours.value:.4g} alone decides nothing"


def _bound(claim: Claim, ours: Measurement) -> tuple[str, str]:
    if not _valid_ci(ours):
        return INCONCLUSIVE, _no_ci(ours)
    low, high = ours.ci_low, ours.ci_high
    above = claim.comparator == ">"
    holds, fails = (low > claim.value, high < claim.value) if above else (high < claim.value, low > claim.value)  # fmt: skip
    if holds:
        return REPLICATED, f"CI {claim.comparator} {claim.value:g}"
    if fails:
        return CONTRADICTED, f"CI on the wrong side of {claim.value:g}"
    return INCONCLUSIVE, f"CI contains the bound {claim.value:g}"


def _rank(claim: Claim, ours: Measurement) -> tuple[str, str]:
    paper = round(claim.value)
    if not _valid_ci(ours):
        return INCONCLUSIVE, _no_ci(ours)
    low, high = round(ours.ci_low), round(ours.ci_high)
    if low == high == paper:
        return CONSISTENT, f"rank interval [{low}, {high}] is the paper's rank {paper}"
    if not low <= paper <= high:
        return CONTRADICTED, f"rank interval [{low}, {high}] excludes the paper's rank {paper}"
    return INCONCLUSIVE, f"rank interval [{low}, {high}] holds the paper's rank {paper} and others"


def _point(claim: Claim, ours: Measurement) -> tuple[str, str]:
    if claim.margin is None:
        return NOT_COMPARABLE, "no margin of practical equivalence in paper_claims.yaml"
    paper = ours.paper_value if np.isfinite(ours.paper_value) else claim.value
    band = (paper - claim.margin, paper + claim.margin)
    signed = "" if paper == claim.value else f" (the printed {claim.value:g} signed: {paper:g})"
    if _valid_ci(ours):
        result = _within(ours.ci_low, ours.ci_high, band)
        words = {CONSISTENT: "inside", CONTRADICTED: "wholly outside",
                 INCONCLUSIVE: "across an edge of"}  # fmt: skip
        return result, f"CI {words[result]} {paper:g} ± {claim.margin:g}{signed}"
    where = "within" if band[0] <= ours.value <= band[1] else "outside"
    return INCONCLUSIVE, f"{_no_ci(ours)} (it lies {where} {paper:g} ± {claim.margin:g}{signed})"


def verdict(claim: Claim, ours: Measurement, *, alpha: float = ALPHA) -> tuple[str, str, str]:
    """``(verdict, kind, why)`` for one claim under the rule of :data:`RULE_TEXT`.

    ``paper_signs`` of ``ours`` carry the paper's direction of each test a significance
    claim refers to (and of the effect an effect size describes), taken from the paper's
    own ratio or difference for the same test (see ``report/measure.py``).
    """
    kind = claim_kind(claim)
    if kind == "design input":
        return DESIGN, kind, "a quantity we set, not a measurement"
    if kind == "scale":
        key = claim.target if claim.quantity == "table4" else claim.quantity
        return NOT_COMPARABLE, kind, NOT_COMPARABLE_SCALE[key]
    if is_model_level(claim) and not ours.testable:
        return NOT_TESTABLE, kind, "model-level claim; one trained model per dataset"
    if ours.inconclusive:
        return INCONCLUSIVE, kind, ours.inconclusive
    if kind == "significance":
        result, why = _significance(claim, ours, alpha)
        return result, kind, why
    if not ours.comparable or not np.isfinite(ours.value):
        return NOT_COMPARABLE, kind, ours.reason or "no measurement"
    branch = {"directional": _directional, "effect size": _effect_size, "bound": _bound,
              "rank": _rank, "point": _point}[kind]  # fmt: skip
    result, why = branch(claim, ours)
    return result, kind, why
