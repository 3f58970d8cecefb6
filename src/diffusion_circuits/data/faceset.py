"""The in-memory form of a face dataset, shared by every data source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FaceSet", "PART_LABELS"]

# Ground-truth part labels for semantic attention analysis; one label per pixel.
PART_LABELS: dict[str, int] = {
    "background": 0,
    "face": 1,
    "eyes": 2,
    "nose": 3,
    "mouth": 4,
    "hair": 5,
}


@dataclass(frozen=True)
class FaceSet:
    """Images, one attribute row per image (same order) and optional part masks.

    ``images`` is uint8 [N, H, W, 3]; ``masks`` is uint8 [N, H, W] with values from
    :data:`PART_LABELS`, or None when the source has no part annotation.
    """

    images: np.ndarray
    attributes: pd.DataFrame
    masks: np.ndarray | None = None
