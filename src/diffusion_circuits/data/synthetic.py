"""Procedurally drawn synthetic faces with the paper's six attributes and part masks.

Attributes are sampled per image in causal order (gender and age first, then what
depends on them), with these documented, realistic probabilities:

================  ==============================================================
gender            P(male) = 0.45
age               P(old) = 0.25
facial_hair       P(. | male) = 0.35, P(. | female) = 0.01
hair_colour       old: black 0.15, brown 0.15, blond 0.10, grey 0.60;
                  young: black 0.35, brown 0.40, blond 0.22, grey 0.03
glasses           P(. | old) = 0.35, P(. | young) = 0.10
expression        P(smiling) = 0.5, independent of the rest
================  ==============================================================

The implied population marginals of the nine binary views that CelebA also annotates
are :data:`EXPECTED_MARGINALS` (e.g. P(grey_hair) = 0.25 * 0.60 + 0.75 * 0.03 = 0.1725);
:func:`attribute_marginals` measures them on a table.

Drawing (:func:`draw_face`, in :mod:`diffusion_circuits.data.face_drawing`): Pillow at
4x the target resolution, LANCZOS downsampling; the part-label map is painted with the
same geometry and reduced by a plurality vote per 4 x 4 block. Labels, back to front
(later wins): background (also neck and shoulders), hair (behind the head, fringe,
beard and moustache), face (oval and ears), eyes (whites and pupils), nose, mouth.
Glasses, brows and wrinkles are painted but are no part: the labels under them stay.

Determinism: one ``numpy.random.default_rng(seed)`` draws the attribute table, then
spawns one child generator per image for its layout, so the same arguments give the
same bytes and no global random state is touched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffusion_circuits.data.face_drawing import draw_face
from diffusion_circuits.data.faceset import FaceSet
from diffusion_circuits.data.matching import binary_views
from diffusion_circuits.data.store import to_greyscale

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "P_MALE",
    "P_OLD",
    "P_SMILING",
    "P_FACIAL_HAIR",
    "P_GLASSES",
    "HAIR_COLOURS",
    "HAIR_COLOUR_PROBS",
    "EXPECTED_MARGINALS",
    "sample_attributes",
    "attribute_marginals",
    "draw_face",
    "generate_synthetic_faces",
]

ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "expression",
    "facial_hair",
    "gender",
    "age",
    "glasses",
    "hair_colour",
)
P_MALE = 0.45
P_OLD = 0.25
P_SMILING = 0.5
P_FACIAL_HAIR = {"male": 0.35, "female": 0.01}
P_GLASSES = {"old": 0.35, "young": 0.10}
HAIR_COLOURS = ("black", "brown", "blond", "grey")
HAIR_COLOUR_PROBS = {  # in the order of HAIR_COLOURS
    "old": (0.15, 0.15, 0.10, 0.60),
    "young": (0.35, 0.40, 0.22, 0.03),
}
_P_AGE = {"old": P_OLD, "young": 1 - P_OLD}
EXPECTED_MARGINALS: dict[str, float] = {
    "smiling": P_SMILING,
    "male": P_MALE,
    "young": 1 - P_OLD,
    "eyeglasses": sum(_P_AGE[age] * P_GLASSES[age] for age in _P_AGE),
    "facial_hair": P_MALE * P_FACIAL_HAIR["male"] + (1 - P_MALE) * P_FACIAL_HAIR["female"],
    **{
        f"{colour}_hair": sum(_P_AGE[age] * HAIR_COLOUR_PROBS[age][k] for age in _P_AGE)
        for k, colour in enumerate(HAIR_COLOURS)
    },
}
MIN_RESOLUTION, MAX_RESOLUTION = 16, 128


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")


def sample_attributes(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` attribute rows with the module's correlations.

    Parameters
    ----------
    n : int
        Number of rows, >= 1.
    rng : numpy.random.Generator
        The only source of randomness (draws: gender, age, facial hair, hair colour,
        glasses, expression, each as one vector of ``n`` uniforms).

    Returns
    -------
    pandas.DataFrame
        ``image_id`` and ``source_id`` (both 0..n-1: every synthetic image is its own
        source), ``source`` ("synthetic"), ``expression`` ("neutral" | "smiling"),
        ``facial_hair`` (bool), ``gender`` ("female" | "male"), ``age`` ("young" |
        "old"), ``glasses`` (bool), ``hair_colour`` ("black" | "brown" | "blond" |
        "grey").

    Examples
    --------
    >>> table = sample_attributes(3, np.random.default_rng(0))
    >>> list(table.columns[3:]) == list(ATTRIBUTE_COLUMNS), table["source_id"].tolist()
    (True, [0, 1, 2])
    """
    _check_n(n)
    male = rng.random(n) < P_MALE
    old = rng.random(n) < P_OLD
    facial_hair = rng.random(n) < np.where(male, P_FACIAL_HAIR["male"], P_FACIAL_HAIR["female"])
    u = rng.random(n)
    hair = np.empty(n, dtype=object)
    for age, rows in (("old", old), ("young", ~old)):
        cumulative = np.cumsum(HAIR_COLOUR_PROBS[age])
        # min() guards against u falling above a cumulative sum that rounds below 1.
        index = np.minimum(
            np.searchsorted(cumulative, u[rows], side="right"), len(HAIR_COLOURS) - 1
        )
        hair[rows] = np.asarray(HAIR_COLOURS, dtype=object)[index]
    glasses = rng.random(n) < np.where(old, P_GLASSES["old"], P_GLASSES["young"])
    smiling = rng.random(n) < P_SMILING
    ids = np.arange(n)
    return pd.DataFrame(
        {
            "image_id": ids,
            "source_id": ids,
            "source": "synthetic",
            "expression": np.where(smiling, "smiling", "neutral"),
            "facial_hair": facial_hair,
            "gender": np.where(male, "male", "female"),
            "age": np.where(old, "old", "young"),
            "glasses": glasses,
            "hair_colour": hair.astype(str),
        }
    )


def attribute_marginals(attributes: pd.DataFrame) -> dict[str, float]:
    """P(True) of the nine binary views that CelebA also annotates.

    Keys: ``smiling``, ``male``, ``young``, ``eyeglasses``, ``facial_hair``,
    ``black_hair``, ``brown_hair``, ``blond_hair``, ``grey_hair``; the population values
    of the generator are :data:`EXPECTED_MARGINALS`.

    Examples
    --------
    >>> table = pd.DataFrame({"expression": ["smiling", "neutral"], "gender": ["male", "male"],
    ...     "age": ["young", "old"], "glasses": [True, False], "facial_hair": [False, False],
    ...     "hair_colour": ["grey", "black"]})
    >>> attribute_marginals(table)["male"], attribute_marginals(table)["grey_hair"]
    (1.0, 0.5)
    """
    return {key: float(value) for key, value in binary_views(attributes).mean().items()}


def generate_synthetic_faces(
    n: int, resolution: int = 32, seed: int = 0, greyscale: bool = False
) -> FaceSet:
    """Draw ``n`` procedural faces; the same arguments give the same bytes.

    Parameters
    ----------
    n : int
        Number of faces, >= 1.
    resolution : int
        Side in pixels, a multiple of 8 in [16, 128] (as ``data.resolution`` in params).
    seed : int
        Seed of the one generator behind attributes and layouts.
    greyscale : bool
        Convert to ITU-R 601 luminance replicated to 3 channels (the same conversion as
        the natural faces get, :func:`store.to_greyscale`).

    Returns
    -------
    FaceSet
        ``images`` uint8 [n, resolution, resolution, 3], ``attributes`` as
        :func:`sample_attributes`, ``masks`` uint8 [n, resolution, resolution] with
        values from :data:`faceset.PART_LABELS`.

    Examples
    --------
    >>> faces = generate_synthetic_faces(2, 16, seed=1)
    >>> faces.images.shape, faces.masks.shape, len(faces.attributes)
    ((2, 16, 16, 3), (2, 16, 16), 2)
    """
    _check_n(n)
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
        or resolution % 8
    ):
        raise ValueError(
            f"resolution must be a multiple of 8 in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution!r}"
        )
    rng = np.random.default_rng(seed)
    attributes = sample_attributes(n, rng)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    masks = np.empty((n, resolution, resolution), np.uint8)
    rows = attributes[list(ATTRIBUTE_COLUMNS)].to_dict("records")
    for i, (row, child) in enumerate(zip(rows, rng.spawn(n), strict=True)):
        images[i], masks[i] = draw_face(row, resolution, child)
    if greyscale:
        images = to_greyscale(images)
    return FaceSet(images=images, attributes=attributes, masks=masks)
