import re

import numpy as np
import pytest
from celeba_fixture import (
    BAND,
    NAMES,
    edit_line,
    file_name,
    fixture_attributes,
    fixture_landmarks,
    write_celeba_fixture,
)
from PIL import Image

from diffusion_circuits.data.celeba import (
    CELEBA_ATTRIBUTES,
    CelebAError,
    load_celeba_images,
    read_celeba,
    read_celeba_attributes,
)
from diffusion_circuits.data.faceset import PART_LABELS

CLEAN_COUNTS = {
    "n_skipped_missing": 0,
    "n_skipped_corrupt": 0,
    "n_skipped_greyscale": 0,
    "n_skipped_size": 0,
}


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    root = write_celeba_fixture(tmp_path_factory.mktemp("six") / "celeba", n=6)
    return root, *read_celeba(root, 64)


def test_official_attribute_names():
    assert list(CELEBA_ATTRIBUTES) == NAMES


def test_attributes_map_to_the_canonical_columns(six):
    _, faces, counts = six
    table = faces.attributes
    assert counts == {"n_listed": 6, "n_loaded": 6, **CLEAN_COUNTS}
    assert table["image_id"].tolist() == table["source_id"].tolist() == list(range(6))
    assert table["original_file"].tolist() == [file_name(i) for i in range(6)]
    assert table["source"].eq("celeba").all()
    # Expected values worked out from the fixture's rules (see fixture_attributes).
    assert table["expression"].tolist() == ["smiling", "neutral"] * 3
    assert table["gender"].tolist() == ["male", "female", "female"] * 2
    assert table["age"].tolist() == ["young", "young", "young", "old", "young", "young"]
    assert table["facial_hair"].tolist() == [False, True, True, True, False, False]
    assert table["glasses"].tolist() == [False, True, False, False, False, True]
    assert table["hair_colour"].tolist() == ["black", "brown", "blond", "grey", "other", "black"]
    raw = table[[f"celeba_{name}" for name in NAMES]]
    assert set(raw.dtypes) == {np.dtype(bool)}
    np.testing.assert_array_equal(raw.to_numpy(), fixture_attributes(6) == 1)
    assert table["partition"].tolist() == [0, 0, 0, 0, 1, 2]
    np.testing.assert_array_equal(
        table[["lefteye_x", "rightmouth_y"]], fixture_landmarks(6)[:, [0, 9]]
    )


def test_images_are_the_centre_square_resized_with_lanczos(six):
    root, faces, _ = six
    assert faces.images.shape == (6, 64, 64, 3) and faces.images.dtype == np.uint8
    for i in (0, 5):
        with Image.open(root / "img_align_celeba" / file_name(i)) as jpeg:
            full = jpeg.convert("RGB")
        expected = full.crop((0, 20, 178, 198)).resize((64, 64), Image.Resampling.LANCZOS)
        np.testing.assert_array_equal(faces.images[i], np.asarray(expected))

        def green(image):
            image = np.asarray(image, dtype=int)
            return (image[..., 1] - np.maximum(image[..., 0], image[..., 2])).max()

        # The bands above row 20 and below row 198 are gone; a plain resize would keep them.
        assert green(faces.images[i]) < 100 <= green(full.resize((64, 78)))
    assert BAND == (0, 255, 0)


def test_other_resolution(tmp_path):
    faces, _ = read_celeba(write_celeba_fixture(tmp_path / "c", n=2), 24)
    assert faces.images.shape == (2, 24, 24, 3) and faces.masks.shape == (2, 24, 24)


def test_masks_follow_the_landmarks_through_crop_and_resize(six):
    _, faces, _ = six
    masks = faces.masks
    assert masks.shape == (6, 64, 64) and masks.dtype == np.uint8
    assert set(np.unique(masks)) == set(PART_LABELS.values())
    scale = 64 / 178

    def centroid(mask, part, columns=slice(None)):
        ys, xs = np.nonzero(mask[:, columns] == PART_LABELS[part])
        return xs.mean() + (columns.start or 0), ys.mean()

    for i, marks in enumerate(fixture_landmarks(6)):
        x, y = marks[0::2] * scale, (marks[1::2] - 20) * scale  # crop offset 20, then scale
        # Pixel centres sit at +0.5: compare in pixel-index units.
        mouth = centroid(masks[i], "mouth")
        assert abs(mouth[0] - ((x[3] + x[4]) / 2 - 0.5)) < 1
        assert abs(mouth[1] - ((y[3] + y[4]) / 2 - 0.5)) < 1
        left_eye = centroid(masks[i], "eyes", slice(0, 32))
        assert np.hypot(left_eye[0] - (x[0] - 0.5), left_eye[1] - (y[0] - 0.5)) < 1
        nose = centroid(masks[i], "nose")
        assert np.hypot(nose[0] - (x[2] - 0.5), nose[1] - (y[2] - 0.5)) < 1.5
        assert centroid(masks[i], "hair")[1] < y[0] < centroid(masks[i], "face")[1]
        assert masks[i, 63, 0] == masks[i, 63, 63] == PART_LABELS["background"]


def test_no_landmark_file_means_no_masks(tmp_path):
    faces, _ = read_celeba(write_celeba_fixture(tmp_path / "c", n=3, landmarks=False), 16)
    assert faces.masks is None and "lefteye_x" not in faces.attributes


@pytest.mark.parametrize(
    ("defect", "message", "counter"),
    [
        ("missing_index", "listed in list_attr_celeba.txt but missing", "missing"),
        ("corrupt_index", "corrupt or truncated JPEG", "corrupt"),
        ("truncate_index", "corrupt or truncated JPEG", "corrupt"),
        ("greyscale_index", r"greyscale JPEG \(mode L\), expected RGB", "greyscale"),
        ("wrong_size_index", "image is 178x178, expected 178x218", "size"),
    ],
)
def test_bad_images_error_or_are_skipped_and_counted(tmp_path, defect, message, counter):
    root = write_celeba_fixture(tmp_path / "celeba", n=5, **{defect: 2})
    path = re.escape(str(root / "img_align_celeba" / "000003.jpg"))
    with pytest.raises(CelebAError, match=f"^{path}: {message}") as info:
        read_celeba(root, 16)
    assert "\n" not in str(info.value)
    faces, counts = read_celeba(root, 16, on_bad_image="skip")
    assert counts == {"n_listed": 5, "n_loaded": 4, **CLEAN_COUNTS, f"n_skipped_{counter}": 1}
    assert faces.attributes["original_file"].tolist() == [file_name(i) for i in (0, 1, 3, 4)]
    assert faces.attributes["image_id"].tolist() == [0, 1, 2, 3]
    assert faces.images.shape[0] == faces.masks.shape[0] == 4
    assert faces.attributes["expression"].tolist() == ["smiling", "neutral", "neutral", "smiling"]


def test_every_kind_of_bad_image_counted_at_once(tmp_path):
    root = write_celeba_fixture(
        tmp_path / "c",
        n=7,
        missing_index=1,
        corrupt_index=2,
        truncate_index=3,
        greyscale_index=4,
        wrong_size_index=5,
    )
    faces, counts = read_celeba(root, 16, on_bad_image="skip")
    assert counts == {
        "n_listed": 7,
        "n_loaded": 2,
        "n_skipped_missing": 1,
        "n_skipped_corrupt": 2,
        "n_skipped_greyscale": 1,
        "n_skipped_size": 1,
    }
    assert faces.attributes["original_file"].tolist() == ["000001.jpg", "000007.jpg"]
    root = write_celeba_fixture(tmp_path / "one", n=1, corrupt_index=0)
    with pytest.raises(CelebAError, match="no usable image among the 1"):
        read_celeba(root, 16, on_bad_image="skip")


def test_partition_and_limit(tmp_path):
    root = write_celeba_fixture(tmp_path / "celeba", n=6, corrupt_index=4)
    test, _ = read_celeba(root, 16, partition="test")
    assert test.attributes["original_file"].tolist() == ["000006.jpg"]
    assert test.attributes["image_id"].tolist() == [0]
    train, counts = read_celeba(root, 16, partition="train", limit=2)
    assert train.attributes["original_file"].tolist() == ["000001.jpg", "000002.jpg"]
    assert counts["n_listed"] == 2
    # Only the first `limit` images are decoded: the corrupt fifth one is never opened.
    first, _ = read_celeba(root, 16, limit=4)
    assert len(first.images) == 4
    with pytest.raises(CelebAError, match="000005.jpg: corrupt"):
        read_celeba(root, 16, partition="val")
    with pytest.raises(ValueError, match=r"partition must be one of \['train', 'val', 'test'\]"):
        read_celeba(tmp_path / "not-even-there", 16, partition="dev")
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(CelebAError, match="list_eval_partition.txt: missing, cannot select"):
        read_celeba(root, 16, partition="test")
    assert "partition" not in read_celeba(root, 16, limit=1)[0].attributes


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(CelebAError, match="nowhere: CelebA folder not found"):
        read_celeba(tmp_path / "nowhere", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CelebAError, match="empty: missing img_align_celeba"):
        read_celeba(tmp_path / "empty", 16)
    root = write_celeba_fixture(tmp_path / "c", n=2)
    (root / "list_attr_celeba.txt").unlink()
    with pytest.raises(CelebAError, match="c: missing list_attr_celeba.txt"):
        read_celeba(root, 16)


def test_image_folder_must_be_a_folder(tmp_path):
    root = write_celeba_fixture(tmp_path / "c", n=2)
    listed = read_celeba_attributes(root)
    (root / "img_align_celeba").rename(root / "moved")
    with pytest.raises(CelebAError, match="img_align_celeba: image folder not found"):
        load_celeba_images(root, listed, 16)
    (root / "img_align_celeba").write_text("a file, not a folder")
    with pytest.raises(CelebAError, match="c: missing img_align_celeba"):
        read_celeba_attributes(root)


def test_select_by_attributes_then_load_only_those(tmp_path, celeba_fixture):
    # The conftest fixture hands out the writer; row 4 is corrupt but not smiling-and-male.
    root = celeba_fixture(tmp_path / "c", n=8, corrupt_index=4)
    listed = read_celeba_attributes(root)
    assert len(listed) == 8 and "celeba_Smiling" in listed
    chosen = listed[(listed["expression"] == "smiling") & (listed["gender"] == "male")]
    faces, counts = load_celeba_images(root, chosen, 16)
    # Smiling: even rows; male: rows divisible by 3 -> rows 0 and 6.
    assert faces.attributes["original_file"].tolist() == ["000001.jpg", "000007.jpg"]
    assert faces.attributes["image_id"].tolist() == faces.attributes["source_id"].tolist() == [0, 1]
    assert counts == {"n_listed": 2, "n_loaded": 2, **CLEAN_COUNTS}
    assert faces.masks.shape == (2, 16, 16)
    with pytest.raises(ValueError, match="attributes need an original_file column"):
        load_celeba_images(root, chosen.drop(columns="original_file"), 16)


def _set_token(line, index, value):
    tokens = line.split()
    tokens[index] = value
    return " ".join(tokens)


def _attr_error(root, edit=None, line=None):
    if edit is not None:
        edit_line(root / "list_attr_celeba.txt", line, edit)
    with pytest.raises(CelebAError) as info:
        read_celeba(root, 16)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(root / "list_attr_celeba.txt"))
    return message


def test_malformed_attribute_file(tmp_path):
    def make(name):
        return write_celeba_fixture(tmp_path / name, n=4)

    message = _attr_error(write_celeba_fixture(tmp_path / "bad_header", n=4, bad_header=True))
    assert message.endswith(
        "line 2 is not the official 40-name header (unexpected ['Smile'], missing ['Smiling'])"
    )
    message = _attr_error(write_celeba_fixture(tmp_path / "width", n=4, bad_row_width_index=2))
    assert message.endswith("line 5 has 39 values, expected 40")  # row 2 = line 2 + 3
    message = _attr_error(
        make("order"),
        lambda s: s.replace("Male Mouth_Slightly_Open", "Mouth_Slightly_Open Male"),
        2,
    )
    assert "same names in another order" in message
    message = _attr_error(make("short"), lambda s: s.rsplit(" ", 1)[0], 4)
    assert message.endswith("line 4 has 39 values, expected 40")
    message = _attr_error(make("long"), lambda s: s + "  1", 5)
    assert message.endswith("line 5 has 41 values, expected 40")
    message = _attr_error(make("value"), lambda s: _set_token(s, 5, "7"), 3)
    assert message.endswith("line 3 (000001.jpg) has '7' for Bald, expected -1 or 1")
    message = _attr_error(make("token"), lambda s: s[:-2] + " x", 6)
    assert message.endswith("line 6 (000004.jpg) has 'x' for Young, expected -1 or 1")
    message = _attr_error(make("count"), lambda s: "5", 1)
    assert message.endswith("count line says 5 images but 4 rows follow")
    message = _attr_error(make("countword"), lambda s: "many", 1)
    assert message.endswith("line 1 should be the image count, got 'many'")
    message = _attr_error(make("twice"), lambda s: s.replace("000004", "000001"), 6)
    assert message.endswith("000001.jpg is listed twice")


def test_malformed_landmark_and_partition_files(tmp_path):
    root = write_celeba_fixture(tmp_path / "marks", n=4)
    path = root / "list_landmarks_align_celeba.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["3", lines[1], *lines[2:4], lines[5]]) + "\n")
    with pytest.raises(CelebAError, match=r"landmarks_align_celeba.txt: no row for 000003.jpg"):
        read_celeba(root, 16)
    root = write_celeba_fixture(tmp_path / "marks2", n=4)
    edit_line(root / "list_landmarks_align_celeba.txt", 4, lambda s: s.replace("106", "1o6"))
    with pytest.raises(CelebAError, match=r"line 4 \(000002.jpg\) has '1o6' for righteye_x"):
        read_celeba(root, 16)
    root = write_celeba_fixture(tmp_path / "parts", n=4)
    edit_line(root / "list_eval_partition.txt", 2, lambda s: s[:-1] + "5")
    with pytest.raises(CelebAError, match=r"partition.txt: line 2 \(000002.jpg\) has '5'"):
        read_celeba(root, 16)
    root = write_celeba_fixture(tmp_path / "parts3", n=4)
    edit_line(root / "list_eval_partition.txt", 3, lambda s: "000001.jpg 1")
    with pytest.raises(CelebAError, match=r"partition.txt: 000001.jpg is listed twice"):
        read_celeba(root, 16)
    root = write_celeba_fixture(tmp_path / "parts2", n=4)
    edit_line(root / "list_eval_partition.txt", 3, lambda s: s + " 0")
    with pytest.raises(CelebAError, match=r"partition.txt: line 3 has 2 values, expected 1"):
        read_celeba(root, 16)


def test_invalid_arguments_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="on_bad_image must be 'error' or 'skip', got 'ignore'"):
        read_celeba(tmp_path / "absent", 16, on_bad_image="ignore")
    with pytest.raises(ValueError, match="resolution must be a positive integer, got 0"):
        read_celeba(tmp_path / "absent", 0)
    with pytest.raises(ValueError, match="limit must be a positive integer or None, got 0"):
        read_celeba(tmp_path / "absent", 16, limit=0)


def test_the_listing_reader_keeps_its_old_import_path():
    from diffusion_circuits.data import celeba, celeba_listing

    for name in ("CELEBA_ATTRIBUTES", "LANDMARKS", "CelebAError", "read_celeba_attributes"):
        assert getattr(celeba, name) is getattr(celeba_listing, name)
        assert name in celeba.__all__
