"""The README's probe quick start runs, exactly as written, on a fresh clone."""

import re
import runpy
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK_START = "## Probe library: quick start"


def quick_start_code(readme: str) -> str:
    """The first ```python block after the quick-start heading."""
    section = readme.split(QUICK_START, 1)[1]
    match = re.search(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)
    assert match, f"no python block under {QUICK_START!r}"
    return match.group(1)


def test_the_quick_start_needs_nothing_downloaded():
    code = quick_start_code(README.read_text())
    # Loading from a path is only shown in a comment: a fresh clone has no data/models.
    live = "\n".join(line.split("#", 1)[0] for line in code.splitlines())
    assert "from_pretrained" not in live and "data/" not in live


def test_the_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    script = tmp_path / "quick_start.py"
    script.write_text(quick_start_code(README.read_text()))
    monkeypatch.chdir(tmp_path)  # no file of the checkout is within reach
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert "'mid.attn.0': 8" in printed and "moves the output by" in printed


def test_a_broken_quick_start_fails(tmp_path):
    """The runner does fail on a broken block (here: the old example's undefined x_t)."""
    script = tmp_path / "broken.py"
    script.write_text("out = unet(x_t, t).sample\n")
    with pytest.raises(NameError):
        runpy.run_path(str(script))
