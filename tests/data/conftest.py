"""A writer of small folders in the exact CelebA distribution layout, with defects on demand."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from diffusion_circuits.data.celeba import CELEBA_ATTRIBUTES, LANDMARKS

LANDMARK_ROW = (69, 109, 106, 113, 77, 142, 73, 152, 108, 154)


def write_celeba_fixture(
    root: Path,
    n: int = 12,
    *,
    greyscale_index: int | None = None,
    corrupt_index: int | None = None,
    truncate_index: int | None = None,
    wrong_size_index: int | None = None,
    missing_index: int | None = None,
    landmarks: bool = True,
    bad_header: bool = False,
    bad_row_width_index: int | None = None,
) -> Path:
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    attr_lines = [str(n), " ".join(CELEBA_ATTRIBUTES) + " "]
    if bad_header:
        attr_lines[1] = attr_lines[1].replace("Smiling", "Smiles")
    partition_lines, landmark_lines = [], [str(n), " ".join(LANDMARKS)]
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        size = (178, 178) if i == wrong_size_index else (178, 218)
        picture = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 255, 3)))
        draw = ImageDraw.Draw(picture)
        draw.ellipse((40, 60, 138, 190), fill=(220, 180, 150))
        draw.ellipse((64, 104, 74, 114), fill=(20, 20, 20))
        draw.ellipse((101, 108, 111, 118), fill=(20, 20, 20))
        draw.line((73, 152, 108, 154), fill=(150, 30, 40), width=4)
        if i == greyscale_index:
            picture = picture.convert("L")
        if i != missing_index:
            picture.save(images / name, quality=90)
        if i == corrupt_index:
            (images / name).write_bytes(b"not a jpeg at all")
        if i == truncate_index:
            data = (images / name).read_bytes()
            (images / name).write_bytes(data[: len(data) // 2])
        values = np.where(rng.random(40) < 0.5, 1, -1)
        values[CELEBA_ATTRIBUTES.index("Smiling")] = 1 if i % 2 == 0 else -1
        values[CELEBA_ATTRIBUTES.index("Male")] = 1 if i % 3 == 0 else -1
        width = 39 if i == bad_row_width_index else 40
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in values[:width]))
        partition_lines.append(f"{name} {0 if i < n - 2 else 2}")
        landmark_lines.append(name + "    " + "   ".join(str(v) for v in LANDMARK_ROW))
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
    if landmarks:
        (root / "list_landmarks_align_celeba.txt").write_text("\n".join(landmark_lines) + "\n")
    return root


@pytest.fixture
def celeba_fixture():
    return write_celeba_fixture
