"""DVC's run-cache restores what ran before: a second identical run re-runs nothing.

In a throw-away copy of this working tree (tracked and untracked, not ignored, files) with
the tiny profile applied: `dvc repro` of the first stages, then `dvc exp run --temp` of
the same stages in DVC's temporary copy, which starts without any output, must restore
every stage from the cache instead of running it. A stage whose outputs DVC could not
restore (an output it does not cache, a side file it declares that changes between runs,
such as wall times did) would run again.

Slow (a tiny training run, twice DVC's start-up: about a minute or two); the repository
has no marker convention for slow tests, so it runs with the rest and keeps to the first
three stages.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ["generate_synthetic", "prepare_natural", "train@synthetic-0"]

pytestmark = pytest.mark.skipif(
    shutil.which("dvc", path=str(BIN)) is None or shutil.which("git") is None,
    reason="needs dvc (the pipeline extra) and git",
)


def run(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@localhost"}  # fmt: skip
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def tiny_clone(tmp_path_factory) -> Path:
    """This working tree without outputs, its own git repository, the tiny profile committed."""
    clone = tmp_path_factory.mktemp("run_cache") / "repo"
    files = run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT).split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree is still listed by git
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    run("git", "init", "-q", cwd=clone)
    run(sys.executable, "-m", "diffusion_circuits.profiles", "tiny", "--apply", cwd=clone)
    run("git", "add", "-A", cwd=clone)
    run("git", "commit", "-qm", "tiny profile", cwd=clone)
    return clone


def stages_run(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("Running stage")]


def test_a_second_identical_run_restores_every_stage(tiny_clone):
    first = run("dvc", "repro", *STAGES, cwd=tiny_clone)
    assert len(stages_run(first)) == len(STAGES), first  # the check below is not vacuous
    second = run("dvc", "exp", "run", "--temp", *STAGES, cwd=tiny_clone)
    assert stages_run(second) == [], second
    for stage in STAGES:
        restored = (f"Stage '{stage}' is cached - skipping run" in second
                    or f"Stage '{stage}' didn't change, skipping" in second)  # fmt: skip
        assert restored, f"{stage} was neither restored nor unchanged:\n{second}"
