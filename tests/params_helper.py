"""params.yaml with a few values changed: how tests build Params.

params.yaml is the only source of defaults (the schema has none), so a test that needs a
few values changed starts from it rather than from a partial mapping.
"""

import copy
from pathlib import Path
from typing import Any

import yaml

from diffusion_circuits.params import Params

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"
_DEFAULT_RAW: dict[str, Any] = yaml.safe_load(PARAMS_YAML.read_text())


def raw_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """params.yaml as a mapping, each section of ``overrides`` (``{section: {key: value}}``)
    merged into its own."""
    raw = copy.deepcopy(_DEFAULT_RAW)
    for section, values in copy.deepcopy(overrides or {}).items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section].update(values)
        else:
            raw[section] = values
    return raw


def params_with(overrides: dict[str, Any] | None = None) -> Params:
    """Validated :func:`raw_params`."""
    return Params.model_validate(raw_params(overrides))
