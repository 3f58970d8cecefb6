"""Load everything the report measures from the pipeline's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from diffusers import UNet2DModel
from diffusers.models.attention_processor import Attention

from diffusion_circuits.params import Params
from diffusion_circuits.report.measure import ReportInputs
from diffusion_circuits.stats.loading import DATASETS, load_study_inputs

__all__ = ["load_report_inputs", "report_header"]


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def load_report_inputs(root: str | Path, params: Params, tables_dir: str | Path) -> ReportInputs:
    root, tables_dir = Path(root), Path(tables_dir)
    seed = params.train.seeds[0]
    tables = {
        name: pd.read_csv(tables_dir / f"{name}.csv")
        for name in ("table1_circuit_complexity", "table3_layer_ablation", "table4_cross_dataset")
    }
    tables["comparisons"] = pd.read_parquet(root / "stats/comparisons.parquet")
    unet = UNet2DModel.from_pretrained(root / f"models/synthetic-seed{seed}/unet")
    attention = [m for m in unet.modules() if isinstance(m, Attention)]
    metrics = Path("metrics")
    return ReportInputs(
        study=load_study_inputs(root, params.train.seeds),
        tables=tables,
        cross_summary=pd.read_parquet(root / "cross_dataset/summary.parquet"),
        cka=pd.read_parquet(root / "cross_dataset/cka.parquet"),
        robustness=pd.read_parquet(root / "cross_dataset/robustness.parquet"),
        n_images={
            "synthetic": _json(metrics / "generate_synthetic.json")["n_images"],
            "natural": _json(metrics / "prepare_natural.json")["n_images"],
        },
        n_probe={d: _json(metrics / f"cache/{d}-seed{seed}.json")["n_images"] for d in DATASETS},
        attention_heads=[m.heads for m in attention],
        attention_width=[m.inner_dim for m in attention],
        num_train_timesteps=params.scheduler.num_train_timesteps,
        n_parameters=sum(p.numel() for p in unet.parameters()),
        seed=params.stats.seed,
        n_resamples=params.stats.n_resamples,
        confidence=params.stats.confidence,
    )


def report_header(params: Params, commit: str, versions: str) -> dict[str, str]:
    natural = _json(Path("metrics/prepare_natural.json"))
    selection = {d: _json(Path(f"metrics/cache/{d}-seed{params.train.seeds[0]}.json"))
                 for d in DATASETS}  # fmt: skip
    source = (
        "LFW stand-in (100 real face crops shipped with scikit-image, augmented; CelebA not "
        "available)"
        if natural["source"] == "lfw"
        else f"CelebA from {params.natural.celeba_dir}"
    )
    return {
        "natural-face source": source,
        "images per dataset": f"synthetic {params.synthetic.n_images}, natural "
        f"{natural['n_images']} ({natural['n_distinct_sources']} distinct sources)",
        "probed images": ", ".join(
            f"{d}: {s['n_images']} ({s['image_selection'].replace('_', ' ')})"
            for d, s in selection.items()),
        "resolution / colour": f"{params.data.resolution} px, {params.data.colour}",
        "model": f"UNet2DModel {list(params.model.block_out_channels)}, attention head dim "
        f"{params.model.attention_head_dim}",
        "training": f"{params.train.steps} steps x batch {params.train.batch_size}, seeds "
        f"{list(params.train.seeds)}, {params.train.mixed_precision}",
        "timesteps probed": ", ".join(str(t) for t in params.probe.timesteps),
        "statistical unit": "training seed" if len(params.train.seeds) > 1 else
        "image (one model per dataset)",
        "packages": versions,
        "git commit": commit,
    }  # fmt: skip
