"""The paper's claims and inconsistencies as data: schema, links, and agreement with the paper."""

import math
import re
from pathlib import Path

import pytest
import yaml

from diffusion_circuits.report.claims import CLAIMS_FILE, Claim, load_claims

INCONSISTENCIES_FILE = CLAIMS_FILE.with_name("paper_inconsistencies.yaml")
PAPER = Path(__file__).resolve().parents[3] / "shared" / "paper" / "seed-paper.txt"

FIELDS = ("id", "location", "quote", "quantity", "dataset", "timestep", "target", "statistic",
          "value", "sd", "comparator", "unit", "notes")  # fmt: skip
STATISTICS = set(Claim.model_fields["statistic"].annotation.__args__)
VOCABULARY = {
    "accuracy", "feature_complexity", "circuit_complexity", "circuit_complexity_ratio",
    "circuit_complexity_increase", "attention_entropy", "role_entropy", "head_entropy_range",
    "head_specialisation", "n_head_roles", "n_distinct_heads", "entropy_divergence",
    "specialisation_divergence", "layer_ablation_mse_baseline", "layer_ablation_mse_ablated",
    "layer_ablation_impact", "layer_ablation_rank", "intervention_impact_range",
    "intervention_impact", "cross_dataset_accuracy", "feature_transferability",
    "circuit_robustness", "sample_size", "power", "model_heads", "model_attention_layers",
    "model_width", "timesteps_total", "model_parameters", "processing_phases",
}  # fmt: skip
SEVERITIES = {"major", "moderate", "minor", "rounding"}
WORDS = {"eight": 8, "four": 4, "medium": 0.5, "significant": 0.05}  # words standing for numbers


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    data = yaml.safe_load(CLAIMS_FILE.read_text())
    assert isinstance(data, list)
    return data


@pytest.fixture(scope="module")
def by_id(entries) -> dict[str, dict]:
    return {e["id"]: e for e in entries}


@pytest.fixture(scope="module")
def inconsistencies() -> list[dict]:
    data = yaml.safe_load(INCONSISTENCIES_FILE.read_text())
    assert isinstance(data, list)
    return data


def _numbers(quote: str) -> list[float]:
    """Every number printed in a quote (LaTeX ``a\\times 10^{b}`` included)."""
    found = [
        float(a) * 10 ** int(b) for a, b in re.findall(r"([\d.]+)\\times\s*10\^\{(-?\d+)\}", quote)
    ]
    return found + [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", quote.replace(",", ""))]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_claims_load_with_unique_ids_and_enough_entries(entries):
    ids = [e["id"] for e in entries]
    assert len(ids) >= 40
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert all(re.fullmatch(r"[a-z0-9_]+", i) for i in ids)
    assert len(load_claims()) == len(entries)  # the report's own validation accepts the file


def test_required_fields_have_allowed_values(entries):
    for e in entries:
        assert all(f in e for f in FIELDS), (e["id"], [f for f in FIELDS if f not in e])
        assert e["dataset"] in (None, "synthetic", "natural"), e["id"]
        assert e["statistic"] in STATISTICS, e["id"]
        assert e["comparator"] in ("=", "<", ">"), e["id"]
        assert e["timestep"] is None or (
            isinstance(e["timestep"], int) and 0 <= e["timestep"] < 1000
        )
        assert isinstance(e["value"], int | float) and math.isfinite(e["value"]), e["id"]
        assert e["sd"] is None or e["sd"] > 0, e["id"]
        assert e["location"] and e["quote"], e["id"]


def test_quantities_are_from_the_vocabulary_or_documented_in_the_header(entries):
    header = "".join(
        line for line in CLAIMS_FILE.read_text().splitlines(True) if line.startswith("#")
    )
    for quantity in {e["quantity"] for e in entries} - VOCABULARY:
        assert re.search(rf"#\s+{quantity}\s", header), (
            f"{quantity} is neither standard nor documented"
        )


def test_same_as_points_to_the_first_place_with_the_same_number(entries, by_id):
    for e in entries:
        target = e.get("same_as")
        if target is None:
            continue
        assert target in by_id, e["id"]
        first = by_id[target]
        assert first.get("same_as") is None, f"{e['id']}: {target} is itself a repeat"
        assert entries.index(first) < entries.index(e), f"{e['id']}: {target} comes later"
        a, b = e["value"], first["value"]
        # The same number, or the same one as a percentage (1.538 -> 153.8, ratio 1.084 -> 8.4%).
        assert any(math.isclose(a, x, rel_tol=1e-9) for x in (b, 100 * b, 100 * (b - 1))), e["id"]


def test_every_value_and_sd_is_printed_in_its_quote(entries):
    for e in entries:
        numbers = _numbers(e["quote"])
        words = [WORDS[w] for w in WORDS if w in e["quote"]]
        if not numbers and not words:  # a printed list: the claim is its length
            assert e["value"] == len(e["quote"].split(",")), e["id"]
            continue
        assert any(math.isclose(e["value"], x, rel_tol=1e-9) for x in numbers + words), e["id"]
        if e["sd"] is not None:
            assert "±" in e["quote"] and e["sd"] in numbers, e["id"]


def test_tables_are_complete(by_id):
    for t in (100, 300, 600, 900):
        for key in ("synthetic", "natural", "ratio", "p"):
            assert f"t1_{key}_t{t}" in by_id
    for role in ("edge", "global", "texture", "semantic"):
        for key in ("entropy", "specialisation", "importance"):
            assert f"t2_{role}_{key}" in by_id
    for group in ("encoder_early", "encoder_middle", "encoder_late", "middle", "decoder_early",
                  "decoder_middle", "decoder_late"):  # fmt: skip
        for key in ("ablated", "impact", "rank"):
            assert by_id[f"t3_{group}_{key}"]["target"] == group
    for metric in ("circuit_complexity", "attention_entropy", "feature_complexity",
                   "intervention_impact"):  # fmt: skip
        for key in ("synthetic", "natural", "difference", "d", "p"):
            assert by_id[f"t4_{metric}_{key}"]["target"] == metric


def test_every_section_with_numbers_is_covered(entries):
    locations = " ".join(e["location"] for e in entries)
    for where in ("Abstract", "1.1", "3.1", "3.3", "Figure 2", "4.1", "Table 1", "4.3", "Table 2",
                  "4.4", "4.5", "Table 3", "4.6", "Table 4", "4.7", "4.8", "4.9", "5.1", "5.2",
                  "5.3", "5.4", "6 Conclusion"):  # fmt: skip
        assert where in locations, where


@pytest.mark.skipif(not PAPER.is_file(), reason="paper text not beside the checkout")
def test_quotes_are_printed_in_the_paper(entries):
    text = _squash(PAPER.read_text())
    assert [e["id"] for e in entries if _squash(e["quote"]) not in text] == []
    # Spot checks of values that matter most to the report.
    for quote in (
        "complexity ratio =1.084±0.008",
        "0.0246",
        "1.538",
        "d=0.80",
        "262",
        "85.2%±3.4%",
    ):
        assert _squash(quote) in text


def test_inconsistencies_refer_to_existing_claims(inconsistencies, by_id):
    ids = [i["id"] for i in inconsistencies]
    assert len(ids) == len(set(ids))
    for item in inconsistencies:
        assert set(item) >= {"id", "claim_ids", "description"}, item
        assert item.get("severity", "major") in SEVERITIES, item["id"]
        assert item["claim_ids"] and item["description"].strip(), item["id"]
        missing = [c for c in item["claim_ids"] if c not in by_id]
        assert not missing, (item["id"], missing)


def test_inconsistency_numbers_agree_with_the_claims(inconsistencies, by_id):
    found = {i["id"]: i["description"] for i in inconsistencies}
    for required in ("impact_range", "table3_rank_2", "monotonic", "texture_entropy",
                     "semantic_entropy", "overall_ratio", "all_metrics_p", "table4_effect_sizes",
                     "table3_impact_arithmetic", "parameters", "power_claim"):  # fmt: skip
        assert required in found, required
    v = {k: e["value"] for k, e in by_id.items()}
    for m in ("circuit_complexity", "attention_entropy", "feature_complexity",
              "intervention_impact"):  # fmt: skip
        a, b = by_id[f"t4_{m}_synthetic"], by_id[f"t4_{m}_natural"]
        d = (b["value"] - a["value"]) / math.sqrt((a["sd"] ** 2 + b["sd"] ** 2) / 2)
        assert f"{d:+.2f}" in found["table4_effect_sizes"], m
    ratio = v["t4_circuit_complexity_natural"] / v["t4_circuit_complexity_synthetic"]
    assert f"{ratio:.3f}" in found["overall_ratio"]
    assert "0.80 at d = 0.40" in found["power_claim"]
    groups = [k[3:-7] for k in v if k.startswith("t3_") and k.endswith("_impact")]
    order = sorted(groups, key=lambda g: -v[f"t3_{g}_impact"])
    wrong = [g for i, g in enumerate(order, 1) if v[f"t3_{g}_rank"] != i]
    assert len(wrong) == 5 and all(f"{g} {int(v[f't3_{g}_rank'])} (should be" in
                                   found["table3_rank_2"] for g in wrong)  # fmt: skip
