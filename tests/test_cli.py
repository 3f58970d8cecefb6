"""Stage error handling: user errors are one line (naming the stage to run when an upstream
output is missing); bugs keep their traceback."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_circuits.cli import is_user_error, stage_entry, user_message
from diffusion_circuits.io import MissingInputError, UserError, producing_stage, require_input
from diffusion_circuits.model.factory import CheckpointError
from diffusion_circuits.params import ParamsError

ROOT = Path(__file__).resolve().parents[1]

DVC_YAML = """\
stages:
  make_data:
    cmd: echo data
    outs:
      - data/faces
  train:
    matrix:
      dataset: [synthetic, natural]
      seed: [0, 1]
    cmd: echo ${item.dataset} ${item.seed}
    outs:
      - data/models/${item.dataset}-seed${item.seed}
"""


@pytest.fixture
def dvc_repo(tmp_path, monkeypatch) -> Path:
    """A minimal DVC repository (no git), written by hand so no ``dvc`` command runs."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text("[core]\n    no_scm = True\n")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("exc", "user"),
    [
        (ParamsError("params.yaml: bad"), True),
        (CheckpointError("x: no unet/config.json"), True),
        (FileNotFoundError("x.npz"), True),
        (UserError("runtime.device is 'cuda' but no CUDA device"), True),
        (RuntimeError("CUDA error: an illegal memory access"), False),
        (ValueError("operands could not be broadcast together"), False),
        (KeyError("hook"), False),
    ],
)
def test_only_our_input_errors_are_user_errors(exc, user):
    assert is_user_error(exc) is user


def test_a_bug_keeps_its_traceback():
    @stage_entry
    def main():
        raise RuntimeError("torch bug")

    with pytest.raises(RuntimeError, match="torch bug"):
        main()


def test_a_user_error_is_one_line_and_exit_status_2(capsys):
    @stage_entry
    def main():
        raise ParamsError("params.yaml: train.steps = -3:\n must be >= 1")

    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "error: ParamsError: params.yaml: train.steps = -3: must be >= 1\n"
    )


def test_debug_variable_shows_the_traceback_of_user_errors(monkeypatch):
    monkeypatch.setenv("DIFFUSION_CIRCUITS_DEBUG", "1")

    @stage_entry
    def main():
        raise ParamsError("bad")

    with pytest.raises(ParamsError):
        main()


def test_producing_stage_reads_the_expanded_pipeline(dvc_repo):
    assert producing_stage("data/models/natural-seed1") == "train@natural-1"
    assert producing_stage("data/models/synthetic-seed0/unet/config.json") == "train@synthetic-0"
    assert producing_stage(dvc_repo / "data/faces/images.npz") == "make_data"
    assert producing_stage("data/other") is None


def test_producing_stage_outside_a_dvc_repository_is_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert producing_stage("data/models/synthetic-seed0") is None


def test_missing_upstream_output_names_the_stage_to_run(dvc_repo):
    with pytest.raises(MissingInputError) as info:
        require_input("data/models/synthetic-seed0", "the trained model")
    assert str(info.value) == (
        "data/models/synthetic-seed0: missing (the trained model); "
        "run `dvc repro train@synthetic-0` first"
    )
    assert isinstance(info.value, FileNotFoundError)
    # Errors raised elsewhere about a missing stage output get the same hint.
    error = CheckpointError("data/models/natural-seed1: no unet/config.json")
    assert user_message(error).endswith("; run `dvc repro train@natural-1` first")
    error = FileNotFoundError("missing analysis output data/faces/x.parquet (run earlier)")
    assert user_message(error).endswith("; run `dvc repro make_data` first")
    (dvc_repo / "data/faces").mkdir(parents=True)
    (dvc_repo / "data/faces/x.parquet").touch()
    assert "dvc repro" not in user_message(error)  # the path exists: no hint


def test_analyze_before_train_names_the_train_stage(tmp_path):
    """The real pipeline: ``analyze`` in a fresh checkout with nothing trained."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text("[core]\n    no_scm = True\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages/analyze.py"), "--dataset", "synthetic", "--seed", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "data/models/synthetic-seed0" in lines[0]
    assert lines[0].endswith("run `dvc repro train@synthetic-0` first")
