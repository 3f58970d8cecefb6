"""Validated access to ``params.yaml``.

Every stage calls :func:`load_params` before doing any work, so an unknown key, a wrong
type or an out-of-range value stops the stage with one line naming the key, the value
and what is allowed, and nothing is written. The schema mirrors ``params.yaml`` section
by section; ``model.backbone`` picks the network: its U-Net keys are passed unchanged to
``diffusers.UNet2DModel`` and its ``model.dit`` keys to ``diffusers.DiTTransformer2DModel``,
so that ``model.config`` records them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["Params", "ParamsError", "load_params", "format_validation_error"]

# params.yaml is the only place a value lives: no field below has a default, so deleting a
# key from params.yaml fails validation ("params.yaml: train.steps is required") instead of
# silently running with a value written here long ago.

COLOUR_CHANNELS = {"grey": 1, "rgb": 3}


class ParamsError(ValueError):
    """Invalid ``params.yaml``; the message is one line naming the key and what is allowed."""


def _yaml_no(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads an unquoted ``no`` as False, and ``dvc exp run -S`` rewrites
    params.yaml with ``no`` unquoted: both spellings mean the option ``"no"``."""
    return "no" if value is False else value


MixedPrecision = Annotated[Literal["no", "bf16"], BeforeValidator(_yaml_no)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    resolution: int = Field(ge=16, le=128, multiple_of=8)
    colour: Literal["grey", "rgb"]
    heldout_fraction: float = Field(gt=0.0, lt=1.0)


class SyntheticParams(_Section):
    n_images: int = Field(ge=8)
    seed: int = Field(ge=0)


class NaturalParams(_Section):
    source: Literal["lfw", "celeba"]
    celeba_dir: str | None
    n_images: int = Field(ge=8)
    seed: int = Field(ge=0)
    on_bad_image: Literal["error", "skip"]
    match_marginals: bool

    @model_validator(mode="after")
    def _celeba_needs_dir(self) -> NaturalParams:
        if self.source == "celeba" and not self.celeba_dir:
            raise ValueError("natural.source is 'celeba' but natural.celeba_dir is not set")
        return self


class DiTParams(_Section):
    """The ``model.dit`` keys: a ``diffusers.DiTTransformer2DModel``'s depth, patch and heads.

    Channels and sample size are the U-Net's (``model.in_channels``, ``model.sample_size``),
    so both backbones see the same data.
    """

    num_layers: int = Field(ge=1)
    patch_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    attention_head_dim: int = Field(ge=1)


class ModelParams(_Section):
    """The network: ``backbone`` picks it; the other top-level keys are the keyword
    arguments of ``diffusers.UNet2DModel`` (``unet_kwargs``), ``dit`` those of the
    transformer (``dit_kwargs``)."""

    backbone: Literal["unet", "dit"]
    dit: DiTParams
    sample_size: int = Field(ge=8)
    # Filled from data.colour when absent (grey: 1, rgb: 3): see Params._channels_from_colour.
    in_channels: int = Field(ge=1)
    out_channels: int = Field(ge=1)
    layers_per_block: int = Field(ge=1)
    block_out_channels: tuple[int, ...]
    down_block_types: tuple[str, ...]
    up_block_types: tuple[str, ...]
    attention_head_dim: int = Field(ge=1)
    add_attention: bool
    norm_num_groups: int = Field(ge=1)
    dropout: float = Field(ge=0.0, lt=1.0)

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
        for width in sorted(set(self.attention_widths())):
            if width % self.attention_head_dim:
                # diffusers builds width // head_dim heads without complaint, silently
                # changing the architecture (256 / 48 -> 5 heads of 240 channels).
                raise ValueError(
                    f"model.attention_head_dim={self.attention_head_dim} does not divide the "
                    f"attention width: {width} channels / {self.attention_head_dim} is not an "
                    f"integer number of heads (it would give {width // self.attention_head_dim})"
                )
        if self.sample_size % self.dit.patch_size:
            raise ValueError(
                f"model.dit.patch_size={self.dit.patch_size} does not divide "
                f"model.sample_size={self.sample_size} into whole patches"
            )
        return self

    def unet_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.UNet2DModel``: every key but the backbone choice
        and the transformer's section."""
        return self.model_dump(exclude={"backbone", "dit"})

    def dit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.DiTTransformer2DModel``: one class (unconditional
        generation through the class-conditional model: every label is 0)."""
        return {
            **self.dit.model_dump(),
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "sample_size": self.sample_size,
            "num_embeds_ada_norm": 1,
        }

    def network_kwargs(self) -> dict[str, Any]:
        """The chosen backbone's keyword arguments (what its ``config`` must record)."""
        return self.unet_kwargs() if self.backbone == "unet" else self.dit_kwargs()

    def attention_widths(self) -> list[int]:
        """Channel width of each block with self-attention, as ``UNet2DModel`` builds it.

        One entry per block (a block may hold several attention layers, all at its
        width): down block ``i`` works at ``block_out_channels[i]``, up block ``i`` at the
        reversed list's entry ``i`` and the mid block at the last width.
        """
        widths = [
            width
            for kind, width in zip(self.down_block_types, self.block_out_channels, strict=True)
            if "Attn" in kind
        ]
        widths += [
            width
            for kind, width in zip(
                self.up_block_types, reversed(self.block_out_channels), strict=True
            )
            if "Attn" in kind
        ]
        if self.add_attention:
            widths.append(self.block_out_channels[-1])
        return widths


class SchedulerParams(_Section):
    beta_schedule: Literal["squaredcos_cap_v2", "linear", "scaled_linear"]
    num_train_timesteps: int = Field(ge=2)
    # v_prediction: the network outputs v = sqrt(abar) eps - sqrt(1-abar) x0; every metric
    # is still computed on the noise estimate it implies (model/noise.py).
    prediction_type: Literal["epsilon", "v_prediction"]


class TrainParams(_Section):
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0.0)
    warmup_steps: int = Field(ge=0)
    # Cosine decay to this fraction of the peak rate, not to 0: the loss is still falling
    # at the end of a CPU-budget run, so a rate of 0 would waste the last steps.
    final_lr_fraction: float = Field(ge=0.0, le=1.0)
    # Min-SNR-gamma loss weighting (Hang et al. 2023); 0 turns it off (plain epsilon MSE).
    snr_gamma: float = Field(ge=0.0)
    ema_decay: float = Field(ge=0.0, lt=1.0)
    seeds: tuple[int, ...] = Field(min_length=1)
    mixed_precision: MixedPrecision
    channels_last: bool
    compile: bool
    checkpoint_every: int = Field(ge=1)


class RuntimeParams(_Section):
    """Where and how networks run; read by every stage that runs one, and by nothing else."""

    device: Literal["auto", "cpu", "cuda"]
    num_threads: int = Field(ge=1)

    @field_validator("device")
    @classmethod
    def _device_exists(cls, device: str) -> str:
        # Checked at load, so a stage fails before any work rather than after loading data;
        # torch is imported only for "cuda", keeping params loading light everywhere else.
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError(
                    "no CUDA device is visible to torch on this machine "
                    "(use cpu, or auto: a GPU when there is one)"
                )
        return device


class EvaluateParams(_Section):
    n_images: int = Field(ge=2)  # held-out distinct sources for accuracy(t), at most


class SamplesParams(_Section):
    """Sample quality: DDIM samples of each model against held-out real images."""

    n_samples: int = Field(ge=4)
    ddim_steps: int = Field(ge=2)
    seed: int = Field(ge=0)
    k: int = Field(ge=1)  # nearest neighbours of the precision/recall/density/coverage radii
    grid_size: int = Field(ge=2)  # the PNG grid is grid_size x grid_size samples
    feature_steps: int = Field(ge=1)  # training steps of the feature network
    feature_batch_size: int = Field(ge=2)


class ProbeParams(_Section):
    timesteps: tuple[int, ...] = Field(min_length=1)
    n_images: int = Field(ge=2)
    batch_size: int = Field(ge=1)
    n_figure_images: int = Field(ge=1)
    seed: int = Field(ge=0)


class AnalyzeParams(_Section):
    ife_bins: int = Field(ge=2)
    global_threshold: float = Field(ge=0.0, le=1.0)
    scaling_factors: tuple[float, ...]
    logit_noise: float = Field(gt=0.0)
    temperature: float = Field(gt=0.0)
    perturbation_scope: Literal["layer", "head"]
    top_k: int = Field(ge=1)
    n_reference: int = Field(ge=2)
    # Precision of the intervention runs (clean run too). fp32 by default: in bf16 a third
    # of the head ablation impacts changed by more than 50% (issue 11).
    mixed_precision: MixedPrecision
    role_alpha: float = Field(gt=0.0, lt=1.0)  # level of the head-role permutation test
    null_permutations: int = Field(ge=19)  # image permutations for the head-role null
    cka_bootstrap: int = Field(ge=100)  # image resamples of each CKA CI
    baseline_images: int = Field(ge=2)  # images whose components are also zero/resample ablated
    # DDIM samples (and steps) of the attention-share runs on generated samples, and of the
    # sample-level impact of every other intervention (docs/METRICS.md; chosen for the budget)
    share_samples: int = Field(ge=2)
    share_ddim_steps: int = Field(ge=1)
    impact_samples: int = Field(ge=2)
    impact_ddim_steps: int = Field(ge=1)


class StatsParams(_Section):
    n_resamples: int = Field(ge=100)
    seed: int = Field(ge=0)
    confidence: float = Field(gt=0.5, lt=1.0)
    alpha: float = Field(gt=0.0, lt=1.0)


class Params(_Section):
    data: DataParams
    synthetic: SyntheticParams
    natural: NaturalParams
    model: ModelParams
    scheduler: SchedulerParams
    train: TrainParams
    runtime: RuntimeParams
    evaluate: EvaluateParams
    samples: SamplesParams
    probe: ProbeParams
    analyze: AnalyzeParams
    stats: StatsParams

    @model_validator(mode="before")
    @classmethod
    def _channels_from_colour(cls, raw: Any) -> Any:
        """Grey data trains 1-channel models, RGB 3: the channel count follows data.colour.

        Three copies of one grey channel with independent noise would make the
        colour-difference part of the noise (2/3 of its variance) readable from x_t.
        """
        if not isinstance(raw, dict):
            return raw
        data, model = raw.get("data") or {}, raw.get("model") or {}
        if not isinstance(data, dict) or not isinstance(model, dict):
            return raw
        channels = COLOUR_CHANNELS.get(data.get("colour"))
        if channels is None:
            return raw  # data.colour missing or invalid: its own validation says so
        model = {"in_channels": channels, "out_channels": channels, **model}
        return {**raw, "model": model}

    @model_validator(mode="after")
    def _cross_section(self) -> Params:
        channels = COLOUR_CHANNELS[self.data.colour]
        if (self.model.in_channels, self.model.out_channels) != (channels, channels):
            raise ValueError(
                f"model.in_channels={self.model.in_channels} and model.out_channels="
                f"{self.model.out_channels} must both be {channels} for data.colour="
                f"'{self.data.colour}' (leave them out: they follow data.colour)"
            )
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
    """One line per problem, joined: ``key = value: what is allowed``.

    A section-level check (e.g. ``model``) already names its keys in the message, so the
    whole section's value is left out rather than dumped into the line.
    """
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            parts.append(f"{key} is required")
        elif item["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(item["loc"][:-1]))
            parts.append(f"unknown key '{key}' (allowed: {allowed})")
        elif key and not message.startswith(f"{key}."):
            parts.append(f"{key} = {item['input']!r}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """``file:line:column: not valid YAML: problem`` (1-based, as editors count)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{where}: not valid YAML: {detail}"


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raise :class:`ParamsError` with one line on failure."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw: Any = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(_yaml_error(path, exc)) from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{path}: {format_validation_error(exc)}") from None
