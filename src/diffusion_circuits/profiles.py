"""Named parameter profiles (``profiles/<name>.yaml``): flat ``section.key: value`` overrides.

``python -m diffusion_circuits.profiles tiny`` prints them as ``-S key=value`` arguments
for ``dvc exp run``; ``--apply`` writes them into ``params.yaml`` instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from diffusion_circuits.io import write_text
from diffusion_circuits.params import Params, ParamsError, format_validation_error

__all__ = ["load_profile", "apply_profile", "set_arguments"]


def load_profile(name: str, folder: str | Path = "profiles") -> dict[str, Any]:
    path = Path(folder) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(folder).glob("*.yaml"))
        raise ParamsError(f"unknown profile '{name}' (known: {', '.join(known)})")
    return yaml.safe_load(path.read_text()) or {}


def apply_profile(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the raw ``params`` mapping with the dotted overrides set; validated."""
    merged = json.loads(json.dumps(params))
    for dotted, value in overrides.items():
        # section.key, or section.subsection.key (model.dit.num_layers), as dvc exp run -S
        *parents, key = dotted.split(".")
        target = merged
        for part in parents:
            target = target.get(part) if isinstance(target, dict) else None
        if not parents or not isinstance(target, dict) or not key:
            raise ParamsError(f"profile key '{dotted}' does not name a params.yaml section.key")
        target[key] = value
    try:
        Params.model_validate(merged)
    except Exception as exc:  # pydantic ValidationError
        raise ParamsError(f"profile: {format_validation_error(exc)}") from None
    return merged


def set_arguments(overrides: dict[str, Any]) -> list[str]:
    """``-S key=value`` pairs; compact JSON values, since the Makefile splits them on spaces.

    >>> set_arguments({"train.seeds": [0, 1], "model.sample_size": 16})
    ['-S', 'train.seeds=[0,1]', '-S', 'model.sample_size=16']
    """
    compact = {key: json.dumps(value, separators=(",", ":")) for key, value in overrides.items()}
    return [arg for key, value in compact.items() for arg in ("-S", f"{key}={value}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile")
    parser.add_argument("--apply", action="store_true", help="write into params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    overrides = load_profile(args.profile)
    raw = yaml.safe_load(Path(args.params).read_text())
    merged = apply_profile(raw, overrides)
    if args.apply:
        write_text(yaml.safe_dump(merged, sort_keys=False), args.params)
    else:
        print(" ".join(set_arguments(overrides)))


if __name__ == "__main__":
    main()
