"""Load everything the report measures from the pipeline's outputs."""

from __future__ import annotations

import json
from pathlib import Path

from diffusers.models.attention_processor import Attention

from diffusion_circuits import layout
from diffusion_circuits.io import read_parquet
from diffusion_circuits.layout import DATASETS
from diffusion_circuits.model.factory import load_network
from diffusion_circuits.params import ModelParams, Params
from diffusion_circuits.report.context import ReportInputs
from diffusion_circuits.stats.loading import load_study_inputs

__all__ = ["distinct_sources", "load_report_inputs", "network_description", "report_header"]


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def distinct_sources(metrics: dict, attributes: Path) -> int | None:
    """``n_distinct_sources`` from a stage's metrics, else distinct ``source`` values.

    Reads ``attributes`` (a dataset's ``attributes.parquet``) only when the metrics lack
    the count; None when neither records it.
    """
    if "n_distinct_sources" in metrics:
        return int(metrics["n_distinct_sources"])
    if attributes.is_file():
        table = read_parquet(attributes)
        if "source" in table.columns:
            return int(table["source"].nunique())
    return None


def load_report_inputs(root: str | Path, params: Params, metrics: str | Path = "metrics") -> ReportInputs:  # fmt: skip
    root, metrics = Path(root), Path(metrics)
    seed = params.train.seeds[0]
    network = load_network(layout.model_dir("synthetic", seed, root))
    attention = [m for m in network.modules() if isinstance(m, Attention)]
    stage = {"synthetic": _json(layout.stage_metrics("generate_synthetic", root=metrics)),
             "natural": _json(layout.stage_metrics("prepare_natural", root=metrics))}  # fmt: skip
    cache = {d: _json(layout.stage_metrics("cache", layout.model_name(d, seed), metrics))
             for d in DATASETS}  # fmt: skip
    inference = read_parquet(layout.stats_dir(root) / "inference.parquet")
    cross = layout.cross_dataset_dir(root)
    return ReportInputs(
        study=load_study_inputs(root, params.train.seeds),
        inference=inference,
        cross_summary=read_parquet(cross / "summary.parquet"),
        cka=read_parquet(cross / "cka.parquet"),
        cka_summary=read_parquet(cross / "cka_summary.parquet"),
        robustness=read_parquet(cross / "robustness.parquet"),
        n_images={d: int(stage[d]["n_images"]) for d in DATASETS},
        n_distinct={
            d: distinct_sources(stage[d], layout.attributes_file(d, root)) for d in DATASETS
        },  # fmt: skip
        n_probe={d: int(cache[d]["n_images"]) for d in DATASETS},
        n_probe_distinct={d: cache[d].get("n_distinct_sources") for d in DATASETS},
        attention_heads=[m.heads for m in attention],
        attention_width=[m.inner_dim for m in attention],
        num_train_timesteps=params.scheduler.num_train_timesteps,
        n_parameters=sum(p.numel() for p in network.parameters()),
        global_threshold=params.analyze.global_threshold,
        seed=params.stats.seed,
        n_resamples=params.stats.n_resamples,
        confidence=params.stats.confidence,
        alpha=params.stats.alpha,
    )


def network_description(model: ModelParams) -> str:
    """The report header's one-phrase architecture of ``model.backbone``."""
    if model.backbone == "dit":
        dit = model.dit
        return (f"DiTTransformer2DModel, {dit.num_layers} blocks, patch {dit.patch_size}, "
                f"{dit.num_attention_heads} heads of {dit.attention_head_dim} channels")  # fmt: skip
    return f"UNet2DModel {list(model.block_out_channels)}, attention head dim {model.attention_head_dim}"  # fmt: skip


def _absent_for_backbone(metrics: Path, model: str) -> dict[str, str]:
    """The header line naming the study's quantities this backbone does not have (the
    analyze stage's ``absent_for_backbone``); no line for a U-Net, which has them all."""
    absent = _json(layout.stage_metrics("analyze", model, metrics)).get("absent_for_backbone")
    if not absent:
        return {}
    reasons = "; ".join(f"{quantity}: {why}" for quantity, why in sorted(absent.items()))
    return {"does not exist for this backbone (no rows, no zeros stand in)": reasons}


def _per_seed(metrics: Path, stage: str, seeds, describe) -> str:
    """``dataset: seed s value; ...`` from ``metrics/<stage>/<dataset>-seed<s>.json``."""
    parts = []
    for dataset in DATASETS:
        values = []
        for seed in seeds:
            path = layout.stage_metrics(stage, layout.model_name(dataset, seed), metrics)
            values.append(f"seed {seed} {describe(_json(path)) if path.is_file() else 'not run'}")
        parts.append(f"{dataset}: " + ", ".join(values))
    return "; ".join(parts)


_OUTPUT = {"epsilon": "the noise (epsilon)", "v_prediction": "v = sqrt(abar) eps - sqrt(1-abar) x0"}


def _margins(evaluate: dict) -> str:
    margin = evaluate.get("margin_over_best_baseline", {})
    # four decimals: the t = 900 margins are a few 1e-4, and "-0.000" would hide the sign
    values = " / ".join(f"{v:+.4f}" for v in margin.values()) or "not recorded"
    intervals = evaluate.get("margin_ci_over_images")
    if not intervals:
        return values
    not_above = [t.removeprefix("t") for t, (low, _) in intervals.items() if not low > 0]
    where = f"not above 0 at t = {', '.join(not_above)}" if not_above else "all above 0"
    return f"{values} (CI over images {where})"


def _sample_quality(samples: dict) -> str:
    fraction = samples.get("fraction_of_ceiling", {})
    if not fraction:
        return "not recorded"
    return f"{fraction['precision']:.2f} / {fraction['recall']:.2f}"


def _attribute_error(samples: dict) -> str:
    if "max_attribute_frequency_error" not in samples:
        return "no attributes"
    floor = samples.get("max_attribute_frequency_error_of_real_draws")
    real = (
        f" (real draws: {floor['mean']:.2f}, 95th percentile {floor['q95']:.2f})" if floor else ""
    )
    return f"{samples['max_attribute_frequency_error']:.2f}{real}"


def _attention_share(analyze: dict) -> str:
    """Largest one-step noise-MSE rise over the probed timesteps with uniform patterns and
    with the branches removed, and the median sample distance of each."""
    share = analyze.get("attention_share")
    if not share:
        return "not measured"
    parts = []
    for method, label in (("uniform", "uniform"), ("branch_zero", "removed")):
        rises = {k.rsplit(".t", 1)[1]: v["mse_rise"] for k, v in share["one_step"].items()
                 if k.startswith(f"attention.{method}.t")}  # fmt: skip
        t, rise = max(rises.items(), key=lambda item: item[1])
        rms = share["samples"].get(f"attention.{method}.median_rms_distance")
        parts.append(f"{label} {100 * rise:+.2f}% (t = {t}), samples {rms:.3f}")
    return ", ".join(parts)


def _seed_swap(metrics: Path) -> str:
    path = layout.stage_metrics("cross_dataset", root=metrics)
    swap = _json(path).get("seed_swap_median_distance", {}) if path.is_file() else {}
    values = [f"{dataset} {swap[f'{dataset}.rms_distance']:.3f}" for dataset in DATASETS
              if f"{dataset}.rms_distance" in swap]  # fmt: skip
    return ", ".join(values) or "needs two seeds"


def _precision(train: dict) -> str:
    ran = train.get("mixed_precision", "not recorded")
    return "fp32" if ran == "no" else ran


def model_quality(params: Params, metrics: str | Path = "metrics") -> dict[str, str]:
    """What the models are worth: held-out margins over the no-learning baselines, sample
    quality against its real-vs-real ceiling, and the precision they were trained in."""
    metrics, seeds = Path(metrics), params.train.seeds
    timesteps = " / ".join(str(t) for t in params.probe.timesteps)
    return {
        f"model R^2 minus the better no-learning baseline (t = {timesteps}; > 0 beats both)":
            _per_seed(metrics, "evaluate", seeds, _margins),
        "sample precision / recall as fractions of the real-vs-real ceiling":
            _per_seed(metrics, "samples", seeds, _sample_quality),
        "max attribute frequency error of the samples (of as many real held-out images)":
            _per_seed(metrics, "samples", seeds, _attribute_error),
        "attention's causal share: largest held-out noise-MSE rise with every pattern uniform "
        "/ every branch removed, and median RMS distance of the samples from common noise":
            _per_seed(metrics, "analyze", seeds, _attention_share),
        "median RMS distance between two training seeds' samples from the same noise":
            _seed_swap(metrics),
        "training precision (as run)":
            _per_seed(metrics, "train", seeds, _precision),
    }  # fmt: skip


# Below these a run tests the code, not the paper (the tiny profile: 8 steps, 6 images).
SMOKE_STEPS, SMOKE_PROBE_IMAGES = 100, 10


def run_scale(params: Params) -> str:
    """The header's first line: a smoke run says so before any number is read."""
    steps, probed, seeds = params.train.steps, params.probe.n_images, len(params.train.seeds)
    if steps < SMOKE_STEPS or probed < SMOKE_PROBE_IMAGES:
        return (f"SMOKE RUN ({steps} training steps, {probed} probed images, {seeds} seed(s) "
                "per dataset): it checks that every stage runs; its numbers are not evidence "
                "about the paper")  # fmt: skip
    return f"study run ({steps} training steps, {probed} probed images, {seeds} seeds per dataset)"


def report_header(params: Params, ctx: ReportInputs, commit: str, versions: str,
                  metrics: str | Path = "metrics") -> dict[str, str]:  # fmt: skip
    metrics = Path(metrics)
    natural = _json(layout.stage_metrics("prepare_natural", root=metrics))
    first = params.train.seeds[0]
    selection = {d: _json(layout.stage_metrics("cache", layout.model_name(d, first), metrics))
                 for d in DATASETS}  # fmt: skip
    source = (
        "LFW stand-in (100 real face crops shipped with scikit-image, augmented; CelebA not "
        "available)"
        if natural["source"] == "lfw"
        else f"CelebA from {params.natural.celeba_dir}"
    )

    def sources(n: int, distinct: int | None) -> str:
        return f"{n} ({distinct} distinct sources)" if distinct is not None else f"{n} (distinct sources not recorded)"  # fmt: skip

    n_seeds = len(params.train.seeds)
    return {
        "run": run_scale(params),
        "natural-face source": source,
        "images per dataset": ", ".join(f"{d} {sources(ctx.n_images[d], ctx.n_distinct[d])}"
                                        for d in DATASETS),
        "probed images": ", ".join(
            f"{d}: {sources(ctx.n_probe[d], ctx.n_probe_distinct[d])}, "
            f"{s.get('image_selection', 'selection not recorded').replace('_', ' ')}"
            for d, s in selection.items()),
        "resolution / colour": f"{params.data.resolution} px, {params.data.colour}",
        "model": f"{network_description(params.model)}, trained to output "
        f"{_OUTPUT[params.scheduler.prediction_type]} (accuracy and every impact are read "
        "on the noise estimate it implies)",
        **_absent_for_backbone(metrics, layout.model_name(DATASETS[0], first)),
        "training": f"{params.train.steps} steps x batch {params.train.batch_size}, seeds "
        f"{list(params.train.seeds)}, mixed precision asked: {params.train.mixed_precision}",
        **model_quality(params, metrics),
        "timesteps probed": ", ".join(str(t) for t in params.probe.timesteps),
        "statistical unit": (
            f"training seed for claims about datasets or model families ({n_seeds} seeds per "
            "dataset); image for claims about one model; each row says its own"
            if n_seeds > 1 else
            "image, for claims about one model; claims about datasets or model families are "
            "not testable with one model per dataset; each row says its own"),
        "packages": versions,
        "git commit": commit,
    }  # fmt: skip
