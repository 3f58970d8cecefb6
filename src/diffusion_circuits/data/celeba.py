"""Reader for the CelebA distribution layout (the paper's "preprocess CelebA").

Expected under ``root``::

    img_align_celeba/000001.jpg ...        178 x 218 RGB aligned crops
    list_*.txt                             attribute, partition and landmark listings

The listings are read and checked (:mod:`diffusion_circuits.data.celeba_listing`, whose
reader and :class:`CelebAError` are re-exported here) before any JPEG is decoded, so a
caller can choose 2,000 of 202,599 images cheaply.

Crop. Every image is cut to the square of rows 20-198 (``CROP``): side 178 = the width,
offset 20 = (218 - 178) / 2. In the aligned crops the eyes sit near row 111 and the mouth
near row 152, so the head (hair top near row 30 to chin near row 190) is centred in this
square; centring on the eyes-to-mouth midpoint instead (offset ~38) would cut off the
hair, which the hair-colour attribute and the hair part need. The square is resized to
``resolution`` with LANCZOS.

Part masks (only when the landmark file exists). Drawn in the 178 x 178 crop frame and
resized with NEAREST, so they follow the image through the same crop and resize. With
``d`` the distance between the eyes and ``(x0, y0, x1, y1)`` the bounding box of the
five landmarks, painted in this order (later wins):

* hair: band ``x in [x0 - 0.85 d, x1 + 0.85 d]``, ``y in [y0 - 2.1 d, y0 - 0.6 d]``;
* face: ellipse in the box ``[x0 - 0.75 d, y0 - 1.2 d, x1 + 0.75 d, y1 + 1.0 d]``;
* eyes: discs of radius ``0.25 d`` at the eye landmarks;
* nose: disc of radius ``0.22 d`` at the nose landmark;
* mouth: ellipse from the left corner ``- 0.1 d`` to the right corner ``+ 0.1 d``,
  half-height ``0.2 d`` about the corners' mean ``y``.

These are approximations for semantic attention analysis, not segmentations.

Bad images. A listed image that is missing, fails a full decode (corrupt or truncated;
no global ``ImageFile.LOAD_TRUNCATED_IMAGES`` is set, and a truncated file is only caught
while nobody else sets it), is greyscale, or is not 178 x 218 raises :class:`CelebAError`
naming the file, or with ``on_bad_image="skip"`` is skipped and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from diffusion_circuits.data.celeba_listing import (
    CELEBA_ATTRIBUTES,
    LANDMARKS,
    CelebAError,
    check_partition,
    read_celeba_attributes,
)
from diffusion_circuits.data.faceset import PART_LABELS, FaceSet

__all__ = [
    "CELEBA_ATTRIBUTES",
    "LANDMARKS",
    "CROP",
    "CelebAError",
    "read_celeba_attributes",
    "load_celeba_images",
    "read_celeba",
]

IMAGE_SIZE = (178, 218)  # width, height of every aligned crop
CROP = (0, 20, 178, 198)  # left, top, right, bottom (see the module docstring)
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
_PROBLEMS = ("missing", "corrupt", "greyscale", "size")


def _positive_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


def _check_arguments(resolution=None, partition=None, limit=None, on_bad_image="error") -> None:
    if resolution is not None and not _positive_int(resolution):
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    check_partition(partition)
    if limit is not None and not _positive_int(limit):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if on_bad_image not in ("error", "skip"):
        raise ValueError(f"on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")


def _part_mask(points: np.ndarray, resolution: int) -> np.ndarray:
    """Part labels from the 5 landmarks ([5, 2] in 178 x 218 pixels); see the module doc."""
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = points - np.array(CROP[:2])
    d = float(np.hypot(rex - lex, rey - ley)) or 1.0
    x0, y0 = points[:, 0].min() - CROP[0], points[:, 1].min() - CROP[1]
    x1, y1 = points[:, 0].max() - CROP[0], points[:, 1].max() - CROP[1]
    side = CROP[2] - CROP[0]
    canvas = Image.new("L", (side, side), PART_LABELS["background"])
    draw = ImageDraw.Draw(canvas)

    def disc(x: float, y: float, radius: float, part: str) -> None:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=PART_LABELS[part])

    draw.rectangle(
        (x0 - 0.85 * d, y0 - 2.1 * d, x1 + 0.85 * d, y0 - 0.6 * d), fill=PART_LABELS["hair"]
    )
    draw.ellipse(
        (x0 - 0.75 * d, y0 - 1.2 * d, x1 + 0.75 * d, y1 + 1.0 * d), fill=PART_LABELS["face"]
    )
    disc(lex, ley, 0.25 * d, "eyes")
    disc(rex, rey, 0.25 * d, "eyes")
    disc(nx, ny, 0.22 * d, "nose")
    mouth_y = (lmy + rmy) / 2
    draw.ellipse(
        (min(lmx, rmx) - 0.1 * d, mouth_y - 0.2 * d, max(lmx, rmx) + 0.1 * d, mouth_y + 0.2 * d),
        fill=PART_LABELS["mouth"],
    )
    small = canvas.resize((resolution, resolution), Image.Resampling.NEAREST)
    return np.asarray(small, dtype=np.uint8)


def _load_one(path: Path, resolution: int) -> tuple[np.ndarray | None, str | None, str]:
    """Decode one JPEG fully, crop and resize; (array, None, "") or (None, problem, message)."""
    if not path.is_file():
        return None, "missing", f"{path}: listed in list_attr_celeba.txt but missing"
    try:
        with Image.open(path) as image:
            image.load()  # full decode: a truncated file fails here, not later
            if image.mode in _GREY_MODES:
                return (
                    None,
                    "greyscale",
                    f"{path}: greyscale JPEG (mode {image.mode}), expected RGB",
                )
            if image.size != IMAGE_SIZE:
                width, height = image.size
                return None, "size", f"{path}: image is {width}x{height}, expected 178x218"
            square = image.convert("RGB").crop(CROP)
            small = square.resize((resolution, resolution), Image.Resampling.LANCZOS)
            return np.asarray(small, dtype=np.uint8), None, ""
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = " ".join(str(error).split())
        return None, "corrupt", f"{path}: corrupt or truncated JPEG ({reason})"


def load_celeba_images(
    root: str | Path,
    attributes: pd.DataFrame,
    resolution: int,
    *,
    on_bad_image: Literal["error", "skip"] = "error",
) -> tuple[FaceSet, dict[str, int]]:
    """Decode, crop and resize the images of ``attributes`` (rows of :func:`read_celeba_attributes`).

    Returns
    -------
    FaceSet
        Images uint8 [N, resolution, resolution, 3], the kept attribute rows (``image_id``
        and ``source_id`` renumbered 0..N-1) and landmark part masks, or None without
        landmark columns.
    dict
        ``n_listed`` (rows asked for), ``n_loaded``, ``n_skipped_missing``,
        ``n_skipped_corrupt``, ``n_skipped_greyscale``, ``n_skipped_size``.
    """
    _check_arguments(resolution=resolution, on_bad_image=on_bad_image)
    if "original_file" not in attributes:
        raise ValueError("attributes need an original_file column (use read_celeba_attributes)")
    folder = Path(root) / "img_align_celeba"
    if not folder.is_dir():
        raise CelebAError(f"{folder}: image folder not found (expected the CelebA layout)")
    counts = {"n_listed": len(attributes), "n_loaded": 0}
    counts.update({f"n_skipped_{problem}": 0 for problem in _PROBLEMS})
    images, kept = [], []
    for position, name in enumerate(attributes["original_file"]):
        array, problem, message = _load_one(folder / name, resolution)
        if problem is not None:
            if on_bad_image == "error":
                raise CelebAError(f"{message} (on_bad_image='skip' skips and counts such images)")
            counts[f"n_skipped_{problem}"] += 1
            continue
        images.append(array)
        kept.append(position)
    if not images:
        raise CelebAError(f"{folder}: no usable image among the {len(attributes)} asked for")
    counts["n_loaded"] = len(images)
    table = attributes.iloc[kept].reset_index(drop=True)
    table["image_id"] = table["source_id"] = np.arange(len(table))
    masks = None
    if all(name in table for name in LANDMARKS):
        points = table[list(LANDMARKS)].to_numpy(dtype=float).reshape(len(table), 5, 2)
        masks = np.stack([_part_mask(p, resolution) for p in points])
    return FaceSet(images=np.stack(images), attributes=table, masks=masks), counts


def read_celeba(
    root: str | Path,
    resolution: int,
    *,
    partition: str | None = None,
    limit: int | None = None,
    on_bad_image: Literal["error", "skip"] = "error",
) -> tuple[FaceSet, dict[str, int]]:
    """Read a CelebA folder: the first ``limit`` listed images (of ``partition``), cropped.

    Parameters
    ----------
    root : str or Path
        Folder in the CelebA distribution layout (see the module docstring).
    resolution : int
        Output side in pixels.
    partition : {"train", "val", "test"} or None
        Keep one partition of ``list_eval_partition.txt``; None keeps all.
    limit : int or None
        Decode only the first ``limit`` listed images (after the partition filter).
    on_bad_image : {"error", "skip"}
        What to do with a missing, corrupt, greyscale or wrongly sized image.

    Returns
    -------
    tuple of FaceSet and dict
        As :func:`load_celeba_images`; the attribute columns are those of
        :func:`read_celeba_attributes`.

    Examples
    --------
    >>> len(CELEBA_ATTRIBUTES), CELEBA_ATTRIBUTES[0], CELEBA_ATTRIBUTES[-1]
    (40, '5_o_Clock_Shadow', 'Young')
    >>> read_celeba("/nonexistent/celeba", 32)
    Traceback (most recent call last):
    ...
    diffusion_circuits.data.celeba_listing.CelebAError: /nonexistent/celeba: CelebA folder not found
    """
    _check_arguments(resolution, partition, limit, on_bad_image)
    attributes = read_celeba_attributes(root, partition=partition)
    if limit is not None:
        attributes = attributes.head(limit)
    return load_celeba_images(root, attributes, resolution, on_bad_image=on_bad_image)
