import re
from pathlib import Path

import numpy as np
import pytest

from diffusion_circuits.report.claims import Claim, load_claims
from diffusion_circuits.report.inconsistencies import find_inconsistencies
from diffusion_circuits.report.measure import Measurement
from diffusion_circuits.report.verdict import verdict

PAPER = Path(__file__).resolve().parents[3] / "shared" / "paper" / "seed-paper.txt"


def claim(**kwargs) -> Claim:
    base = dict(
        id="x", location="here", quote="1", quantity="accuracy", statistic="mean", value=1.0
    )
    return Claim(**{**base, **kwargs})


def test_claims_file_is_complete_and_consistent():
    claims = load_claims()
    assert len(claims) >= 40
    ids = {c.id for c in claims}
    assert all(c.same_as in ids for c in claims if c.same_as)
    for c in claims:
        assert c.location and c.quantity


@pytest.mark.skipif(not PAPER.is_file(), reason="paper text not beside the checkout")
def test_every_quote_is_printed_in_the_paper():
    text = re.sub(r"\s+", "", PAPER.read_text())
    missing = [c.id for c in load_claims() if re.sub(r"\s+", "", c.quote) not in text]
    assert not missing, missing


@pytest.mark.parametrize(
    ("kwargs", "ours", "expected"),
    [
        (
            {"statistic": "p_value", "value": 0.001, "comparator": "<"},
            Measurement(0.01),
            "replicated",
        ),
        (
            {"statistic": "p_value", "value": 0.001, "comparator": "<"},
            Measurement(0.2),
            "not replicated",
        ),
        ({"statistic": "ratio", "value": 1.08}, Measurement(1.1, 1.02, 1.2), "replicated"),
        ({"statistic": "ratio", "value": 1.08}, Measurement(0.9, 0.8, 0.95), "opposite direction"),
        ({"statistic": "ratio", "value": 1.08}, Measurement(1.0, 0.9, 1.1), "not replicated"),
        ({"statistic": "effect_size", "value": 0.6}, Measurement(-0.7), "replicated"),
        ({"statistic": "effect_size", "value": 0.6}, Measurement(0.1), "not replicated"),
        ({"statistic": "rank", "value": 2}, Measurement(2.0), "replicated"),
        ({"value": 97.6}, Measurement(95.0, 94.0, 98.0), "replicated"),
        ({"value": 97.6}, Measurement(60.0, 58.0, 62.0), "not replicated"),
        ({"value": 0.95, "statistic": "power", "comparator": ">"}, Measurement(0.99), "replicated"),
        ({"value": 4.0}, Measurement(np.nan, comparable=False, reason="no rule"), "not comparable"),
    ],
)
def test_verdict_rule(kwargs, ours, expected):
    assert verdict(claim(**kwargs), ours) == expected


def test_inconsistencies_are_recomputed_from_the_claims():
    found = {item["id"]: item for item in find_inconsistencies(load_claims(), 8_600_000)}
    assert "table3_rank_2" in found and "texture_entropy" in found
    assert (
        "implies |d| = 0.27, not the printed 0.80"
        in found["table4_d_circuit_complexity"]["description"]
    )
    assert "d = 0.40 gives power 0.80" in found["power_claim"]["description"]
    # Rounding of printed MSEs is not flagged as an inconsistency.
    assert not any(key.startswith("table3_impact_") for key in found)
