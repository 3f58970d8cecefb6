"""The in-memory form of a face dataset, shared by every data source.

Every source (procedural synthetic faces, CelebA, the LFW stand-in) returns a
:class:`FaceSet`, so the two datasets of the study differ in distribution, never in
format.
"""

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

    Parameters
    ----------
    images : numpy.ndarray
        uint8 [N, H, W, 3].
    attributes : pandas.DataFrame
        One row per image, in image order. Canonical columns: ``image_id``,
        ``source_id`` (augmented copies share their source's id), ``expression``,
        ``gender``, ``age``, ``facial_hair``, ``glasses``, ``hair_colour``, plus
        ``source`` and, where meaningful, ``original_file``; unknown values are NA.
    masks : numpy.ndarray or None
        uint8 [N, H, W] with values from :data:`PART_LABELS`, or None when the source
        has no part annotation.

    Examples
    --------
    >>> faces = FaceSet(np.zeros((2, 4, 4, 3), np.uint8), pd.DataFrame({"image_id": [0, 1]}))
    >>> faces.images.shape, faces.masks
    ((2, 4, 4, 3), None)
    >>> FaceSet(np.zeros((2, 4, 4), np.uint8), pd.DataFrame({"image_id": [0, 1]}))
    Traceback (most recent call last):
    ...
    ValueError: FaceSet.images must be uint8 [N, H, W, 3], got uint8 (2, 4, 4)
    """

    images: np.ndarray
    attributes: pd.DataFrame
    masks: np.ndarray | None = None

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"FaceSet.images must be uint8 [N, H, W, 3], got "
                f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}"
            )
        if images.shape[-1] != 3:
            raise ValueError(f"FaceSet.images must have 3 channels, got shape {images.shape}")
        if len(self.attributes) != len(images):
            raise ValueError(
                f"FaceSet has {len(self.attributes)} attribute rows for {len(images)} images"
            )
        masks = self.masks
        if masks is not None and (
            not isinstance(masks, np.ndarray)
            or masks.dtype != np.uint8
            or masks.shape != images.shape[:3]
        ):
            raise ValueError(
                f"FaceSet.masks must be None or uint8 {list(images.shape[:3])}, got "
                f"{getattr(masks, 'dtype', type(masks).__name__)} {getattr(masks, 'shape', '')}"
            )
