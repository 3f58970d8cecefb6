"""What every stage script shares: argument parsing, params loading, one-line errors."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable

__all__ = ["stage_entry", "stage_parser"]

# Errors that describe bad input rather than a bug: the user sees one line, not a traceback.
_INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    return parser


def stage_entry(main: Callable[[], None]) -> Callable[[], None]:
    """Run ``main``; turn an input error into ``error: <one line>`` and exit status 2.

    Set ``DIFFUSION_CIRCUITS_DEBUG=1`` to get the full traceback instead.
    """

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except _INPUT_ERRORS as exc:
            if os.environ.get("DIFFUSION_CIRCUITS_DEBUG"):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper
