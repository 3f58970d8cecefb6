"""Reader for the CelebA distribution layout (the paper's "preprocess CelebA").

Expected under ``root``::

    img_align_celeba/000001.jpg ...        178 x 218 RGB aligned crops
    list_attr_celeba.txt                   count line, 40-name header, "000001.jpg -1  1 ..."
    list_eval_partition.txt                "000001.jpg 0" (0 train, 1 val, 2 test; optional)
    list_landmarks_align_celeba.txt        count line, 10-name header, 5 (x, y) points (optional)

The text files are parsed with pandas and checked (count line, exact header, row width,
values in {-1, 1}) before any JPEG is decoded, so a caller can choose 2,000 of 202,599
images cheaply.

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

# fmt: off
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
LANDMARKS: tuple[str, ...] = (
    "lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
    "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y",
)
# fmt: on
IMAGE_SIZE = (178, 218)  # width, height of every aligned crop
CROP = (0, 20, 178, 198)  # left, top, right, bottom (see the module docstring)
PARTITIONS = {"train": 0, "val": 1, "test": 2}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
_PROBLEMS = ("missing", "corrupt", "greyscale", "size")


class CelebAError(ValueError):
    """A CelebA folder, file or image that cannot be used; one line says which and why."""


def _find_line(path: Path, predicate, skiprows: int) -> tuple[int, list[str]] | None:
    """(number, fields) of the first non-blank line after ``skiprows`` that matches (error path)."""
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if number > skiprows and fields and predicate(fields):
                return number, fields
    return None


def _positive_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


def _parse(path: Path, names: list[str], skiprows: int) -> pd.DataFrame:
    """Whitespace-separated rows ``file value value ...``, every row ``len(names)`` wide."""
    width = len(names)
    try:
        table = pd.read_csv(
            path, sep=r"\s+", skiprows=skiprows, header=None, names=names, dtype={names[0]: str}
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in names})
    except pd.errors.ParserError:
        table = None
    if table is None or table.isna().to_numpy().any():
        bad = _find_line(path, lambda fields: len(fields) != width, skiprows)
        if bad is not None:
            raise CelebAError(
                f"{path}: line {bad[0]} has {len(bad[1]) - 1} values, expected {width - 1}"
            )
        if table is None:
            raise CelebAError(f"{path}: cannot be parsed as whitespace-separated columns")
    return table


def _read_listing(path: Path, names: tuple[str, ...]) -> pd.DataFrame:
    """A count line + header line + rows file; checks count, header and row width."""
    with path.open() as handle:
        count_line, header_line = handle.readline(), handle.readline()
    try:
        count = int(count_line)
    except ValueError:
        raise CelebAError(
            f"{path}: line 1 should be the image count, got {count_line.strip()!r}"
        ) from None
    header = tuple(header_line.split())
    if header != names:
        unexpected = [h for h in header if h not in names]
        missing = [n for n in names if n not in header]
        detail = (
            f"unexpected {unexpected[:5]}, missing {missing[:5]}"
            if unexpected or missing
            else "same names in another order"
        )
        raise CelebAError(f"{path}: line 2 is not the official {len(names)}-name header ({detail})")
    table = _parse(path, ["original_file", *names], skiprows=2)
    if count != len(table):
        raise CelebAError(f"{path}: count line says {count} images but {len(table)} rows follow")
    duplicated = table["original_file"][table["original_file"].duplicated()]
    if len(duplicated):
        raise CelebAError(f"{path}: {duplicated.iloc[0]} is listed twice")
    return table


def _check_values(
    path: Path, table: pd.DataFrame, names: tuple[str, ...], allowed, skiprows: int
) -> pd.DataFrame:
    """Numeric view of ``names``; the first value outside ``allowed`` raises with its line."""
    raw = table[list(names)]
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().to_numpy() if allowed is None else ~values.isin(allowed).to_numpy()
    if bad.any():
        row, column = np.argwhere(bad)[0]
        name = table["original_file"].iat[row]
        number = _find_line(path, lambda fields: fields[0] == name, skiprows)[0]
        expected = "a number" if allowed is None else " or ".join(map(str, allowed))
        raise CelebAError(
            f"{path}: line {number} ({name}) has '{raw.iat[row, column]}' "
            f"for {names[column]}, expected {expected}"
        )
    return values


def _check_arguments(resolution=None, partition=None, limit=None, on_bad_image="error") -> None:
    if resolution is not None and not _positive_int(resolution):
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    if partition is not None and partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {list(PARTITIONS)} or None, got {partition!r}")
    if limit is not None and not _positive_int(limit):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if on_bad_image not in ("error", "skip"):
        raise ValueError(f"on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")


def _lookup(path: Path, listed: pd.Series, table: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``table`` (indexed by file) for every listed file; a listed file it lacks raises."""
    table = table.set_index("original_file")
    if table.index.has_duplicates:
        raise CelebAError(f"{path}: {table.index[table.index.duplicated()][0]} is listed twice")
    positions = table.index.get_indexer(listed.to_numpy())
    absent = listed[positions < 0]
    if len(absent):
        raise CelebAError(
            f"{path}: no row for {absent.iloc[0]} ({len(absent)} listed images lack one)"
        )
    return table.iloc[positions].reset_index(drop=True)


def read_celeba_attributes(root: str | Path, partition: str | None = None) -> pd.DataFrame:
    """The checked attribute table of every listed image (optionally of one partition).

    Returns
    -------
    pandas.DataFrame
        ``image_id``, ``source_id`` (both the row order), ``expression``
        (Smiling -> "smiling" / "neutral"), ``gender`` (Male), ``age`` (Young -> "young" /
        "old"), ``facial_hair`` (not No_Beard or Mustache or Goatee), ``glasses``
        (Eyeglasses), ``hair_colour`` (first of Black/Brown/Blond/Gray_Hair, else
        "other"), ``source`` ("celeba"), ``original_file``, ``partition`` (0/1/2, when
        the partition file exists), the ten landmark columns (when that file exists) and
        the 40 raw attributes as bool columns ``celeba_<Name>``.
    """
    _check_arguments(partition=partition)
    root = Path(root)
    if not root.is_dir():
        raise CelebAError(f"{root}: CelebA folder not found")
    for required, present in (
        ("img_align_celeba", Path.is_dir),
        ("list_attr_celeba.txt", Path.is_file),
    ):
        if not present(root / required):
            raise CelebAError(f"{root}: missing {required} (expected the CelebA layout)")
    attr_path = root / "list_attr_celeba.txt"
    table = _read_listing(attr_path, CELEBA_ATTRIBUTES)
    flags = _check_values(attr_path, table, CELEBA_ATTRIBUTES, [-1, 1], 2).eq(1)
    hair = np.select(
        [flags["Black_Hair"], flags["Brown_Hair"], flags["Blond_Hair"], flags["Gray_Hair"]],
        ["black", "brown", "blond", "grey"],
        default="other",
    )
    attributes = pd.DataFrame(
        {
            "image_id": np.arange(len(table)),
            "source_id": np.arange(len(table)),
            "expression": np.where(flags["Smiling"], "smiling", "neutral"),
            "gender": np.where(flags["Male"], "male", "female"),
            "age": np.where(flags["Young"], "young", "old"),
            "facial_hair": (~flags["No_Beard"] | flags["Mustache"] | flags["Goatee"]).to_numpy(),
            "glasses": flags["Eyeglasses"].to_numpy(),
            "hair_colour": hair,
            "source": "celeba",
            "original_file": table["original_file"].to_numpy(),
        }
    )
    listed = attributes["original_file"]
    extra = []
    partition_path = root / "list_eval_partition.txt"
    if partition_path.is_file():
        parts = _parse(partition_path, ["original_file", "partition"], skiprows=0)
        _check_values(partition_path, parts, ("partition",), [0, 1, 2], 0)
        extra.append(_lookup(partition_path, listed, parts).astype("int64"))
    elif partition is not None:
        raise CelebAError(f"{partition_path}: missing, cannot select partition {partition!r}")
    landmark_path = root / "list_landmarks_align_celeba.txt"
    if landmark_path.is_file():
        marks = _read_listing(landmark_path, LANDMARKS)
        marks[list(LANDMARKS)] = _check_values(landmark_path, marks, LANDMARKS, None, 2)
        extra.append(_lookup(landmark_path, listed, marks).astype(float))
    attributes = pd.concat([attributes, *extra, flags.add_prefix("celeba_")], axis=1)
    if partition is not None:
        attributes = attributes[attributes["partition"] == PARTITIONS[partition]]
        if attributes.empty:
            raise CelebAError(f"{partition_path}: no listed image is in partition {partition!r}")
        attributes = attributes.reset_index(drop=True)
        attributes["image_id"] = attributes["source_id"] = np.arange(len(attributes))
    return attributes


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
    diffusion_circuits.data.celeba.CelebAError: /nonexistent/celeba: CelebA folder not found
    """
    _check_arguments(resolution, partition, limit, on_bad_image)
    attributes = read_celeba_attributes(root, partition=partition)
    if limit is not None:
        attributes = attributes.head(limit)
    return load_celeba_images(root, attributes, resolution, on_bad_image=on_bad_image)
