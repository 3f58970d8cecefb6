"""The rule that turns a claim and our measurement into a verdict.

- ``not comparable``: we have no measurement of the quantity (the reason is given).
- p-value claims assert significance: *replicated* when our p < 0.05, else *not replicated*.
- Directional claims (a ratio against 1, a difference against 0): *replicated* when our
  95% CI excludes the null on the paper's side, *opposite direction* when it excludes it
  on the other side, *not replicated* when it contains the null. A ratio or difference
  claim without a CI of ours is judged by its sign alone.
- Effect sizes: *replicated* when our Cohen's d has the paper's label (small/medium/...)
  (the paper gives no sign convention, so |d| is compared).
- Ranks: *replicated* when our rank equals the paper's.
- ``<`` / ``>`` bounds: *replicated* when our value satisfies the bound.
- Any other value: *replicated* when the paper's value lies in our 95% CI or within 10%
  of our estimate (relative tolerance for values printed without an interval).
"""

from __future__ import annotations

import numpy as np

from diffusion_circuits.report.claims import Claim
from diffusion_circuits.report.measure import Measurement
from diffusion_circuits.stats.compare import cohen_label

__all__ = ["verdict", "RELATIVE_TOLERANCE", "VERDICTS"]

RELATIVE_TOLERANCE = 0.10
VERDICTS = ("replicated", "not replicated", "opposite direction", "not comparable")


def _directional(claim: Claim, ours: Measurement, null: float) -> str:
    paper_side = np.sign(claim.value - null)
    low, high = ours.ci_low, ours.ci_high
    if np.isfinite(low) and np.isfinite(high):
        if low > null or high < null:
            our_side = 1.0 if low > null else -1.0
            return "replicated" if our_side == paper_side else "opposite direction"
        return "not replicated"
    our_side = np.sign(ours.value - null)
    if our_side == 0:
        return "not replicated"
    return "replicated" if our_side == paper_side else "opposite direction"


def verdict(claim: Claim, ours: Measurement) -> str:
    if not ours.comparable or not np.isfinite(ours.value):
        return "not comparable"
    if claim.statistic == "p_value":
        return "replicated" if ours.value < 0.05 else "not replicated"
    if claim.comparator == "<":
        return "replicated" if ours.value < claim.value else "not replicated"
    if claim.comparator == ">":
        return "replicated" if ours.value > claim.value else "not replicated"
    if claim.statistic == "ratio":
        return _directional(claim, ours, 1.0)
    if claim.statistic == "difference" and claim.quantity == "table4":
        return _directional(claim, ours, 0.0)
    if claim.statistic == "effect_size":
        same = cohen_label(abs(claim.value)) == cohen_label(abs(ours.value))
        return "replicated" if same else "not replicated"
    if claim.statistic == "rank":
        return "replicated" if round(ours.value) == round(claim.value) else "not replicated"
    inside = np.isfinite(ours.ci_low) and ours.ci_low <= claim.value <= ours.ci_high
    close = abs(claim.value - ours.value) <= RELATIVE_TOLERANCE * abs(ours.value)
    return "replicated" if inside or close else "not replicated"
