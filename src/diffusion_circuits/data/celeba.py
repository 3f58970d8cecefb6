"""Reader for the CelebA distribution layout (the paper's "preprocess CelebA").

Expected under ``root``::

    img_align_celeba/000001.jpg ...        178 x 218 RGB aligned crops
    list_attr_celeba.txt                   count line, 40-name header, "000001.jpg -1 1 ..."
    list_eval_partition.txt                "000001.jpg 0" (0 train, 1 val, 2 test; optional)
    list_landmarks_align_celeba.txt        count line, 10-name header, 5 (x, y) points (optional)

Images are centre-cropped to 178 x 178 (rows 20-198, which keeps the aligned face, eyes
near row 110, in the middle) and resized with LANCZOS. Landmarks, when present, give
approximate part masks through the same crop and resize. Attribute parsing reads only
the text files, so a caller can choose 2,000 of 202,599 images before decoding any JPEG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from diffusion_circuits.data.faceset import PART_LABELS, FaceSet

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CelebAError",
    "read_celeba_attributes",
    "load_celeba_images",
    "read_celeba",
]

CELEBA_ATTRIBUTES = tuple(
    [
        "5_o_Clock_Shadow",
        "Arched_Eyebrows",
        "Attractive",
        "Bags_Under_Eyes",
        "Bald",
        "Bangs",
        "Big_Lips",
        "Big_Nose",
        "Black_Hair",
        "Blond_Hair",
        "Blurry",
        "Brown_Hair",
        "Bushy_Eyebrows",
        "Chubby",
        "Double_Chin",
        "Eyeglasses",
        "Goatee",
        "Gray_Hair",
        "Heavy_Makeup",
        "High_Cheekbones",
        "Male",
        "Mouth_Slightly_Open",
        "Mustache",
        "Narrow_Eyes",
        "No_Beard",
        "Oval_Face",
        "Pale_Skin",
        "Pointy_Nose",
        "Receding_Hairline",
        "Rosy_Cheeks",
        "Sideburns",
        "Smiling",
        "Straight_Hair",
        "Wavy_Hair",
        "Wearing_Earrings",
        "Wearing_Hat",
        "Wearing_Lipstick",
        "Wearing_Necklace",
        "Wearing_Necktie",
        "Young",
    ]
)
LANDMARKS = [
    "lefteye_x",
    "lefteye_y",
    "righteye_x",
    "righteye_y",
    "nose_x",
    "nose_y",
    "leftmouth_x",
    "leftmouth_y",
    "rightmouth_x",
    "rightmouth_y",
]
IMAGE_SIZE = (178, 218)  # width, height
CROP = (0, 20, 178, 198)  # left, top, right, bottom
PARTITIONS = {"train": 0, "val": 1, "test": 2}


class CelebAError(ValueError):
    """A CelebA folder, file or image that cannot be used; one line says which and why."""


def _read_table(path: Path, names: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Parse a count line + header line + rows file, checking all three."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise CelebAError(f"{path}: expected a count line and a header line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise CelebAError(f"{path}: line 1 should be the image count, got {lines[0]!r}") from None
    header = lines[1].split()
    if tuple(header) != tuple(names):
        differ = sorted(set(header) ^ set(names))
        raise CelebAError(
            f"{path}: header is not the official {len(names)} names "
            f"(differing: {', '.join(differ[:6]) or 'order'})"
        )
    rows = [line.split() for line in lines[2:] if line.strip()]
    for number, row in enumerate(rows, start=3):
        if len(row) != len(names) + 1:
            raise CelebAError(
                f"{path}: line {number} has {len(row) - 1} values, expected {len(names)}"
            )
    if count != len(rows):
        raise CelebAError(f"{path}: count line says {count} images but {len(rows)} rows follow")
    frame = pd.DataFrame([row[1:] for row in rows], columns=list(names))
    frame.insert(0, "original_file", [row[0] for row in rows])
    return frame


def read_celeba_attributes(root: str | Path, partition: str | None = None) -> pd.DataFrame:
    """Canonical attribute columns, raw ``celeba_*`` booleans and landmarks for every listed image."""
    root = Path(root)
    if not root.is_dir():
        raise CelebAError(f"{root}: CelebA folder not found")
    for required in ("img_align_celeba", "list_attr_celeba.txt"):
        if not (root / required).exists():
            raise CelebAError(f"{root}: missing {required}")
    table = _read_table(root / "list_attr_celeba.txt", CELEBA_ATTRIBUTES)
    raw = table[list(CELEBA_ATTRIBUTES)]
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = ~values.isin([-1, 1])
    if bad.any().any():
        row, column = np.argwhere(bad.to_numpy())[0]
        raise CelebAError(
            f"{root / 'list_attr_celeba.txt'}: line {row + 3} has {raw.iat[row, column]!r} for "
            f"{CELEBA_ATTRIBUTES[column]}, expected -1 or 1"
        )
    flags = values.eq(1)
    hair = np.select(
        [flags["Black_Hair"], flags["Brown_Hair"], flags["Blond_Hair"], flags["Gray_Hair"]],
        ["black", "brown", "blond", "grey"],
        default="other",
    )
    attributes = pd.DataFrame(
        {
            "original_file": table["original_file"],
            "source": "celeba",
            "expression": np.where(flags["Smiling"], "smiling", "neutral"),
            "gender": np.where(flags["Male"], "male", "female"),
            "age": np.where(flags["Young"], "young", "old"),
            "facial_hair": ~flags["No_Beard"] | flags["Mustache"] | flags["Goatee"],
            "glasses": flags["Eyeglasses"],
            "hair_colour": hair,
        }
    )
    attributes = pd.concat([attributes, flags.add_prefix("celeba_")], axis=1)
    partition_file = root / "list_eval_partition.txt"
    if partition_file.is_file():
        parts = pd.read_csv(partition_file, sep=r"\s+", header=None, names=["file", "partition"])
        attributes["partition"] = attributes["original_file"].map(
            dict(zip(parts["file"], parts["partition"], strict=True))
        )
    if partition is not None:
        if partition not in PARTITIONS:
            raise CelebAError(f"partition must be one of {list(PARTITIONS)}, got {partition!r}")
        if "partition" not in attributes:
            raise CelebAError(f"{partition_file}: missing, cannot select partition {partition!r}")
        attributes = attributes[attributes["partition"] == PARTITIONS[partition]]
    landmark_file = root / "list_landmarks_align_celeba.txt"
    if landmark_file.is_file():
        marks = _read_table(landmark_file, LANDMARKS).set_index("original_file").astype(float)
        attributes = attributes.join(marks, on="original_file")
    attributes = attributes.reset_index(drop=True)
    attributes.insert(0, "image_id", np.arange(len(attributes)))
    attributes.insert(1, "source_id", np.arange(len(attributes)))
    return attributes


def _part_mask(row: pd.Series, resolution: int) -> np.ndarray:
    """Approximate part labels from the five landmarks, in output pixel coordinates."""
    scale = resolution / (CROP[2] - CROP[0])

    def point(name: str) -> tuple[float, float]:
        return ((row[f"{name}_x"] - CROP[0]) * scale, (row[f"{name}_y"] - CROP[1]) * scale)

    left_eye, right_eye, nose = point("lefteye"), point("righteye"), point("nose")
    left_mouth, right_mouth = point("leftmouth"), point("rightmouth")
    xs = [p[0] for p in (left_eye, right_eye, nose, left_mouth, right_mouth)]
    ys = [p[1] for p in (left_eye, right_eye, nose, left_mouth, right_mouth)]
    eye_gap = abs(right_eye[0] - left_eye[0]) or 1.0
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    half_w, half_h = eye_gap * 1.1, (max(ys) - min(ys)) * 1.2 + eye_gap * 0.3
    canvas = Image.new("L", (resolution, resolution), PART_LABELS["background"])
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(
        (cx - half_w * 1.1, cy - half_h * 1.6, cx + half_w * 1.1, cy - half_h * 0.6),
        fill=PART_LABELS["hair"],
    )
    draw.ellipse((cx - half_w, cy - half_h, cx + half_w, cy + half_h), fill=PART_LABELS["face"])
    radius = eye_gap * 0.22
    for x, y in (left_eye, right_eye):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=PART_LABELS["eyes"])
    nose_r = eye_gap * 0.2
    draw.ellipse(
        (nose[0] - nose_r, nose[1] - nose_r, nose[0] + nose_r, nose[1] + nose_r),
        fill=PART_LABELS["nose"],
    )
    mouth_ry = eye_gap * 0.15
    draw.ellipse(
        (
            left_mouth[0],
            min(left_mouth[1], right_mouth[1]) - mouth_ry,
            right_mouth[0],
            max(left_mouth[1], right_mouth[1]) + mouth_ry,
        ),
        fill=PART_LABELS["mouth"],
    )
    return np.asarray(canvas, dtype=np.uint8)


def _load_one(path: Path) -> tuple[np.ndarray | None, str | None]:
    """Decode one JPEG fully; return (array, None) or (None, reason counter key)."""
    if not path.is_file():
        return None, "missing"
    try:
        with Image.open(path) as image:
            image.load()  # full decode: a truncated file fails here, not later
            mode, size = image.mode, image.size
            rgb = np.asarray(image.convert("RGB")) if mode == "RGB" else None
    except (OSError, SyntaxError, ValueError):
        return None, "corrupt"
    if mode != "RGB":
        return None, "greyscale"
    if size != IMAGE_SIZE:
        return None, "size"
    return rgb, None


_REASONS = {
    "missing": "listed but missing",
    "corrupt": "corrupt or truncated JPEG",
    "greyscale": "greyscale JPEG (CelebA images are RGB)",
    "size": f"not {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}",
}


def load_celeba_images(
    root: str | Path,
    attributes: pd.DataFrame,
    resolution: int,
    *,
    on_bad_image: Literal["error", "skip"] = "error",
) -> tuple[FaceSet, dict[str, int]]:
    """Decode, crop and resize the listed images; skip and count bad ones if asked to."""
    folder = Path(root) / "img_align_celeba"
    counts = {"n_listed": len(attributes), "n_loaded": 0}
    counts.update({f"n_skipped_{reason}": 0 for reason in _REASONS})
    images, masks, kept = [], [], []
    has_landmarks = all(f"{name}" in attributes for name in LANDMARKS)
    for position, row in enumerate(attributes.itertuples(index=False)):
        path = folder / row.original_file
        rgb, problem = _load_one(path)
        if problem is not None:
            if on_bad_image == "error":
                raise CelebAError(f"{path}: {_REASONS[problem]}")
            counts[f"n_skipped_{problem}"] += 1
            continue
        cropped = Image.fromarray(rgb).crop(CROP)
        images.append(
            np.asarray(cropped.resize((resolution, resolution), Image.Resampling.LANCZOS))
        )
        if has_landmarks:
            masks.append(_part_mask(attributes.iloc[position], resolution))
        kept.append(position)
    if not images:
        raise CelebAError(f"{folder}: no usable image among {len(attributes)} listed")
    counts["n_loaded"] = len(images)
    table = attributes.iloc[kept].reset_index(drop=True)
    table["image_id"] = np.arange(len(table))
    table["source_id"] = np.arange(len(table))
    faces = FaceSet(
        images=np.stack(images).astype(np.uint8),
        attributes=table,
        masks=np.stack(masks) if has_landmarks else None,
    )
    return faces, counts


def read_celeba(
    root: str | Path,
    resolution: int,
    *,
    partition: str | None = None,
    limit: int | None = None,
    on_bad_image: Literal["error", "skip"] = "error",
) -> tuple[FaceSet, dict[str, int]]:
    """Attributes and images of the first ``limit`` listed images (all when None)."""
    attributes = read_celeba_attributes(root, partition=partition)
    if limit is not None:
        attributes = attributes.head(limit)
    return load_celeba_images(root, attributes, resolution, on_bad_image=on_bad_image)
