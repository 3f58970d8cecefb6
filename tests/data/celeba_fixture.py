"""Writer of small folders in the exact CelebA distribution layout, with defects on demand.

The header lines are written here as literal text (not imported from the reader), so a
typo in the reader's constants fails the tests. Attributes and landmarks follow simple
rules (:func:`fixture_attributes`, :func:`fixture_landmarks`) that tests can check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ATTRIBUTE_HEADER = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips "
    "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin "
    "Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open "
    "Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young "
)  # the real file ends the header with a space
LANDMARK_HEADER = (
    "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
)
NAMES = ATTRIBUTE_HEADER.split()
BASE_LANDMARKS = np.array([69, 109, 106, 113, 77, 142, 73, 152, 108, 154])
HAIR_ROWS = {"Black_Hair": [0], "Brown_Hair": [1], "Blond_Hair": [0, 2], "Gray_Hair": [3]}
# Outside rows 20-198, so nothing of this colour may survive the crop.
BAND = (0, 255, 0)


def file_name(i: int) -> str:
    return f"{i + 1:06d}.jpg"


def fixture_attributes(n: int) -> np.ndarray:
    """[n, 40] values in {-1, 1}: random, with the mapped attributes set by rule.

    Smiling: even rows. Male: rows divisible by 3. Young: all but rows = 3 (mod 4).
    Eyeglasses: rows = 1 (mod 4). Facial hair: row 1 No_Beard=-1, row 2 Mustache, row 3
    Goatee, all others clean-shaven. Hair by row mod 5: 0 Black and Blond (black wins),
    1 Brown, 2 Blond, 3 Gray, 4 none ("other").
    """
    values = np.where(np.random.default_rng(0).random((n, 40)) < 0.5, 1, -1)
    column = {name: NAMES.index(name) for name in NAMES}
    rows = np.arange(n)
    values[:, column["Smiling"]] = np.where(rows % 2 == 0, 1, -1)
    values[:, column["Male"]] = np.where(rows % 3 == 0, 1, -1)
    values[:, column["Young"]] = np.where(rows % 4 == 3, -1, 1)
    values[:, column["Eyeglasses"]] = np.where(rows % 4 == 1, 1, -1)
    values[:, column["No_Beard"]] = np.where(rows == 1, -1, 1)
    values[:, column["Mustache"]] = np.where(rows == 2, 1, -1)
    values[:, column["Goatee"]] = np.where(rows == 3, 1, -1)
    for name, mods in HAIR_ROWS.items():
        values[:, column[name]] = np.where(np.isin(rows % 5, mods), 1, -1)
    return values


def fixture_landmarks(n: int) -> np.ndarray:
    """[n, 10] landmark pixels: a typical aligned face, shifted by row (x: -1..1, y: 0..1)."""
    rows = np.arange(n)[:, None]
    shift = np.tile([1, 0], 5)[None, :] * (rows % 3 - 1) + np.tile([0, 1], 5)[None, :] * (rows % 2)
    return BASE_LANDMARKS[None, :] + shift


def _picture(i: int, size: tuple[int, int], marks: np.ndarray) -> Image.Image:
    rng = np.random.default_rng(i)
    background = (int(rng.integers(60, 200)), int(rng.integers(0, 120)), int(rng.integers(60, 200)))
    picture = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, size[0], 19), fill=BAND)
    if size[1] > 198:
        draw.rectangle((0, 198, size[0], size[1]), fill=BAND)
    draw.ellipse((40, 60, 138, 190), fill=(220, 180, 150))
    for x, y in (marks[0:2], marks[2:4]):
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=(20, 20, 20))
    draw.line((*marks[6:8], *marks[8:10]), fill=(150, 30, 40), width=4)
    return picture


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
    """Write ``n`` images and the three list files under ``root``; return ``root``.

    Partitions: all train except the last two rows (val, then test). Defects, each at
    row ``index`` (0-based; the file's line ``index + 3`` for the two header lines):
    ``greyscale_index`` saves a mode "L" JPEG, ``corrupt_index`` replaces the file by
    non-JPEG bytes, ``truncate_index`` keeps its first half, ``wrong_size_index`` draws
    it 178 x 178, ``missing_index`` writes no file; ``landmarks=False`` omits the landmark
    file, ``bad_header`` writes "Smile" for "Smiling" in the attribute header and
    ``bad_row_width_index`` drops that row's last attribute value (39 instead of 40).
    """
    root = Path(root)
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    values, marks = fixture_attributes(n), fixture_landmarks(n)
    header = ATTRIBUTE_HEADER.replace("Smiling", "Smile") if bad_header else ATTRIBUTE_HEADER
    attr_lines = [str(n), header]
    landmark_lines = [str(n), LANDMARK_HEADER]
    partition_lines = []
    for i in range(n):
        name = file_name(i)
        size = (178, 178) if i == wrong_size_index else (178, 218)
        picture = _picture(i, size, marks[i])
        if i == greyscale_index:
            picture = picture.convert("L")
        if i != missing_index:
            picture.save(images / name, quality=95)
        if i == corrupt_index:
            (images / name).write_bytes(b"not a jpeg at all")
        if i == truncate_index:
            data = (images / name).read_bytes()
            (images / name).write_bytes(data[: len(data) // 2])
        row = values[i, :-1] if i == bad_row_width_index else values[i]
        attr_lines.append(name + " " + " ".join(f"{v:2d}" for v in row))
        landmark_lines.append(name + " " + " ".join(f"{v:>4d}" for v in marks[i]))
        partition_lines.append(f"{name} {max(0, i - (n - 3))}")
    (root / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")
    if landmarks:
        (root / "list_landmarks_align_celeba.txt").write_text("\n".join(landmark_lines) + "\n")
    return root


def edit_line(path: Path, number: int, edit) -> None:
    """Replace 1-based line ``number`` of ``path`` by ``edit(line)``."""
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")
