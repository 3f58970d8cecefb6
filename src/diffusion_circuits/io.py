"""Atomic file outputs, and the errors a stage raises about its inputs.

Every writer goes to a temporary file in the destination folder and ``os.replace``-s it
into place, which is atomic on POSIX filesystems: an interrupted stage never leaves a
half-written file behind. :class:`UserError` marks an error that describes bad input
rather than a bug (the stage prints it as one line); :class:`MissingInputError` is the
one for an upstream output that is not there yet, and names the stage that makes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

# numpy and pandas are imported where a writer needs them: the stage scripts import this
# module (through cli.py) before they parse their arguments, and --help should not wait.
if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "UserError",
    "MissingInputError",
    "producing_stage",
    "require_input",
    "atomic_path",
    "atomic_dir",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
    "read_json",
    "read_npz",
    "read_parquet",
]


class UserError(Exception):
    """Bad input, a missing file or an impossible setting: shown as one line, no traceback."""


class MissingInputError(UserError, FileNotFoundError):
    """An upstream output is missing; the message says which stage produces it."""

    def __init__(self, path: str | Path, what: str = "", root: str | Path | None = None):
        self.path = Path(path)
        self.stage = producing_stage(self.path, root)
        detail = f" ({what})" if what else ""
        run = f"dvc repro {self.stage}" if self.stage else "dvc repro"
        super().__init__(f"{self.path}: missing{detail}; run `{run}` first")


def producing_stage(path: str | Path, root: str | Path | None = None) -> str | None:
    """The DVC stage whose output contains ``path`` (e.g. ``train@synthetic-0``), or None.

    Read from the pipeline itself (``dvc.yaml`` with its matrix expanded by DVC) so the
    answer follows the pipeline as it changes. Only called on the error path, where the
    cost of importing DVC does not matter; any failure (no DVC, not a DVC repository)
    gives None, because a hint must never hide the error it decorates.

    Parameters
    ----------
    path : str or Path
        A file or folder, relative to the current directory or absolute.
    root : str or Path, optional
        The DVC repository; by default the one containing the current directory.
    """
    target = Path(path).resolve()
    try:
        from dvc.repo import Repo

        with Repo(str(root) if root is not None else None) as repo:
            for stage in repo.index.stages:
                for out in stage.outs:
                    produced = Path(out.fs_path).resolve()
                    if target == produced or produced in target.parents:
                        return stage.addressing
    except Exception:  # noqa: BLE001 - see docstring: the hint is optional
        return None
    return None


def require_input(path: str | Path, what: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`MissingInputError` naming its stage."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(path, what)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode open() would have.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Like :func:`atomic_path` for a folder (e.g. a ``save_pretrained`` checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN; dvc metrics treat null as missing
    return value


def write_json(data: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def _unreadable(path: str | Path, kind: str, exc: Exception) -> UserError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(f"{path}: not a readable {kind} file ({first}); truncated or corrupt? "
                     "re-run the stage that writes it")  # fmt: skip


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON file's content; a corrupt file is one line naming it (a missing one stays
    FileNotFoundError)."""
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _unreadable(path, "JSON", exc) from None


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A parquet table; a corrupt file is one line naming it (a missing one stays
    FileNotFoundError)."""
    import pandas as pd

    if not Path(path).exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise _unreadable(path, "parquet", exc) from None


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, loaded; a corrupt file is one line naming it."""
    import zipfile

    import numpy as np

    if not Path(path).exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        with np.load(path) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(path, "npz", exc) from None


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
