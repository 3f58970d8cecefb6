"""Distances between two sets of samples drawn from the same starting noise.

A sample-level intervention impact compares each intervened sample with the intact
sample of the same noise: the pair differs only by the intervention (common random
numbers), so the distance measures the intervention alone.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["rms_distance", "feature_distance"]


def rms_distance(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Root-mean-square pixel difference per image, in the samples' units ([-1, 1] here).

    Examples
    --------
    >>> rms_distance(torch.zeros(2, 1, 2, 2), torch.tensor([1.0, 0.5]).view(2, 1, 1, 1).expand(2, 1, 2, 2)).tolist()
    [1.0, 0.5]
    """
    if a.shape != b.shape:
        raise ValueError(f"samples of shape {tuple(a.shape)} and {tuple(b.shape)} cannot be paired")
    return (a.double() - b.double()).pow(2).flatten(1).mean(1).sqrt().numpy()


def feature_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance per row between two [N, D] feature arrays.

    Examples
    --------
    >>> feature_distance(np.zeros((2, 2)), np.array([[3.0, 4.0], [0.0, 1.0]])).tolist()
    [5.0, 1.0]
    """
    if a.shape != b.shape:
        raise ValueError(f"features of shape {a.shape} and {b.shape} cannot be paired")
    return np.linalg.norm(np.asarray(a, float) - np.asarray(b, float), axis=1)
