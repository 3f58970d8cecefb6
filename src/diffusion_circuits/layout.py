"""The study's layout: which datasets and layer groups there are, and where every output lives.

This is the one place the study's names and paths are written. Stages and loaders build
every path with these functions; ``dvc.yaml`` spells the same paths out for DVC, and
``tests/test_layout.py`` checks the two agree (:func:`stage_outputs` against each stage's
``outs``/``metrics``/``plots``, :func:`stage_inputs` against its ``deps``).

Only the standard library is imported, so a stage's ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Shared with the probe library, which cannot import this study module; also stdlib-only.
from diffusion_circuits.vocabulary import ALL_LAYER_GROUPS, DATASETS, LAYER_GROUPS

__all__ = [
    "DATASETS",
    "LAYER_GROUPS",
    "ALL_LAYER_GROUPS",
    "DATA",
    "METRICS",
    "TIMINGS",
    "PLOTS",
    "FIGURES_DIR",
    "CURVES_DIR",
    "TABLES_DIR",
    "REPORT_MARKDOWN",
    "REPORT_HTML",
    "CLAIMS_CSV",
    "model_name",
    "dataset_dir",
    "attributes_file",
    "model_dir",
    "resume_dir",
    "eval_dir",
    "features_dir",
    "samples_dir",
    "cache_dir",
    "saliency_key",
    "split_saliency_key",
    "analysis_dir",
    "cross_dataset_dir",
    "stats_dir",
    "stage_metrics",
    "stage_timings",
    "train_plots_dir",
    "sample_grid",
    "stage_outputs",
    "stage_inputs",
]

DATA = Path("data")
METRICS = Path("metrics")
# Wall times: side files beside the metrics, not DVC outputs (see dvc.yaml's header).
TIMINGS = Path("timings")
PLOTS = Path("plots")
FIGURES_DIR = PLOTS / "figures"
CURVES_DIR = PLOTS / "curves"
TABLES_DIR = Path("reports/tables")
REPORT_MARKDOWN = Path("reports/replication.md")
REPORT_HTML = Path("reports/replication.html")
CLAIMS_CSV = Path("reports/replication_claims.csv")
SUMMARY_METRICS = METRICS / "summary.json"  # the few headline numbers, for dvc exp show


def model_name(dataset: str, seed: int) -> str:
    """``<dataset>-seed<seed>``: the folder and file stem of one trained model's outputs."""
    return f"{dataset}-seed{seed}"


def dataset_dir(dataset: str, root: str | Path = DATA) -> Path:
    return Path(root) / dataset


def attributes_file(dataset: str, root: str | Path = DATA) -> Path:
    return dataset_dir(dataset, root) / "attributes.parquet"


def _per_model(kind: str, dataset: str, seed: int, root: str | Path) -> Path:
    return Path(root) / kind / model_name(dataset, seed)


def model_dir(dataset: str, seed: int, root: str | Path = DATA) -> Path:
    """The EMA checkpoint (``unet/`` or ``transformer/``, ``scheduler/``) of one model."""
    return _per_model("models", dataset, seed, root)


def resume_dir(dataset: str, seed: int, root: str | Path = DATA) -> Path:
    """Training's resume checkpoint: not a DVC output, so an interrupted run can go on."""
    return _per_model("resume", dataset, seed, root)


def eval_dir(dataset: str, seed: int, root: str | Path = DATA) -> Path:
    return _per_model("eval", dataset, seed, root)


def samples_dir(dataset: str, seed: int, root: str | Path = DATA) -> Path:
    return _per_model("samples", dataset, seed, root)


def cache_dir(dataset: str, seed: int, root: str | Path = DATA) -> Path:
    return _per_model("cache", dataset, seed, root)


def saliency_key(hook: str, timestep: int) -> str:
    """``"<hook>@t<t>"``: the key of one attention point's key saliency at one timestep in
    the cache's saliency file (written by the cache stage, read by the role analysis)."""
    return f"{hook}@t{timestep}"


def split_saliency_key(key: str) -> tuple[str, int]:
    """``(hook, timestep)`` of a :func:`saliency_key`."""
    hook, _, timestep = key.rpartition("@t")
    return hook, int(timestep)


def analysis_dir(dataset: str, seed: int, root: str | Path = DATA) -> Path:
    return _per_model("analysis", dataset, seed, root)


def features_dir(dataset: str, root: str | Path = DATA) -> Path:
    """The sample-quality feature network of one dataset (shared by its models)."""
    return Path(root) / "features" / dataset


def cross_dataset_dir(root: str | Path = DATA) -> Path:
    return Path(root) / "cross_dataset"


def stats_dir(root: str | Path = DATA) -> Path:
    return Path(root) / "stats"


def _stage_json(folder: Path, stage: str, name: str | None) -> Path:
    return folder / stage / f"{name}.json" if name else folder / f"{stage}.json"


def stage_metrics(stage: str, name: str | None = None, root: str | Path = METRICS) -> Path:
    """``metrics/<stage>.json``, or ``metrics/<stage>/<name>.json`` for a per-model or
    per-dataset stage (``name``: :func:`model_name` or the dataset)."""
    return _stage_json(Path(root), stage, name)


def stage_timings(stage: str, name: str | None = None, root: str | Path = TIMINGS) -> Path:
    """Where a stage's wall times go, laid out as :func:`stage_metrics`."""
    return _stage_json(Path(root), stage, name)


def train_plots_dir(dataset: str, seed: int) -> Path:
    """dvclive's folder of one training run (its curves lie under ``plots/metrics``)."""
    return PLOTS / "train" / model_name(dataset, seed)


def sample_grid(dataset: str, seed: int) -> Path:
    return PLOTS / "samples" / f"{model_name(dataset, seed)}.png"


def _every_model(seeds: Iterable[int]) -> list[tuple[str, int]]:
    return [(dataset, seed) for dataset in DATASETS for seed in seeds]


def stage_outputs(stage: str, dataset: str = "", seed: int = 0) -> list[Path]:
    """Every path ``stage`` declares to DVC (outs, metrics and plots), for one matrix item.

    ``dataset`` and ``seed`` name the item of a per-model or per-dataset stage; others
    ignore them.
    """
    name = model_name(dataset, seed)
    outputs = {
        "generate_synthetic": [dataset_dir("synthetic"), stage_metrics("generate_synthetic")],
        "prepare_natural": [dataset_dir("natural"), stage_metrics("prepare_natural")],
        "train": [
            model_dir(dataset, seed),
            stage_metrics("train", name),
            train_plots_dir(dataset, seed) / "plots/metrics",
        ],
        "evaluate": [eval_dir(dataset, seed), stage_metrics("evaluate", name)],
        "feature_net": [features_dir(dataset), stage_metrics("feature_net", dataset)],
        "samples": [
            samples_dir(dataset, seed),
            sample_grid(dataset, seed),
            stage_metrics("samples", name),
        ],
        "cache_activations": [cache_dir(dataset, seed), stage_metrics("cache", name)],
        "analyze": [analysis_dir(dataset, seed), stage_metrics("analyze", name)],
        "cross_dataset": [cross_dataset_dir(), stage_metrics("cross_dataset")],
        "stats": [stats_dir(), TABLES_DIR, stage_metrics("stats")],
        "figures": [FIGURES_DIR, CURVES_DIR],
        "report": [
            REPORT_MARKDOWN,
            REPORT_HTML,
            CLAIMS_CSV,
            stage_metrics("report"),
            SUMMARY_METRICS,
        ],
    }
    return outputs[stage]


def stage_inputs(stage: str, dataset: str = "", seed: int = 0, seeds=(0,)) -> list[Path]:
    """Every pipeline output ``stage`` reads, for one matrix item (``seeds``: train.seeds).

    Each must be covered by one of the stage's ``deps`` in ``dvc.yaml``.
    """
    every = _every_model(seeds)
    per_model_stats_inputs = [
        *(eval_dir(d, s) for d, s in every),
        *(cache_dir(d, s) for d, s in every),
        *(analysis_dir(d, s) for d, s in every),
        cross_dataset_dir(),
    ]
    inputs = {
        "generate_synthetic": [],
        "prepare_natural": [attributes_file("synthetic")],
        "train": [dataset_dir(dataset)],
        "evaluate": [dataset_dir(dataset), model_dir(dataset, seed)],
        "feature_net": [dataset_dir(dataset)],
        "samples": [
            dataset_dir(dataset),
            model_dir(dataset, seed),
            features_dir(dataset),
            stage_metrics("feature_net", dataset),
        ],
        "cache_activations": [dataset_dir(dataset), model_dir(dataset, seed)],
        "analyze": [
            dataset_dir(dataset),
            model_dir(dataset, seed),
            cache_dir(dataset, seed),
            features_dir(dataset),
        ],
        "cross_dataset": [
            *(dataset_dir(d) for d in DATASETS),
            *(model_dir(d, s) for d, s in every),
            *(analysis_dir(d, s) for d, s in every),
            *(features_dir(d) for d in DATASETS),
        ],
        "stats": per_model_stats_inputs,
        "figures": [*per_model_stats_inputs, stats_dir()],
        "report": [
            *(attributes_file(d) for d in DATASETS),
            # report/inputs.py counts the heads and parameters of the first seed's model
            model_dir("synthetic", seeds[0]),
            *per_model_stats_inputs,
            stats_dir(),
            FIGURES_DIR,
            *(sample_grid(d, s) for d, s in every),
            stage_metrics("generate_synthetic"),
            stage_metrics("prepare_natural"),
            *(
                stage_metrics(stage, model_name(d, s))
                for stage in ("train", "evaluate", "samples", "cache", "analyze")
                for d, s in every
            ),
            *(stage_metrics("feature_net", d) for d in DATASETS),
            stage_metrics("cross_dataset"),
        ],
    }
    return inputs[stage]
