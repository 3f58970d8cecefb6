"""Build the two datasets from params: what the data stages call.

Both datasets leave here in the same format (resolution, 3 channels, uint8) with a
``split`` column assigned by source image, so any difference between them is one of
distribution, never of format.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from diffusion_circuits.data import lfw, matching, synthetic
from diffusion_circuits.data.faceset import FaceSet
from diffusion_circuits.data.store import assign_split, to_greyscale
from diffusion_circuits.params import Params

__all__ = ["build_synthetic", "build_natural"]


def _with_split(faces: FaceSet, heldout_fraction: float, seed: int) -> FaceSet:
    attributes = faces.attributes.copy()
    attributes["split"] = assign_split(attributes["source_id"].to_numpy(), heldout_fraction, seed)
    return FaceSet(images=faces.images, attributes=attributes, masks=faces.masks)


def _summary(faces: FaceSet, started: float, **extra: Any) -> dict[str, Any]:
    attributes = faces.attributes
    return {
        "n_images": len(attributes),
        "n_distinct_sources": int(attributes["source_id"].nunique()),
        "n_heldout_sources": int(
            attributes.loc[attributes.split == "heldout", "source_id"].nunique()
        ),
        "resolution": int(faces.images.shape[1]),
        "has_part_masks": faces.masks is not None,
        "mean_pixel": float(faces.images.mean()),
        "seconds": time.perf_counter() - started,
        **extra,
    }


def build_synthetic(params: Params) -> tuple[FaceSet, dict[str, Any]]:
    """Procedural faces, greyscale when ``data.colour`` is grey; summary for the metrics file."""
    started = time.perf_counter()
    faces = synthetic.generate_synthetic_faces(
        params.synthetic.n_images,
        resolution=params.data.resolution,
        seed=params.synthetic.seed,
        greyscale=params.data.colour == "grey",
    )
    faces = _with_split(faces, params.data.heldout_fraction, params.synthetic.seed)
    marginals = synthetic.attribute_marginals(faces.attributes)
    return faces, _summary(faces, started, source="synthetic", marginals=marginals)


def _natural_from_lfw(params: Params) -> tuple[FaceSet, dict[str, Any]]:
    faces = lfw.expand_with_augmentation(
        lfw.load_lfw_faces(),
        params.natural.n_images,
        resolution=params.data.resolution,
        seed=params.natural.seed,
    )
    return faces, {"marginal_gap": None}


def _natural_from_celeba(
    params: Params, synthetic_attributes: pd.DataFrame
) -> tuple[FaceSet, dict[str, Any]]:
    from diffusion_circuits.data import celeba

    root, n = params.natural.celeba_dir, params.natural.n_images
    listed = celeba.read_celeba_attributes(root)
    target = synthetic.attribute_marginals(synthetic_attributes)
    if params.natural.match_marginals:
        # Over-select so that images skipped as bad still leave n after loading.
        pool = min(len(listed), int(np.ceil(n * 1.05)) + 10)
        rows = np.sort(matching.select_matched(listed, target, pool, params.natural.seed))
    else:
        rows = np.arange(min(len(listed), int(np.ceil(n * 1.05)) + 10))
    faces, counts = celeba.load_celeba_images(
        root, listed.iloc[rows], params.data.resolution, on_bad_image=params.natural.on_bad_image
    )
    if len(faces.images) < n:
        raise ValueError(
            f"{root}: only {len(faces.images)} usable CelebA images, natural.n_images={n}"
        )
    keep = slice(0, n)
    attributes = faces.attributes.iloc[keep].reset_index(drop=True)
    attributes["image_id"] = np.arange(n)
    attributes["source_id"] = np.arange(n)
    faces = FaceSet(
        images=faces.images[keep],
        attributes=attributes,
        masks=None if faces.masks is None else faces.masks[keep],
    )
    return faces, {"marginal_gap": matching.marginal_gap(attributes, target), **counts}


def build_natural(
    params: Params, synthetic_attributes: pd.DataFrame
) -> tuple[FaceSet, dict[str, Any]]:
    """Natural faces from CelebA or the LFW stand-in; matched, converted and split."""
    started = time.perf_counter()
    if params.natural.source == "celeba":
        faces, extra = _natural_from_celeba(params, synthetic_attributes)
    else:
        faces, extra = _natural_from_lfw(params)
    if params.data.colour == "grey":
        faces = FaceSet(to_greyscale(faces.images), faces.attributes, faces.masks)
    faces = _with_split(faces, params.data.heldout_fraction, params.natural.seed)
    return faces, _summary(faces, started, source=params.natural.source, **extra)
