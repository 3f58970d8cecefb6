"""The default natural-face source: real LFW crops shipped with scikit-image.

CelebA cannot be downloaded here, so the default stand-in is
``skimage.data.lfw_subset()``: 200 greyscale 25 x 25 crops, of which the first 100 are
faces (the rest are non-faces). :func:`expand_with_augmentation` resizes them to the
target resolution (LANCZOS) and expands them to ``n`` images:

1. outputs ``0 .. len(faces) - 1`` are the resized originals, unaugmented
   (``source_id == image_id``);
2. output ``i >= len(faces)`` is an augmented copy of source ``i mod len(faces)`` (round
   robin, so every face gets the same number of copies, +-1).

Augmentation recipe for one copy, with ``r`` the resolution; the draws come from one
``numpy.random.default_rng(seed)`` in this order, copy after copy:

* ``flip ~ U(0, 1) < 0.5``: mirror left-right;
* ``scale ~ U(0.9, 1.1)``: zoom about the centre (> 1 enlarges the face);
* ``angle ~ U(-8, 8)`` degrees: rotation about the centre, counter-clockwise as seen;
* ``shift ~ U(-2, 2)^2 * r / 32`` pixels: translation (x, y; 2 px at 32 px);
* ``contrast ~ U(0.9, 1.1)`` and ``brightness ~ U(-0.1, 0.1) * 255``:
  ``v <- (v - mean) * contrast + mean + brightness``, rounded and clipped to 0..255.

The geometry is one Pillow affine resampling (bicubic) of the resized face: output pixel
``p`` (continuous coordinates, centre ``c = (r/2, r/2)``) reads the face at
``c + F R(angle)^-1 (p - c - shift) / scale`` (``F`` the mirror when flipped), i.e. the
face is flipped, rotated, scaled and shifted in that order. One resampling, not one per
step, so copies lose as little sharpness as possible. The face is first padded by
``r // 2 + 2`` replicated edge pixels, so no black border enters the frame: the farthest
point read lies ``(r/2 + 2r/32) * sqrt(2) / 0.9 < 0.89 r`` from the centre, inside the
padded half-width (at least ``r + 1.5``) with room for the bicubic kernel.

Output is greyscale replicated to 3 channels. The statistical unit stays the source
face: copies share ``source_id`` and the split is made by source. LFW has no attribute
labels, so the canonical attribute columns are NA, and no landmarks, so there are no
part masks (``masks`` is None).
"""

from __future__ import annotations

from typing import NamedTuple

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
    """The 100 LFW faces of scikit-image as uint8 [100, 25, 25] (``rint(255 * x)``).

    Examples
    --------
    >>> faces = load_lfw_faces()
    >>> faces.shape, faces.dtype
    ((100, 25, 25), dtype('uint8'))
    """
    from skimage.data import lfw_subset

    faces = lfw_subset()[:N_LFW_FACES]
    return np.rint(np.clip(faces, 0.0, 1.0) * 255).astype(np.uint8)


class _Augmentation(NamedTuple):
    flip: bool
    scale: float
    angle: float
    shift: tuple[float, float]
    contrast: float
    brightness: float


def _draw_augmentation(rng: np.random.Generator, resolution: int) -> _Augmentation:
    """The draws of one copy, in the documented order (the order fixes the outputs)."""
    flip = bool(rng.random() < 0.5)
    scale = float(rng.uniform(0.9, 1.1))
    angle = float(rng.uniform(-8.0, 8.0))
    shift_x, shift_y = rng.uniform(-2.0, 2.0, size=2) * resolution / 32
    contrast = float(rng.uniform(0.9, 1.1))
    brightness = float(rng.uniform(-0.1, 0.1) * 255)
    return _Augmentation(flip, scale, angle, (float(shift_x), float(shift_y)), contrast, brightness)


def _apply_augmentation(face: Image.Image, aug: _Augmentation, resolution: int) -> np.ndarray:
    """One augmented copy of a resized face (mode "L"); the recipe is in the module doc."""
    pad = resolution // 2 + 2
    padded = Image.fromarray(np.pad(np.asarray(face, dtype=np.uint8), pad, mode="edge"))
    radians = np.deg2rad(aug.angle)
    cos, sin = np.cos(radians), np.sin(radians)
    # Output -> input map (what Image.transform wants): undo shift, scale, rotation, flip.
    matrix = np.array([[cos, -sin], [sin, cos]]) / aug.scale
    if aug.flip:
        matrix[0] *= -1
    centre = np.full(2, resolution / 2)
    offset = centre + pad - matrix @ (centre + np.asarray(aug.shift))
    data = (*matrix[0], offset[0], *matrix[1], offset[1])
    moved = padded.transform(
        (resolution, resolution),
        Image.Transform.AFFINE,
        tuple(float(v) for v in data),
        resample=Image.Resampling.BICUBIC,
    )
    values = np.asarray(moved, dtype=np.float64)
    mean = values.mean()
    values = (values - mean) * aug.contrast + mean + aug.brightness
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def expand_with_augmentation(faces: np.ndarray, n: int, resolution: int, seed: int) -> FaceSet:
    """Resize greyscale faces to ``resolution`` and expand them to ``n`` images.

    Parameters
    ----------
    faces : numpy.ndarray
        uint8 [S, H, W] greyscale source faces (e.g. :func:`load_lfw_faces`).
    n : int
        Number of output images; ``n <= S`` returns the first ``n`` originals.
    resolution : int
        Output side in pixels.
    seed : int
        Seed of the one generator behind every augmentation draw.

    Returns
    -------
    FaceSet
        ``images`` uint8 [n, resolution, resolution, 3] with R == G == B; ``masks`` None.
        ``attributes`` columns: ``image_id`` (0..n-1), ``source_id`` (``image_id mod S``),
        ``source`` ("lfw"), ``augmented`` (``image_id >= S``), and the canonical
        ``expression``, ``gender``, ``age``, ``facial_hair``, ``glasses``,
        ``hair_colour``, all NA.

    Examples
    --------
    >>> faces = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5)
    >>> out = expand_with_augmentation(faces, 5, 8, seed=0)
    >>> out.images.shape, out.attributes["source_id"].tolist(), out.masks
    ((5, 8, 8, 3), [0, 1, 0, 1, 0], None)
    """
    if not isinstance(faces, np.ndarray) or faces.dtype != np.uint8 or faces.ndim != 3:
        raise ValueError(
            f"faces must be uint8 [N, H, W], got "
            f"{getattr(faces, 'dtype', type(faces).__name__)} {getattr(faces, 'shape', '')}"
        )
    if len(faces) == 0:
        raise ValueError("faces is empty; need at least one source face")
    for name, value in (("n", n), ("resolution", resolution)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(seed)
    originals = [
        Image.fromarray(face).resize((resolution, resolution), Image.Resampling.LANCZOS)
        for face in faces
    ]
    source_id = np.arange(n) % len(faces)
    grey = np.empty((n, resolution, resolution), np.uint8)
    for i, source in enumerate(source_id):
        if i < len(faces):
            grey[i] = np.asarray(originals[source])
        else:
            augmentation = _draw_augmentation(rng, resolution)
            grey[i] = _apply_augmentation(originals[source], augmentation, resolution)
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
