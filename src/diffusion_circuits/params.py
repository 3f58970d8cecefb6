"""Validated access to ``params.yaml``.

Every stage calls :func:`load_params` before doing any work, so an unknown key, a wrong
type or an out-of-range value stops the stage with one line naming the key, the value
and what is allowed, and nothing is written. The schema mirrors ``params.yaml`` section
by section; the ``model`` section is passed unchanged to ``diffusers.UNet2DModel`` so
that ``model.config`` records it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = ["Params", "ParamsError", "load_params", "format_validation_error"]

DATASETS = ("synthetic", "natural")


class ParamsError(ValueError):
    """Invalid ``params.yaml``; the message is one line naming the key and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    resolution: int = Field(32, ge=16, le=128, multiple_of=8)
    colour: Literal["grey", "rgb"] = "grey"
    heldout_fraction: float = Field(0.2, gt=0.0, lt=1.0)


class SyntheticParams(_Section):
    n_images: int = Field(2000, ge=8)
    seed: int = Field(0, ge=0)


class NaturalParams(_Section):
    source: Literal["lfw", "celeba"] = "lfw"
    celeba_dir: str | None = None
    n_images: int = Field(2000, ge=8)
    seed: int = Field(0, ge=0)
    on_bad_image: Literal["error", "skip"] = "error"
    match_marginals: bool = True

    @model_validator(mode="after")
    def _celeba_needs_dir(self) -> NaturalParams:
        if self.source == "celeba" and not self.celeba_dir:
            raise ValueError("natural.source is 'celeba' but natural.celeba_dir is not set")
        return self


class ModelParams(_Section):
    """Keyword arguments for ``diffusers.UNet2DModel`` (the paper's architecture by default)."""

    sample_size: int = Field(32, ge=8)
    in_channels: int = Field(3, ge=1)
    out_channels: int = Field(3, ge=1)
    layers_per_block: int = Field(1, ge=1)
    block_out_channels: tuple[int, ...] = (32, 64, 256)
    down_block_types: tuple[str, ...] = ("DownBlock2D", "DownBlock2D", "DownBlock2D")
    up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "UpBlock2D", "UpBlock2D")
    attention_head_dim: int = Field(32, ge=1)
    add_attention: bool = True
    norm_num_groups: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> ModelParams:
        n = len(self.block_out_channels)
        if len(self.down_block_types) != n or len(self.up_block_types) != n:
            raise ValueError(
                f"model.block_out_channels has {n} entries but down_block_types has "
                f"{len(self.down_block_types)} and up_block_types {len(self.up_block_types)}"
            )
        for width in self.block_out_channels:
            if width % self.norm_num_groups:
                raise ValueError(
                    f"model.block_out_channels entry {width} is not divisible by "
                    f"model.norm_num_groups={self.norm_num_groups}"
                )
        return self


class SchedulerParams(_Section):
    beta_schedule: Literal["squaredcos_cap_v2", "linear", "scaled_linear"] = "squaredcos_cap_v2"
    num_train_timesteps: int = Field(1000, ge=2)
    prediction_type: Literal["epsilon"] = "epsilon"


class TrainParams(_Section):
    steps: int = Field(400, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    warmup_steps: int = Field(50, ge=0)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    seeds: tuple[int, ...] = Field((0,), min_length=1)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    mixed_precision: Literal["no", "bf16"] = "bf16"
    num_threads: int = Field(2, ge=1)
    channels_last: bool = False
    compile: bool = False
    checkpoint_every: int = Field(250, ge=1)
    eval_images: int = Field(100, ge=1)


class ProbeParams(_Section):
    timesteps: tuple[int, ...] = Field((100, 300, 600, 900), min_length=1)
    n_images: int = Field(100, ge=2)
    batch_size: int = Field(50, ge=1)
    n_figure_images: int = Field(4, ge=1)
    seed: int = Field(0, ge=0)


class AnalyzeParams(_Section):
    ife_bins: int = Field(16, ge=2)
    global_threshold: float = Field(0.05, ge=0.0, le=1.0)
    scaling_factors: tuple[float, ...] = (0.0, 0.5, 2.0)
    logit_noise: float = Field(1.0, gt=0.0)
    temperature: float = Field(2.0, gt=0.0)
    perturbation_scope: Literal["layer", "head"] = "layer"
    top_k: int = Field(5, ge=1)
    n_reference: int = Field(32, ge=2)
    mixed_precision: Literal["no", "bf16"] = "bf16"


class StatsParams(_Section):
    n_resamples: int = Field(2000, ge=100)
    seed: int = Field(0, ge=0)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)


class Params(_Section):
    data: DataParams = DataParams()
    synthetic: SyntheticParams = SyntheticParams()
    natural: NaturalParams = NaturalParams()
    model: ModelParams = ModelParams()
    scheduler: SchedulerParams = SchedulerParams()
    train: TrainParams = TrainParams()
    probe: ProbeParams = ProbeParams()
    analyze: AnalyzeParams = AnalyzeParams()
    stats: StatsParams = StatsParams()

    @model_validator(mode="after")
    def _cross_section(self) -> Params:
        if self.model.sample_size != self.data.resolution:
            raise ValueError(
                f"model.sample_size={self.model.sample_size} must equal "
                f"data.resolution={self.data.resolution}"
            )
        if self.natural.source == "lfw" and self.data.colour != "grey":
            raise ValueError(
                "data.colour='rgb' but natural.source='lfw' is greyscale; use data.colour: grey"
            )
        t_max = self.scheduler.num_train_timesteps
        bad = [t for t in self.probe.timesteps if not 0 <= t < t_max]
        if bad:
            raise ValueError(f"probe.timesteps {bad} outside [0, {t_max})")
        return self


def _allowed_keys(parent: tuple) -> list[str]:
    schema: type[BaseModel] = Params
    for name in parent:
        annotation = schema.model_fields[str(name)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        schema = annotation
    return list(schema.model_fields)


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, joined: ``key = value: what is allowed``."""
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(item["loc"][:-1]))
            parts.append(f"unknown key '{key}' (allowed: {allowed})")
        elif key:
            parts.append(f"{key} = {item['input']!r}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raise :class:`ParamsError` with one line on failure."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{path}: {format_validation_error(exc)}") from None
