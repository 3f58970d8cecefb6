"""What every stage script shares: argument parsing, params loading, one-line errors.

Importing this module is cheap (the standard library, :mod:`diffusion_circuits.layout` and
the light half of :mod:`diffusion_circuits.io`): a stage parses its arguments before it
imports numpy, torch or diffusers, so ``--help`` and a bad argument answer at once.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from diffusion_circuits.io import MissingInputError, UserError, producing_stage
from diffusion_circuits.layout import DATASETS, model_name

if TYPE_CHECKING:
    from diffusion_circuits.params import Params

__all__ = [
    "stage_entry",
    "stage_parser",
    "stage_args",
    "model_stage_parser",
    "model_stage_args",
    "is_user_error",
    "user_message",
]

# Characters that surround a path inside an error message ("x/y: missing", "(x/y)", 'x/y').
_PATH_PUNCTUATION = "\"'`()[],;:"


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    return parser


def stage_args(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, Params]:
    """Parse the command line, then load and validate ``--params``.

    The params module (pydantic) is imported only after parsing, for a fast ``--help``.
    """
    args = parser.parse_args()
    from diffusion_circuits.params import load_params

    return args, load_params(args.params)


def model_stage_parser(description: str, *, seed: bool = True) -> argparse.ArgumentParser:
    """:func:`stage_parser` with ``--dataset`` (and ``--seed``) of a per-model stage."""
    parser = stage_parser(description)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    if seed:
        parser.add_argument("--seed", type=int, required=True)
    return parser


def model_stage_args(description: str, *, seed: bool = True) -> tuple[argparse.Namespace, Params]:
    """Parse ``--dataset`` (and ``--seed``) of a per-model stage and load its params.

    ``args.name`` is the model's name, :func:`~diffusion_circuits.layout.model_name`
    (the dataset for a per-dataset stage).
    """
    args, params = stage_args(model_stage_parser(description, seed=seed))
    args.name = model_name(args.dataset, args.seed) if seed else args.dataset
    return args, params


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` describes bad input (one line for the user) rather than a bug.

    User errors are :class:`~diffusion_circuits.io.UserError`, a missing file, and the
    validation errors this package defines as ``ValueError`` subclasses (``ParamsError``,
    ``CheckpointError``, ``CelebAError``). A bare ``ValueError`` or a ``RuntimeError``
    can come from a bug anywhere (numpy, torch, our own code), so it keeps its traceback.
    """
    if isinstance(exc, UserError | FileNotFoundError):
        return True
    return isinstance(exc, ValueError) and type(exc).__module__.startswith("diffusion_circuits")


def _mentioned_paths(exc: BaseException) -> list[str]:
    """Paths an error is about: the OSError filename, then path-like words of the message."""
    paths = [str(exc.filename)] if getattr(exc, "filename", None) else []
    words = (word.strip(_PATH_PUNCTUATION) for word in str(exc).split())
    return paths + [word for word in words if "/" in word]


def _upstream_hint(exc: BaseException) -> str:
    """``; run `dvc repro <stage>` first`` when the error is about a missing stage output."""
    if isinstance(exc, MissingInputError):
        return ""  # its message already names the stage
    for path in _mentioned_paths(exc):
        if Path(path).exists():
            continue
        stage = producing_stage(path)
        if stage:
            return f"; run `dvc repro {stage}` first"
    return ""


def user_message(exc: BaseException) -> str:
    """The one line printed for a user error: ``error: <Type>: <message>[; run ...]``."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {type(exc).__name__}: {message}{_upstream_hint(exc)}"


def stage_entry(main: Callable[[], None]) -> Callable[[], None]:
    """Run ``main``; turn a user error into one line on stderr and exit status 2.

    Any other exception propagates with its traceback. Set ``DIFFUSION_CIRCUITS_DEBUG=1``
    to get the traceback of user errors too.
    """

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except Exception as exc:
            if not is_user_error(exc) or os.environ.get("DIFFUSION_CIRCUITS_DEBUG"):
                raise
            print(user_message(exc), file=sys.stderr)
            sys.exit(2)

    return wrapper
