import numpy as np
import pytest

from diffusion_circuits.data.celeba import CROP, CelebAError, read_celeba
from diffusion_circuits.data.faceset import PART_LABELS


def test_reads_a_real_layout_folder(tmp_path, celeba_fixture):
    root = celeba_fixture(tmp_path / "celeba", n=6)
    faces, counts = read_celeba(root, 32)
    assert faces.images.shape == (6, 32, 32, 3) and faces.images.dtype == np.uint8
    table = faces.attributes
    assert table["expression"].tolist() == ["smiling", "neutral"] * 3
    assert table["gender"].tolist() == ["male", "female", "female"] * 2
    assert table["source"].eq("celeba").all() and table["celeba_Smiling"].dtype == bool
    assert counts == {
        "n_listed": 6,
        "n_loaded": 6,
        "n_skipped_missing": 0,
        "n_skipped_corrupt": 0,
        "n_skipped_greyscale": 0,
        "n_skipped_size": 0,
    }
    # Landmark-derived masks: the mouth label lies where the mouth corners map to.
    scale = 32 / (CROP[2] - CROP[0])
    mouth_y = round((153 - CROP[1]) * scale)
    mouth_x = round((90 - CROP[0]) * scale)
    assert faces.masks[0, mouth_y, mouth_x] == PART_LABELS["mouth"]
    assert set(np.unique(faces.masks)) <= set(PART_LABELS.values())


def test_partition_and_limit(tmp_path, celeba_fixture):
    root = celeba_fixture(tmp_path / "celeba", n=6)
    test, _ = read_celeba(root, 16, partition="test")
    assert test.attributes["original_file"].tolist() == ["000005.jpg", "000006.jpg"]
    first, _ = read_celeba(root, 16, limit=3)
    assert len(first.images) == 3


def test_no_landmarks_means_no_masks(tmp_path, celeba_fixture):
    faces, _ = read_celeba(celeba_fixture(tmp_path / "c", n=3, landmarks=False), 16)
    assert faces.masks is None


@pytest.mark.parametrize(
    ("defect", "message", "counter"),
    [
        ("missing_index", "000003.jpg: listed but missing", "n_skipped_missing"),
        ("corrupt_index", "000003.jpg: corrupt or truncated JPEG", "n_skipped_corrupt"),
        ("truncate_index", "000003.jpg: corrupt or truncated JPEG", "n_skipped_corrupt"),
        ("greyscale_index", "000003.jpg: greyscale JPEG", "n_skipped_greyscale"),
        ("wrong_size_index", "000003.jpg: not 178x218", "n_skipped_size"),
    ],
)
def test_bad_images_error_or_are_skipped_and_counted(
    tmp_path, celeba_fixture, defect, message, counter
):
    root = celeba_fixture(tmp_path / "celeba", n=5, **{defect: 2})
    with pytest.raises(CelebAError, match=message) as info:
        read_celeba(root, 16)
    assert "\n" not in str(info.value)
    faces, counts = read_celeba(root, 16, on_bad_image="skip")
    assert len(faces.images) == 4 and counts[counter] == 1 and counts["n_loaded"] == 4
    assert "000003.jpg" not in faces.attributes["original_file"].tolist()


def test_malformed_folders_and_files(tmp_path, celeba_fixture):
    with pytest.raises(CelebAError, match="CelebA folder not found"):
        read_celeba(tmp_path / "nowhere", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CelebAError, match="missing img_align_celeba"):
        read_celeba(tmp_path / "empty", 16)
    root = celeba_fixture(tmp_path / "header", n=3, bad_header=True)
    with pytest.raises(CelebAError, match="differing: Smiles, Smiling"):
        read_celeba(root, 16)
    root = celeba_fixture(tmp_path / "width", n=3, bad_row_width_index=1)
    with pytest.raises(CelebAError, match="line 4 has 39 values, expected 40"):
        read_celeba(root, 16)
    root = celeba_fixture(tmp_path / "count", n=3)
    text = (root / "list_attr_celeba.txt").read_text().replace("3\n", "4\n", 1)
    (root / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(CelebAError, match="count line says 4 images but 3 rows follow"):
        read_celeba(root, 16)
    root = celeba_fixture(tmp_path / "value", n=3)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    lines[2] = lines[2].replace(" 1", " 7", 1)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebAError, match="line 3 has '7'"):
        read_celeba(root, 16)
