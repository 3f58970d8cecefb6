import re
from pathlib import Path

import pytest

from diffusion_circuits.report.claims import load_claims
from diffusion_circuits.report.inconsistencies import find_inconsistencies

PAPER = Path(__file__).resolve().parents[3] / "shared" / "paper" / "seed-paper.txt"


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
