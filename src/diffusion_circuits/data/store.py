"""On-disk format of a face dataset and its train / held-out split.

A dataset folder holds ``images.npz`` (uint8 [N, H, W, 3]), ``masks.npz`` (uint8
[N, H, W] part labels, or an empty array when the source has none) and
``attributes.parquet`` (one row per image, same order). The split is by ``source_id``:
augmented copies of one face never straddle train and held-out, because the statistical
unit is a distinct source image.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from diffusion_circuits.data.faceset import FaceSet
from diffusion_circuits.io import UserError, read_parquet, write_npz, write_parquet

__all__ = [
    "assign_split",
    "save_faceset",
    "load_faceset",
    "to_greyscale",
    "probe_image_ids",
    "heldout_originals",
    "split_images",
]


def assign_split(source_ids: np.ndarray, heldout_fraction: float, seed: int) -> np.ndarray:
    """Return ``"train"`` / ``"heldout"`` per row, holding out whole sources.

    At least one source is held out and at least one kept for training.
    """
    sources = np.unique(source_ids)
    if len(sources) < 2:
        raise ValueError(f"need at least 2 distinct source images to split, got {len(sources)}")
    n_heldout = min(max(1, round(heldout_fraction * len(sources))), len(sources) - 1)
    rng = np.random.default_rng(seed)
    heldout = set(rng.choice(sources, size=n_heldout, replace=False).tolist())
    return np.where(np.isin(source_ids, list(heldout)), "heldout", "train")


def to_greyscale(images: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance, replicated to 3 channels so the format stays N x H x W x 3."""
    weights = np.array([0.299, 0.587, 0.114])
    grey = np.rint(images[..., :3].astype(np.float64) @ weights).clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def save_faceset(faces: FaceSet, folder: str | Path) -> None:
    folder = Path(folder)
    if faces.images.dtype != np.uint8 or faces.images.ndim != 4 or faces.images.shape[-1] != 3:
        raise ValueError(
            f"images must be uint8 [N, H, W, 3], got {faces.images.dtype} {faces.images.shape}"
        )
    if len(faces.attributes) != len(faces.images):
        raise ValueError(f"{len(faces.attributes)} attribute rows for {len(faces.images)} images")
    masks = faces.masks if faces.masks is not None else np.zeros((0,), np.uint8)
    write_npz(folder / "images.npz", images=faces.images)
    write_npz(folder / "masks.npz", masks=masks)
    write_parquet(faces.attributes, folder / "attributes.parquet")


def load_faceset(folder: str | Path) -> FaceSet:
    folder = Path(folder)
    for name in ("images.npz", "masks.npz", "attributes.parquet"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: missing (run the data stage first)")
    images = _read_npz(folder / "images.npz", "images")
    masks = _read_npz(folder / "masks.npz", "masks")
    attributes = read_parquet(folder / "attributes.parquet")
    return FaceSet(images=images, attributes=attributes, masks=masks if masks.size else None)


def _read_npz(path: Path, key: str) -> np.ndarray:
    """``key`` of an npz archive; a truncated or corrupt file is one line naming it."""
    try:
        with np.load(path) as archive:
            return archive[key]
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError) as exc:
        # An interrupted copy or a full disk leaves a short archive; numpy's own error
        # (zipfile, zlib or pickle internals) does not say which file it was reading.
        raise UserError(
            f"{path}: unreadable npz archive ({type(exc).__name__}: {exc}); it is truncated "
            "or corrupt, delete it and re-run the stage that writes it"
        ) from exc


def split_images(faces: FaceSet, split: str) -> np.ndarray:
    """uint8 images of one split (``"train"`` or ``"heldout"``), augmented copies included."""
    return faces.images[faces.attributes["split"].to_numpy() == split]


def heldout_originals(attributes: pd.DataFrame) -> pd.DataFrame:
    """One row per held-out source (its first image): the unit of evaluation and probing."""
    originals = attributes.drop_duplicates("source_id", keep="first")
    return originals[originals["split"] == "heldout"]


def probe_image_ids(attributes: pd.DataFrame, n_images: int) -> tuple[np.ndarray, str]:
    """Distinct held-out images to probe: one per held-out source, at most ``n_images``.

    Evaluation, probing, sample quality and cross-dataset comparisons all use this one
    membership rule on both datasets, so no trained-on face is ever probed; with fewer
    held-out sources than ``n_images`` all of them are used (the count is recorded).
    Returns the ``image_id`` values and a word for the report.
    """
    heldout = heldout_originals(attributes)
    if heldout.empty:
        raise ValueError("the dataset has no held-out source image (data.heldout_fraction)")
    return heldout["image_id"].to_numpy()[:n_images], "heldout"
