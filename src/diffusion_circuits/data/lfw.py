"""The default natural-face source: real LFW crops shipped with scikit-image.

CelebA cannot be downloaded here, so the default stand-in is
``skimage.data.lfw_subset()``: 200 greyscale 25x25 crops, of which the first 100 are
faces. They are resized to the target resolution (LANCZOS) and expanded to ``n`` images:

1. the 100 originals come first, unaugmented (``source_id == image_id``);
2. every further image is an augmented copy of source ``i mod 100`` (round robin):
   horizontal flip with p = 0.5, scale U(0.9, 1.1), rotation U(-8, 8) degrees,
   translation U(-2, 2) px at 32 px (proportional at other sizes), contrast and
   brightness each jittered by U(-10%, 10%); the affine map is applied by Pillow
   (bicubic) to an edge-padded copy so no black borders appear.

The statistical unit stays the source face: copies share ``source_id`` and the split is
made by source. LFW has no attributes and no landmarks, so the attribute columns are NA
and there are no part masks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from diffusion_circuits.data.faceset import FaceSet

__all__ = ["N_LFW_FACES", "load_lfw_faces", "expand_with_augmentation"]

N_LFW_FACES = 100
# Unknown attributes, typed so that NA survives a parquet round trip.
_CANONICAL = {
    "expression": "string",
    "gender": "string",
    "age": "string",
    "facial_hair": "boolean",
    "glasses": "boolean",
    "hair_colour": "string",
}


def load_lfw_faces() -> np.ndarray:
    """The 100 LFW faces of scikit-image as uint8 [100, 25, 25]."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:N_LFW_FACES]
    return np.rint(np.clip(faces, 0.0, 1.0) * 255).astype(np.uint8)


def _augment(face: Image.Image, rng: np.random.Generator, resolution: int) -> np.ndarray:
    size = resolution
    pad = size // 4
    padded = np.pad(np.asarray(face, dtype=np.uint8), pad, mode="edge")
    image = Image.fromarray(padded)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = rng.uniform(0.9, 1.1)
    angle = rng.uniform(-8.0, 8.0)
    shift = rng.uniform(-2.0, 2.0, size=2) * size / 32
    centre = (padded.shape[1] / 2 + shift[0], padded.shape[0] / 2 + shift[1])
    image = image.rotate(
        angle, resample=Image.Resampling.BICUBIC, center=centre, translate=tuple(shift)
    )
    width = padded.shape[0]
    side = width / scale
    box = ((width - side) / 2,) * 2 + ((width + side) / 2,) * 2
    inner = (pad / width) * side
    crop = (box[0] + inner, box[1] + inner, box[2] - inner, box[3] - inner)
    image = image.resize((size, size), Image.Resampling.BICUBIC, box=crop)
    values = np.asarray(image, dtype=np.float64)
    contrast, brightness = rng.uniform(0.9, 1.1), rng.uniform(-0.1, 0.1) * 255
    values = (values - values.mean()) * contrast + values.mean() + brightness
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def expand_with_augmentation(faces: np.ndarray, n: int, resolution: int, seed: int) -> FaceSet:
    """Resize the faces to ``resolution`` and expand them to ``n`` images (see module doc)."""
    if faces.ndim != 3 or faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8 [N, H, W], got {faces.dtype} {faces.shape}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(face) for face in faces]
    originals = [
        np.asarray(face.resize((resolution, resolution), Image.Resampling.LANCZOS))
        for face in sources
    ]
    source_id = np.arange(n) % len(faces)
    grey = np.empty((n, resolution, resolution), np.uint8)
    for i, source in enumerate(source_id):
        if i < len(faces):
            grey[i] = originals[source]
        else:
            grey[i] = _augment(Image.fromarray(originals[source]), rng, resolution)
    attributes = pd.DataFrame(
        {
            "image_id": np.arange(n),
            "source_id": source_id,
            "source": "lfw",
            "augmented": np.arange(n) >= len(faces),
        }
    )
    for column, dtype in _CANONICAL.items():
        attributes[column] = pd.Series([pd.NA] * n, dtype=dtype)
    images = np.repeat(grey[..., None], 3, axis=-1)
    return FaceSet(images=images, attributes=attributes, masks=None)
