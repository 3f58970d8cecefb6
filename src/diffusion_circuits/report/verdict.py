"""The rule that turns a claim and our measurement into a verdict (docs/VERDICTS.md).

Each claim gets a *kind* from its fields (:func:`claim_kind`), and each kind one branch of
the rule (:func:`verdict`), which also names the branch it used. :data:`RULE_TEXT` is the
rule in words, printed in the report header.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.stats.compare import ALPHA, cohen_label

__all__ = [
    "ALPHA",
    "DESIGN_INPUTS",
    "MODEL_LEVEL",
    "Measurement",
    "NOT_COMPARABLE_SCALE",
    "RELATIVE_TOLERANCE",
    "RULE_TEXT",
    "VERDICTS",
    "ci_side",
    "claim_kind",
    "is_model_level",
    "paper_threshold",
    "rule_text",
    "verdict",
]

RELATIVE_TOLERANCE = 0.10
REPLICATED, NOT_REPLICATED, OPPOSITE = "replicated", "not replicated", "opposite direction"
NOT_TESTABLE = "not testable: one model per dataset"
DESIGN = "not comparable (design input)"
NOT_COMPARABLE = "not comparable"
VERDICTS = (REPLICATED, NOT_REPLICATED, OPPOSITE, NOT_TESTABLE, DESIGN, NOT_COMPARABLE)

# Quantities we set rather than measure.
DESIGN_INPUTS = frozenset({
    "sample_size", "model_heads", "model_attention_layers", "model_width", "timesteps_total",
    "ci_level", "n_synthetic_attributes", "model_parameters",
})  # fmt: skip
# Quantities whose scale differs between implementations: the reason is printed.
NOT_COMPARABLE_SCALE = {
    "feature_complexity": "feature complexity is in activation units^2: its scale is set by "
    "the network's activations, not comparable across implementations",
    "circuit_complexity": "the paper does not define circuit complexity; our participation "
    "ratio's scale depends on the number of components K (directions remain comparable)",
    "information_flow_efficiency": "the paper's IFE is a raw plug-in estimator, whose chance "
    "level rises on coarse grids (many bins, few positions); ours is chance-adjusted (0 = "
    "independent maps), so raw IFE is not comparable; layers are ordered on the adjusted value",
    "phase_timesteps": "the paper names phase boundaries but gives no rule that detects them",
    "phase_feature_complexity": "phase values restate 4.1 per timestep; no phase-detection rule",
    "processing_phases": "the paper names four phases but gives no rule that detects them",
}
# Claims about a dataset or a model family (synthetic vs natural, or the pair of models).
MODEL_LEVEL = frozenset({
    "circuit_complexity_ratio", "circuit_complexity_increase", "entropy_divergence",
    "specialisation_divergence", "all_metrics_p", "effect_size_range", "power",
    "cross_dataset_accuracy", "feature_transferability", "circuit_robustness",
})  # fmt: skip
NULLS = {"ratio": 1.0, "difference": 0.0, "percent": 0.0, "effect_size": 0.0}


def rule_text(alpha: float = ALPHA) -> str:
    """The rule in words, with ``alpha`` (``params.stats.alpha``) for exact printed p values."""
    return (
        "Significance claims (a p value) are replicated only when every test they refer to has "
        "a Holm-adjusted p (within the test's family, as computed by the stats stage) below the "
        f"paper's own threshold (its printed bound, or {alpha:g} where it prints an exact p) and goes "
        "in the paper's direction; a significant test in the other direction gives 'opposite "
        "direction'. Directional claims (ratio vs 1, signed difference or percent change vs 0) "
        "are judged by our 95% CI against the null: same side replicated, other side opposite "
        "direction, across the null not replicated (no CI: not replicated). Effect sizes need "
        "the paper's Cohen label and sign, the sign read from the CI of the same test's mean "
        "difference (other side: opposite direction). Point values with a valid CI over the "
        "statistical unit are replicated when the paper's value lies inside it; without a CI, "
        f"when within {RELATIVE_TOLERANCE:.0%} of the paper's value. Ranks must be equal, "
        "bounds satisfied. Design inputs are 'not comparable (design input)'; quantities whose "
        "scale differs across implementations are 'not comparable' with the reason. Claims "
        "about a dataset or a model family use the training seed as the unit (hierarchical "
        "bootstrap, Welch test on per-seed means) and with one seed are 'not testable: one "
        "model per dataset', never judged on image-level p values."
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
    per dataset.
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
    return NOT_REPLICATED, f"not every test reaches p_holm < {threshold:g}"


def _directional(claim: Claim, ours: Measurement) -> tuple[str, str]:
    null = NULLS.get(claim.statistic, 0.0)
    paper_side = np.sign(claim.value - null)
    if not _valid_ci(ours):
        return NOT_REPLICATED, "no valid CI: direction not established"
    side = ci_side(ours.ci_low, ours.ci_high, null)
    if side == 0:
        return NOT_REPLICATED, f"CI contains the null {null:g}"
    if side == paper_side:
        return REPLICATED, f"CI excludes {null:g} on the paper's side"
    return OPPOSITE, f"CI excludes {null:g} on the other side"


def _effect_size(claim: Claim, ours: Measurement) -> tuple[str, str]:
    stated = ours.paper_signs[0] if ours.paper_signs else 0.0
    paper_sign = stated if stated != 0 else np.sign(claim.value)
    paper_label = cohen_label(claim.value)
    ours_label = cohen_label(ours.value)
    low, high = ours.direction_ci
    if np.isfinite(low) and np.isfinite(high):
        side = ci_side(low, high, 0.0)
        if side == 0:
            return NOT_REPLICATED, "sign not established (CI of the difference contains 0)"
    else:
        side = int(np.sign(ours.value))
    if paper_sign != 0 and side == -paper_sign:
        return OPPOSITE, "d in the other direction (by the CI of the mean difference)"
    if ours_label == paper_label:
        return REPLICATED, f"same sign and label ({paper_label})"
    return NOT_REPLICATED, f"same sign, label {ours_label}, paper {paper_label}"


def _point(claim: Claim, ours: Measurement, tolerance: float) -> tuple[str, str]:
    if _valid_ci(ours):
        inside = ours.ci_low <= claim.value <= ours.ci_high
        return (REPLICATED, "paper's value inside our CI") if inside else (
            NOT_REPLICATED, "paper's value outside our CI")  # fmt: skip
    close = abs(ours.value - claim.value) <= tolerance * abs(claim.value)
    where = "within" if close else "not within"
    return (REPLICATED if close else NOT_REPLICATED), f"no CI; {where} {tolerance:.0%} of the paper's value"  # fmt: skip


def verdict(
    claim: Claim, ours: Measurement, *, alpha: float = ALPHA, tolerance: float = RELATIVE_TOLERANCE
) -> tuple[str, str, str]:
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
    if kind == "significance":
        result, why = _significance(claim, ours, alpha)
        return result, kind, why
    if not ours.comparable or not np.isfinite(ours.value):
        return NOT_COMPARABLE, kind, ours.reason or "no measurement"
    if kind == "directional":
        result, why = _directional(claim, ours)
    elif kind == "effect size":
        result, why = _effect_size(claim, ours)
    elif kind == "bound":
        holds = ours.value < claim.value if claim.comparator == "<" else ours.value > claim.value
        result, why = (REPLICATED if holds else NOT_REPLICATED), f"bound {claim.comparator} {claim.value:g}"  # fmt: skip
    elif kind == "rank":
        equal = round(ours.value) == round(claim.value)
        result, why = (REPLICATED if equal else NOT_REPLICATED), "ranks compared"
    else:
        result, why = _point(claim, ours, tolerance)
    return result, kind, why
