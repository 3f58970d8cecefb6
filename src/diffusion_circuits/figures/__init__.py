"""Figures 1-9 of the paper, drawn from DataFrames and arrays (never from models)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from diffusion_circuits.figures.captions import CAPTIONS
from diffusion_circuits.figures.dynamics import figure5, figure6, figure7, figure8
from diffusion_circuits.figures.overview import figure1, figure2, figure3, figure4
from diffusion_circuits.figures.trajectories import figure9
from diffusion_circuits.io import atomic_path, write_text

__all__ = ["CAPTIONS", "FIGURES", "render_all"]

FIGURES = {
    "figure1_overview": figure1,
    "figure2_statistics": figure2,
    "figure3_dataset_comparison": figure3,
    "figure4_attention_heads": figure4,
    "figure5_feature_hierarchy": figure5,
    "figure6_temporal_dynamics": figure6,
    "figure7_interventions": figure7,
    "figure8_cross_dataset": figure8,
    "figure9_attention_trajectories": figure9,
}


def render_all(data, out_dir: str | Path, dpi: int = 110) -> list[Path]:
    """Draw every figure to ``out_dir/<name>.png`` and its caption to ``<name>.txt``.

    Both are written atomically. Returns the PNG paths, in figure order.
    """
    paths = []
    for name, draw in FIGURES.items():
        fig = draw(data)
        path = Path(out_dir) / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)
        write_text(CAPTIONS[name] + "\n", path.with_suffix(".txt"))
        paths.append(path)
    return paths
