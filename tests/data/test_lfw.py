import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.data import lfw_subset

from diffusion_circuits.data.lfw import expand_with_augmentation, load_lfw_faces

CANONICAL = ["expression", "gender", "age", "facial_hair", "glasses", "hair_colour"]


@pytest.fixture(scope="module")
def faces():
    return load_lfw_faces()


@pytest.fixture(scope="module")
def expanded(faces):
    return expand_with_augmentation(faces, 260, 32, seed=0)


def _unit_rows(images):
    flat = images.reshape(len(images), -1).astype(float)
    flat -= flat.mean(axis=1, keepdims=True)
    return flat / np.linalg.norm(flat, axis=1, keepdims=True)


def test_the_100_real_face_crops(faces):
    assert faces.shape == (100, 25, 25) and faces.dtype == np.uint8
    np.testing.assert_array_equal(faces, np.rint(lfw_subset()[:100] * 255).astype(np.uint8))
    assert faces.std() > 20  # real pictures, not a constant


def test_originals_come_first_resized_with_lanczos(faces, expanded):
    assert expanded.images.shape == (260, 32, 32, 3) and expanded.images.dtype == np.uint8
    for i in (0, 57, 99):
        resized = Image.fromarray(faces[i]).resize((32, 32), Image.Resampling.LANCZOS)
        np.testing.assert_array_equal(expanded.images[i, ..., 1], np.asarray(resized))
    assert expanded.masks is None


def test_greyscale_replicated_to_three_channels(expanded):
    images = expanded.images
    assert (images[..., 0] == images[..., 1]).all() and (images[..., 1] == images[..., 2]).all()


def test_attribute_table(expanded):
    table = expanded.attributes
    assert table["image_id"].tolist() == list(range(260))
    assert table["source_id"].tolist() == list(range(100)) + [i % 100 for i in range(160)]
    assert table["augmented"].tolist() == [False] * 100 + [True] * 160
    assert table["source"].eq("lfw").all()
    assert table[CANONICAL].isna().all().all()


def test_unknown_attributes_stay_na_through_parquet(expanded, tmp_path):
    expanded.attributes.to_parquet(tmp_path / "a.parquet")
    back = pd.read_parquet(tmp_path / "a.parquet")
    assert back[CANONICAL].isna().all().all() and back["augmented"].dtype == bool


def test_deterministic_from_the_seed(faces, expanded):
    again = expand_with_augmentation(faces, 260, 32, seed=0)
    assert again.images.tobytes() == expanded.images.tobytes()
    other = expand_with_augmentation(faces, 260, 32, seed=1)
    np.testing.assert_array_equal(other.images[:100], expanded.images[:100])
    assert (other.images[100:] != expanded.images[100:]).any(axis=(1, 2, 3)).all()


def test_copies_differ_from_but_resemble_their_own_source(expanded):
    grey = expanded.images[..., 0]
    sources = expanded.attributes["source_id"].to_numpy()[100:]
    copies = _unit_rows(grey[100:])
    straight = copies @ _unit_rows(grey[:100]).T
    mirrored = copies @ _unit_rows(grey[:100, :, ::-1]).T
    best = np.maximum(straight, mirrored)  # a copy may be flipped
    own = best[np.arange(160), sources]
    assert not (grey[100:] == grey[sources]).all(axis=(1, 2)).any()
    assert np.median(own) > 0.65 and own.min() > 0.35
    # Among all 100 faces the copy resembles its own source most (chance: 1%).
    assert (best.argmax(axis=1) == sources).mean() > 0.85
    # Flips with p = 0.5: the mirrored original fits better for about half the copies.
    flipped = mirrored[np.arange(160), sources] > straight[np.arange(160), sources]
    assert 0.3 < flipped.mean() < 0.7


def test_edge_replication_lets_no_border_in():
    flat = np.full((2, 25, 25), 128, np.uint8)
    for resolution in (16, 32):
        out = expand_with_augmentation(flat, 60, resolution, seed=3).images[2:, ..., 0]
        # A constant face stays constant; only brightness (+-10% of 255) moves it.
        assert (out.max(axis=(1, 2)) == out.min(axis=(1, 2))).all()
        assert out.min() >= 128 - 26 and out.max() <= 128 + 26


def test_fewer_than_the_sources_and_other_resolutions(faces):
    small = expand_with_augmentation(faces, 30, 64, seed=0)
    assert small.images.shape == (30, 64, 64, 3)
    assert not small.attributes["augmented"].any()
    assert small.attributes["source_id"].tolist() == list(range(30))


def test_invalid_input():
    with pytest.raises(ValueError, match=r"faces must be uint8 \[N, H, W\], got float64"):
        expand_with_augmentation(np.zeros((2, 5, 5)), 4, 8, seed=0)
    with pytest.raises(ValueError, match=r"got uint8 \(2, 5, 5, 3\)"):
        expand_with_augmentation(np.zeros((2, 5, 5, 3), np.uint8), 4, 8, seed=0)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        expand_with_augmentation(np.zeros((2, 5, 5), np.uint8), 0, 8, seed=0)
    with pytest.raises(ValueError, match="resolution must be a positive integer, got -8"):
        expand_with_augmentation(np.zeros((2, 5, 5), np.uint8), 4, -8, seed=0)
    with pytest.raises(ValueError, match="faces is empty"):
        expand_with_augmentation(np.zeros((0, 5, 5), np.uint8), 4, 8, seed=0)
