"""What the report knows from git: the commit it describes and the last committed claims."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pandas as pd

__all__ = ["git_output", "head_commit", "committed_claims"]


def git_output(*args: str) -> str | None:
    """Standard output of ``git <args>``; None when git fails (not a checkout, no such file)."""
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def head_commit() -> str:
    """The short hash of HEAD, or a phrase saying there is none."""
    return (git_output("rev-parse", "--short", "HEAD") or "").strip() or (
        "unknown (not a git checkout)"
    )


def committed_claims(path: str | Path) -> pd.DataFrame | None:
    """The claims table as of the last commit (None outside git or before the first report)."""
    text = git_output("show", f"HEAD:{Path(path).as_posix()}")
    return pd.read_csv(io.StringIO(text)) if text else None
