"""Procedurally drawn synthetic faces with the paper's six attributes and part masks.

Attributes are sampled in causal order with documented, realistic correlations:

================  =====================================================
gender            P(male) = 0.45
age               P(old) = 0.25
expression        P(smiling) = 0.5
facial_hair       P(. | male) = 0.35, P(. | female) = 0.01
hair_colour       old: grey 0.60, black 0.15, brown 0.15, blond 0.10;
                  young: grey 0.03, black 0.35, brown 0.40, blond 0.22
glasses           P(. | old) = 0.35, P(. | young) = 0.10
================  =====================================================

Each face is drawn with Pillow at 4x the target resolution and downsampled (LANCZOS)
for anti-aliasing; the part-label map is drawn with the same geometry and downsampled
with NEAREST. Label order (later wins): background, hair, face, eyes, nose, mouth; beard
and moustache pixels are labelled ``hair``, glasses are not a part. Everything comes from
one ``numpy.random.default_rng(seed)``, so the same arguments give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from diffusion_circuits.data.faceset import PART_LABELS, FaceSet
from diffusion_circuits.data.matching import binary_views
from diffusion_circuits.data.store import to_greyscale

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "P_MALE",
    "P_OLD",
    "P_SMILING",
    "P_FACIAL_HAIR",
    "P_GLASSES",
    "HAIR_COLOUR_PROBS",
    "sample_attributes",
    "attribute_marginals",
    "draw_face",
    "generate_synthetic_faces",
]

ATTRIBUTE_COLUMNS = ("expression", "facial_hair", "gender", "age", "glasses", "hair_colour")
P_MALE = 0.45
P_OLD = 0.25
P_SMILING = 0.5
P_FACIAL_HAIR = {"male": 0.35, "female": 0.01}
P_GLASSES = {"old": 0.35, "young": 0.10}
HAIR_COLOURS = ("black", "brown", "blond", "grey")
HAIR_COLOUR_PROBS = {
    "old": (0.15, 0.15, 0.10, 0.60),
    "young": (0.35, 0.40, 0.22, 0.03),
}
_HAIR_RGB = {
    "black": (30, 25, 22),
    "brown": (105, 65, 35),
    "blond": (225, 190, 110),
    "grey": (175, 175, 172),
}
_SCALE = 4  # supersampling factor


def sample_attributes(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` attribute rows with the module's correlations (causal order)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    male = rng.random(n) < P_MALE
    old = rng.random(n) < P_OLD
    smiling = rng.random(n) < P_SMILING
    facial_hair = rng.random(n) < np.where(male, P_FACIAL_HAIR["male"], P_FACIAL_HAIR["female"])
    glasses = rng.random(n) < np.where(old, P_GLASSES["old"], P_GLASSES["young"])
    u = rng.random(n)
    hair = np.empty(n, dtype=object)
    for age, mask in (("old", old), ("young", ~old)):
        cumulative = np.cumsum(HAIR_COLOUR_PROBS[age])
        hair[mask] = np.asarray(HAIR_COLOURS)[np.searchsorted(cumulative, u[mask], side="right")]
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
    """P(True) of the binary views that CelebA also annotates.

    Examples
    --------
    >>> table = pd.DataFrame({"expression": ["smiling", "neutral"], "gender": ["male", "male"],
    ...     "age": ["young", "old"], "glasses": [True, False], "facial_hair": [False, False],
    ...     "hair_colour": ["grey", "black"]})
    >>> attribute_marginals(table)["male"], attribute_marginals(table)["grey_hair"]
    (1.0, 0.5)
    """
    return {key: float(value) for key, value in binary_views(attributes).mean().items()}


@dataclass(frozen=True)
class _Geometry:
    """Random layout of one face, in units of the supersampled canvas."""

    cx: float
    cy: float
    half_w: float
    half_h: float
    eye_dx: float
    eye_y: float
    eye_r: float
    mouth_y: float
    mouth_w: float
    skin: tuple[int, int, int]
    background: tuple[int, int, int]


def _geometry(size: int, rng: np.random.Generator, old: bool) -> _Geometry:
    half_w = size * rng.uniform(0.24, 0.29)
    half_h = half_w * rng.uniform(1.2, 1.4)
    cx = size / 2 + rng.uniform(-0.04, 0.04) * size
    cy = size * 0.54 + rng.uniform(-0.03, 0.03) * size
    tone = rng.uniform(0.0, 1.0)
    skin = np.array([240, 205, 175]) * (1 - tone) + np.array([125, 85, 60]) * tone
    if old:  # paler, greyer skin
        skin = 0.8 * skin + 0.2 * np.array([190, 180, 175])
    background = rng.integers(60, 200, size=3)
    return _Geometry(
        cx=cx,
        cy=cy,
        half_w=half_w,
        half_h=half_h,
        eye_dx=half_w * rng.uniform(0.38, 0.48),
        eye_y=cy - half_h * rng.uniform(0.12, 0.22),
        eye_r=half_w * rng.uniform(0.13, 0.17),
        mouth_y=cy + half_h * rng.uniform(0.45, 0.55),
        mouth_w=half_w * rng.uniform(0.35, 0.5),
        skin=tuple(int(c) for c in skin),
        background=tuple(int(c) for c in background),
    )


def _box(x: float, y: float, rx: float, ry: float) -> tuple[float, float, float, float]:
    return (x - rx, y - ry, x + rx, y + ry)


def draw_face(row: pd.Series, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one face for an attribute row: (uint8 [size, size, 3], uint8 [size, size] labels).

    The geometry comes from ``rng`` alone, so two rows drawn from equal generators share
    their layout and differ only where their attributes differ.
    """
    big = size * _SCALE
    g = _geometry(big, rng, row["age"] == "old")
    image = Image.new("RGB", (big, big), g.background)
    labels = Image.new("L", (big, big), PART_LABELS["background"])
    paint, label = ImageDraw.Draw(image), ImageDraw.Draw(labels)
    hair_rgb = _HAIR_RGB[row["hair_colour"]]
    male = row["gender"] == "male"

    def both(shape: str, xy, fill, part: str | None, **kwargs) -> None:
        getattr(paint, shape)(xy, fill=fill, **kwargs)
        if part is not None:
            getattr(label, shape)(xy, fill=PART_LABELS[part], **kwargs)

    # Hair behind the head: long (to the shoulders) for women, a cap for men.
    if male:
        both(
            "ellipse",
            _box(g.cx, g.cy - g.half_h * 0.25, g.half_w * 1.1, g.half_h * 0.95),
            hair_rgb,
            "hair",
        )
    else:
        both(
            "rounded_rectangle",
            (
                g.cx - g.half_w * 1.3,
                g.cy - g.half_h * 1.15,
                g.cx + g.half_w * 1.3,
                g.cy + g.half_h * 1.1,
            ),
            hair_rgb,
            "hair",
            radius=int(g.half_w),
        )
    both("ellipse", _box(g.cx, g.cy, g.half_w, g.half_h), g.skin, "face")
    # Fringe over the forehead.
    both(
        "chord",
        _box(g.cx, g.cy - g.half_h * 0.55, g.half_w * 1.02, g.half_h * 0.55),
        hair_rgb,
        "hair",
        start=180,
        end=360,
    )
    if row["facial_hair"]:
        beard = tuple(int(c * 0.8) for c in hair_rgb)
        both(
            "chord",
            _box(g.cx, g.cy + g.half_h * 0.2, g.half_w * 0.98, g.half_h * 0.8),
            beard,
            "hair",
            start=20,
            end=160,
        )
        both(
            "rectangle",
            (
                g.cx - g.mouth_w * 1.1,
                g.mouth_y - g.half_h * 0.16,
                g.cx + g.mouth_w * 1.1,
                g.mouth_y - g.half_h * 0.06,
            ),
            beard,
            "hair",
        )
    if row["age"] == "old":
        wrinkle = tuple(int(c * 0.75) for c in g.skin)
        for k in range(2):
            y = g.cy - g.half_h * (0.42 - 0.09 * k)
            paint.line(
                (g.cx - g.half_w * 0.4, y, g.cx + g.half_w * 0.4, y),
                fill=wrinkle,
                width=max(1, big // 64),
            )
    for side in (-1, 1):
        ex = g.cx + side * g.eye_dx
        both("ellipse", _box(ex, g.eye_y, g.eye_r * 1.3, g.eye_r * 0.85), (245, 245, 245), "eyes")
        both("ellipse", _box(ex, g.eye_y, g.eye_r * 0.6, g.eye_r * 0.6), (35, 30, 30), "eyes")
        brow_y = g.eye_y - g.eye_r * 1.6
        paint.line(
            (ex - g.eye_r * 1.3, brow_y, ex + g.eye_r * 1.3, brow_y - side * 0),
            fill=tuple(int(c * 0.7) for c in hair_rgb),
            width=max(1, big // 40),
        )
        if row["glasses"]:
            paint.ellipse(
                _box(ex, g.eye_y, g.eye_r * 2.0, g.eye_r * 1.6),
                outline=(20, 20, 25),
                width=max(2, big // 36),
            )
    if row["glasses"]:
        paint.line(
            (g.cx - g.eye_dx + g.eye_r * 2.0, g.eye_y, g.cx + g.eye_dx - g.eye_r * 2.0, g.eye_y),
            fill=(20, 20, 25),
            width=max(2, big // 40),
        )
    nose_dark = tuple(int(c * 0.72) for c in g.skin)
    nose_top, nose_bottom = g.eye_y + g.eye_r, g.mouth_y - g.half_h * 0.2
    both(
        "polygon",
        [
            (g.cx, nose_top),
            (g.cx - g.half_w * 0.14, nose_bottom),
            (g.cx + g.half_w * 0.14, nose_bottom),
        ],
        nose_dark,
        "nose",
    )
    lips = (150, 40, 50)
    if row["expression"] == "smiling":
        both(
            "chord",
            _box(g.cx, g.mouth_y - g.half_h * 0.08, g.mouth_w, g.half_h * 0.2),
            lips,
            "mouth",
            start=0,
            end=180,
        )
        paint.chord(
            _box(g.cx, g.mouth_y - g.half_h * 0.08, g.mouth_w * 0.8, g.half_h * 0.11),
            start=0,
            end=180,
            fill=(250, 250, 250),
        )
    else:
        both(
            "rectangle",
            (
                g.cx - g.mouth_w * 0.8,
                g.mouth_y - g.half_h * 0.03,
                g.cx + g.mouth_w * 0.8,
                g.mouth_y + g.half_h * 0.03,
            ),
            lips,
            "mouth",
        )
    small = image.resize((size, size), Image.Resampling.LANCZOS)
    small_labels = labels.resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(small, dtype=np.uint8), np.asarray(small_labels, dtype=np.uint8)


def generate_synthetic_faces(
    n: int, resolution: int = 32, seed: int = 0, greyscale: bool = False
) -> FaceSet:
    """Draw ``n`` faces at ``resolution``; deterministic in all four arguments."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 16 <= resolution <= 128 or resolution % 8:
        raise ValueError(f"resolution must be a multiple of 8 in [16, 128], got {resolution}")
    rng = np.random.default_rng(seed)
    attributes = sample_attributes(n, rng)
    geometry_seeds = rng.integers(0, 2**63 - 1, size=n)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    masks = np.empty((n, resolution, resolution), np.uint8)
    for i, row in enumerate(attributes.itertuples(index=False)):
        images[i], masks[i] = draw_face(
            pd.Series(row._asdict()), resolution, np.random.default_rng(geometry_seeds[i])
        )
    if greyscale:
        images = to_greyscale(images)
    return FaceSet(images=images, attributes=attributes, masks=masks)
