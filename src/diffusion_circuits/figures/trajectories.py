"""Figure 9 of the paper: attention of one head along real denoising trajectories."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from diffusion_circuits.figures.data import FigureData
from diffusion_circuits.figures.overview import image_grid
from diffusion_circuits.figures.panels import DATASETS, new_figure, panel_title

__all__ = ["figure9", "key_saliency"]

# Luminance weights (ITU-R BT.601) to show a colour x0 in grey under the attention map.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def key_saliency(pattern: np.ndarray, size: int) -> np.ndarray:
    """Attention received per key position (mean over queries), upsampled to the image.

    Parameters
    ----------
    pattern : np.ndarray
        [queries, keys] attention probabilities of one head; keys form a square grid.
    size : int
        Side of the image, in pixels.

    Returns
    -------
    np.ndarray
        [size, size] float32, nearest-neighbour upsampled (one block per key position).

    Examples
    --------
    >>> key_saliency(np.array([[1.0, 0, 0, 0], [0, 0, 0, 1.0]]), 4)[::2, ::2].tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """
    saliency = pattern.astype(np.float32).mean(axis=0)
    side = math.isqrt(saliency.size)
    tensor = torch.from_numpy(saliency.reshape(1, 1, side, side))
    return F.interpolate(tensor, size=(size, size), mode="nearest")[0, 0].numpy()


def _grey(picture: np.ndarray) -> np.ndarray:
    """[H, W, 3] in [0, 1] -> [H, W] luminance; a grey [H, W] picture passes through."""
    return picture @ _LUMA if picture.ndim == 3 else picture


def _pick_head(data: FigureData) -> tuple[str, int]:
    """The synthetic model's most specialised head (the clearest pattern to look at)."""
    roles = data.study.head_roles
    ranked = roles[roles["dataset"] == "synthetic"].sort_values("specialisation")
    return ranked.iloc[-1]["hook"], int(ranked.iloc[-1]["head"])


def figure9(data: FigureData, head: tuple[str, int] | None = None):
    """Denoising trajectories (x_t) and where one head looks, drawn over the clean image.

    Per dataset, the top row shows the state ``x_t`` entering each recorded step and the
    bottom row the head's key saliency at that step over the trajectory's own final
    sample ``x0``: attention drawn over noise shows nothing a reader can locate.
    """
    timesteps = list(data.tensors[DATASETS[0]]["timesteps"])
    n_cols = len(timesteps)
    fig, ax = new_figure(2 * len(DATASETS) * n_cols, "Figure 9. Attention along denoising",
                         ncols=n_cols, panel_size=(2.6, 2.7))  # fmt: skip
    hook, index = head if head is not None else _pick_head(data)
    for d, dataset in enumerate(DATASETS):
        tensors = data.tensors[dataset]
        states, patterns = tensors["states"], tensors[f"pattern:{hook}"]
        clean = _grey(image_grid(tensors["samples"][:1]))
        size = clean.shape[0]
        for i, t in enumerate(tensors["timesteps"]):
            top, bottom = ax[(2 * d) * n_cols + i], ax[(2 * d + 1) * n_cols + i]
            top.imshow(image_grid(states[i][:1]), cmap="gray")
            panel_title(top, f"{dataset}: x_t, t={int(t)}", fontsize=7)
            top.set_axis_off()
            bottom.imshow(clean, cmap="gray", vmin=0, vmax=1)
            bottom.imshow(key_saliency(patterns[i, 0, index], size), cmap="inferno", alpha=0.55)
            panel_title(bottom, f"{hook} h{index} at t={int(t)}, over x0", fontsize=7)
            bottom.set_axis_off()
    fig.tight_layout()
    return fig
