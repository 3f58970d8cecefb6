"""The HTML replication page: valid, self-contained, every figure inlined, anchors resolve,
text escaped, verdicts linked to their evidence."""

import base64
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from diffusion_circuits.report.build import claims_table
from diffusion_circuits.report.claims import load_claims
from diffusion_circuits.report.page import figures_in, render_page
from diffusion_circuits.report.summary import summary_lines

VOID = {"meta", "img", "br", "hr", "link", "input"}


class Structure(HTMLParser):
    """Checks nesting (every non-void tag closed in order); collects ids, links, images."""

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.links, self.images, self.errors = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def parse(html: str) -> Structure:
    parser = Structure()
    parser.feed(html)
    parser.close()
    assert html.startswith("<!DOCTYPE html>")
    assert parser.errors == [] and parser.stack == []
    return parser


CLAIMS = pd.DataFrame([
    {"claim_id": "abs_acc", "location": "Abstract, 'accuracy <rises>'", "quantity": "accuracy",
     "dataset": "synthetic", "timestep": 100.0, "target": None, "paper_comparator": "=",
     "paper_value": 87.8, "paper_sd": 1.2, "ours": 89.3812, "ci_low": 89.01, "ci_high": 89.74,
     "verdict": "replicated", "reason": "R^2 & not 'accuracy'"},
    {"claim_id": "t3_ratio", "location": "Table 3, decoder_late row", "quantity": "layer_ablation_impact",
     "dataset": None, "timestep": None, "target": "decoder_late", "paper_comparator": "=",
     "paper_value": 1.538, "paper_sd": None, "ours": 18.76, "ci_low": None, "ci_high": None,
     "verdict": "not replicated", "reason": "<script>alert('x')</script>"},
    {"claim_id": "odd", "location": "5.4 Limitations", "quantity": "something_else",
     "dataset": None, "timestep": None, "target": None, "paper_comparator": "<",
     "paper_value": 0.001, "paper_sd": None, "ours": 0.02, "ci_low": None, "ci_high": None,
     "verdict": "opposite direction", "reason": ""},
    {"claim_id": "n", "location": "3.1 Design", "quantity": "sample_size", "dataset": "natural",
     "timestep": None, "target": None, "paper_comparator": "=", "paper_value": 2000,
     "paper_sd": None, "ours": 2000, "ci_low": None, "ci_high": None,
     "verdict": "not comparable", "reason": ""},
])  # fmt: skip


@pytest.fixture
def figures(tmp_path):
    """Two figure files with captions, as the figures stage writes them."""
    for name, payload in (("figure3_dataset_comparison", b"\x89PNG three"),
                          ("figure7_interventions", b"\x89PNG seven")):  # fmt: skip
        (tmp_path / f"{name}.png").write_bytes(payload)
        (tmp_path / f"{name}.txt").write_text(f"Caption of {name} with <b>tags</b>.\n")
    return figures_in(tmp_path)


def render(figures, claims=CLAIMS, summary="First finding.\n\nSecond <finding>.", **kwargs):
    tables = {"table3_layer_ablation": pd.DataFrame({"group": ["decoder_late"], "impact": [18.756]}),
              "table4_cross_dataset": "| metric | d |\n|---|---|\n| a<b | 0.4 |"}  # fmt: skip
    provenance = {"natural-face source": "LFW stand-in", "git commit": "abc123"}
    return render_page(claims, summary, figures, tables, provenance, **kwargs)


def test_page_is_valid_html_with_every_figure_inlined(figures):
    html = render(figures)
    page = parse(html)
    assert len(page.images) == len(figures) == 2
    for src, (path, _caption) in zip(page.images, figures.values(), strict=True):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src.removeprefix(prefix)) == path.read_bytes()
    assert 'id="figure3_dataset_comparison"' in html


def test_page_needs_no_network(figures):
    html = render(figures)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html


def test_every_anchor_resolves_and_ids_are_unique(figures):
    page = parse(render(figures))
    assert len(page.ids) == len(set(page.ids))
    internal = [link.removeprefix("#") for link in page.links if link.startswith("#")]
    assert internal and set(internal) <= set(page.ids)
    assert len(internal) == len(page.links)  # nothing links outside the page


def test_text_is_escaped(figures):
    html = render(figures)
    # notes and captions go through markdown-it with raw HTML off: escaped, never executed
    assert "<script>" not in html and "&lt;script&gt;alert('x')&lt;/script&gt;" in html
    assert "Second &lt;finding&gt;." in html
    assert "with &lt;b&gt;tags&lt;/b&gt;." in html
    assert "R^2 &amp; not 'accuracy'" in html
    assert "a&lt;b" in html


class Text(HTMLParser):
    """The page's visible text (what a reader sees)."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag == "style"

    def handle_endtag(self, tag):
        self.skip -= tag == "style"

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def test_the_markdown_summary_is_rendered_not_shown_raw(figures, three_seeds):
    """The report's own summary (headings, bold verdicts, tables) reaches the reader as HTML."""
    table = claims_table(load_claims(), three_seeds)
    html = render(figures, claims=table, summary="\n".join(summary_lines(table, None)))
    assert "| a&lt;b |" not in html  # a Markdown table given as text is rendered too
    parse(html)
    text = Text()
    text.feed(html)
    visible = "".join(text.parts)
    assert "###" not in visible and "**" not in visible and "|---|" not in visible
    assert "<h3>The five findings that matter most</h3>" in html and "<strong>" in html


def _verdict_links(html: str) -> dict[str, str | None]:
    """claim row id -> the anchor its verdict links to (None: not linked)."""
    links = {}
    for row_id, row in re.findall(r'<tr id="(claim-[^"]+)">(.*?)</tr>', html, flags=re.S):
        match = re.search(r'<a class="verdict[^"]*" href="#([^"]+)"', row)
        links[row_id] = match.group(1) if match else None
    return links


def test_each_verdict_links_to_its_figure_or_table(figures):
    links = _verdict_links(render(figures))
    assert links == {
        "claim-abs_acc": "figure3_dataset_comparison",  # by quantity
        "claim-t3_ratio": "table3_layer_ablation",  # by "Table 3" in the location
        "claim-odd": None,  # nothing on the page shows it: not linked
        "claim-n": "provenance",  # a set-up quantity
    }
    explicit = CLAIMS.assign(evidence=["figure7_interventions", None, None, None])
    assert _verdict_links(render(figures, claims=explicit))["claim-abs_acc"] == (
        "figure7_interventions"
    )


def test_headline_findings_come_first(figures):
    html = render(figures, summary={"Claims": "4 tested", "Largest gap": "layer ablation"})
    order = [html.index(f'id="{s}"') for s in ("headline", "figures", "tables", "claims",
                                                "provenance")]  # fmt: skip
    assert order == sorted(order)
    headline = html[order[0] : order[1]]
    assert "<strong>Claims</strong>: 4 tested" in headline
    assert '<span class="ok">1 replicated</span>' in headline
    # The abstract's claims are the headline ones, linking to their row in the full table.
    assert 'href="#claim-abs_acc"' in headline and "claim-t3_ratio" not in headline


def test_claim_cells_are_formatted(figures):
    html = render(figures)
    row = re.search(r'<tr id="claim-abs_acc">(.*?)</tr>', html, flags=re.S).group(1)
    assert "accuracy synthetic t=100" in row
    assert "87.8 ± 1.2" in row and "89.38" in row and "[89.01, 89.74]" in row
    odd = re.search(r'<tr id="claim-odd">(.*?)</tr>', html, flags=re.S).group(1)
    assert "&lt;0.001" in odd


def visible_text(html: str) -> str:
    text = Text()
    text.feed(html)
    return "".join(text.parts)


@pytest.fixture(scope="module")
def full_table(three_seeds):
    """The claims table the pipeline builds, on the synthetic three-seed study."""
    return claims_table(load_claims(), three_seeds)


def test_a_verdict_sentence_counted_from_the_table_opens_the_page(figures, full_table):
    html = render(figures, claims=full_table, summary=None)
    sentence = re.search(r'<p class="verdict-sentence">(.*?)</p>', html, flags=re.S).group(1)
    counts = full_table["verdict"].value_counts()
    agree = counts.get("replicated", 0) + counts.get("consistent", 0)
    against = counts.get("contradicted", 0) + counts.get("opposite", 0)
    inconclusive = counts.get("inconclusive", 0)
    assert sentence.startswith(f"Of the paper&#39;s {len(full_table)} claims, {agree} replicated")
    assert f"{against} are contradicted or go the opposite way" in sentence
    assert f"{inconclusive} are inconclusive" in sentence
    assert f"{len(full_table) - agree - against - inconclusive} could not be tested" in sentence
    # it is the first text under the page's first heading
    headline = html[html.index('<section id="headline">') :]
    assert headline.index("verdict-sentence") < headline.index("<h3>")
    # one claim flipped: the sentence follows the data
    flipped = full_table.assign(verdict=["contradicted"] * len(full_table))
    html = render(figures, claims=flipped, summary=None)
    assert (
        f"0 replicated or are consistent with our data, {len(full_table)} are contradicted" in html
    )


def test_the_structured_summary_shows_no_raw_markdown(figures, full_table):
    previous = full_table[["claim_id", "verdict"]].copy()
    previous.loc[0, "verdict"] = "a verdict of the last report"
    html = render(figures, claims=full_table, summary=None, previous=previous)
    parse(html)
    visible = visible_text(html)
    for raw in ("###", "**", "| ---", "|---|", "|---"):
        assert raw not in visible, raw
    # the findings are a list of five items, each with its verdict in bold
    findings = re.search(r'<ol class="findings">(.*?)</ol>', html, flags=re.S).group(1)
    assert findings.count("<li>") == 5 and findings.count("<strong>") == 5
    # the changed claim is listed with its old and new verdict
    changed = html[html.index("Verdicts changed since") : html.index("One test, one verdict")]
    assert "1 claim changed verdict:" in changed
    assert full_table.loc[0, "claim_id"] in changed and "a verdict of the last report" in changed


def test_without_a_previous_report_nothing_is_listed_as_changed(figures, full_table):
    html = render(figures, claims=full_table, summary=None)
    assert "None: no previous committed claims table." in html


def test_long_tables_fold_and_every_table_scrolls_in_its_box(figures):
    long = pd.DataFrame({f"column {i}": range(40) for i in range(30)})  # long and wide
    short = pd.DataFrame({"group": ["a", "b"], "impact": [1.0, 2.0]})
    html = render_page(CLAIMS, "", figures, {"table1_long": long, "table2_short": short}, {})
    parse(html)
    first = html[html.index('id="table1_long"') : html.index('id="table2_short"')]
    second = html[html.index('id="table2_short"') : html.index('id="claims"')]
    assert "<details><summary>" in first and "40 rows" in first
    assert "<details>" not in second
    assert first.count('<div class="scroll">') == 1 and second.count('<div class="scroll">') == 1
    assert re.search(r"\.scroll \{[^}]*overflow-x: auto", html)
