"""The CelebA text files: the attribute, partition and landmark listings, read and checked.

Under ``root``::

    img_align_celeba/                      the images (:mod:`diffusion_circuits.data.celeba`)
    list_attr_celeba.txt                   count line, 40-name header, "000001.jpg -1  1 ..."
    list_eval_partition.txt                "000001.jpg 0" (0 train, 1 val, 2 test; optional)
    list_landmarks_align_celeba.txt        count line, 10-name header, 5 (x, y) points (optional)

The text files are parsed with pandas and checked (count line, exact header, row width,
values in {-1, 1}) before any JPEG is decoded, so a caller can choose 2,000 of 202,599
images cheaply. Every problem raises :class:`CelebAError` with the file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CELEBA_ATTRIBUTES",
    "LANDMARKS",
    "PARTITIONS",
    "CelebAError",
    "check_partition",
    "read_celeba_attributes",
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
PARTITIONS = {"train": 0, "val": 1, "test": 2}


class CelebAError(ValueError):
    """A CelebA folder, file or image that cannot be used; one line says which and why."""


def check_partition(partition: str | None) -> None:
    """ValueError unless ``partition`` is one of :data:`PARTITIONS` or None."""
    if partition is not None and partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {list(PARTITIONS)} or None, got {partition!r}")


def _find_line(path: Path, predicate, skiprows: int) -> tuple[int, list[str]] | None:
    """(number, fields) of the first non-blank line after ``skiprows`` that matches (error path)."""
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if number > skiprows and fields and predicate(fields):
                return number, fields
    return None


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
    check_partition(partition)
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
