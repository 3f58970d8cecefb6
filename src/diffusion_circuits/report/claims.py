"""The paper's numeric claims as validated data (``paper_claims.yaml`` beside this file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from diffusion_circuits.vocabulary import DATASETS

__all__ = ["Claim", "load_claims", "CLAIMS_FILE"]

CLAIMS_FILE = Path(__file__).with_name("paper_claims.yaml")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    location: str
    quote: str
    quantity: str
    dataset: Literal[DATASETS] | None = None
    timestep: int | None = None
    target: str | None = None
    statistic: Literal[
        "mean", "sd", "ratio", "difference", "p_value", "effect_size", "rank", "range_low",
        "range_high", "count", "n", "power", "percent",
    ]  # fmt: skip
    value: float
    sd: float | None = None
    comparator: Literal["=", "<", ">"] = "="
    # margin of practical equivalence of a point value (paper_claims.yaml header)
    margin: float | None = None
    unit: str | None = None
    notes: str = ""
    same_as: str | None = None
    # a claim whose different number is the same evidence as an earlier claim's
    same_evidence: str | None = None


def load_claims(path: str | Path = CLAIMS_FILE) -> list[Claim]:
    """Every claim, validated; duplicate ids and dangling ``same_as`` are errors."""
    claims = [Claim.model_validate(entry) for entry in yaml.safe_load(Path(path).read_text())]
    ids = [claim.id for claim in claims]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate claim ids {duplicates}")
    dangling = [c.id for c in claims
                if any(link is not None and link not in ids for link in (c.same_as, c.same_evidence))]  # fmt: skip
    if dangling:
        raise ValueError(f"{path}: same_as points to no claim in {dangling}")
    return claims
