"""The offline page template for `dvc plots show` (scripts/build_plots_template.py)."""

import re
from pathlib import Path

import pytest

from script_helper import load_script

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".dvc/plots_template.html"


def test_page_inlines_each_library_and_keeps_only_dvcs_page_placeholders():
    build = load_script("build_plots_template")
    page = build.build_page(
        {"vega": ("5.0.0", "var a = '</script>';"), "vega-lite": ("5.1.0", "1")}
    )
    assert page.count("{plot_divs}") == 1 and page.count("{refresh_tag}") == 1
    assert "{scripts}" not in page  # DVC's CDN <script src> tags would go there
    assert "var a = '<\\/script>';" in page  # cannot close its <script> element early
    assert re.search(r"vega 5\.0\.0 \(build/vega\.min\.js, sha256 [0-9a-f]{64}\)", page)
    with pytest.raises(ValueError, match="DVC placeholder"):
        build.build_page({"vega": ("5", "x = '{plot_divs}'")})


def test_committed_template_renders_offline_through_dvc(tmp_path):
    dvc_render = pytest.importorskip("dvc_render")
    build = load_script("build_plots_template")
    points = [{"step": i, "loss": 1 / (i + 1), "rev": "workspace"} for i in range(5)]
    renderer = dvc_render.VegaRenderer(points, "loss.tsv", template="linear", x="step", y="loss")
    out = dvc_render.render_html([renderer], tmp_path / "index.html", html_template=TEMPLATE)
    page = Path(out).read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "cdn.jsdelivr" not in page
    for name, version in build.PACKAGES.items():
        assert f"{name} {version} (build/{name}.min.js" in page
    assert "vegaEmbed('#" in page  # DVC's plot div, placed by {plot_divs}
