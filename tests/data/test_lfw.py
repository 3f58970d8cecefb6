import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.data import lfw_subset

from diffusion_circuits.data.lfw import (
    _apply_augmentation,
    _Augmentation,
    _draw_augmentation,
    expand_with_augmentation,
    load_lfw_faces,
)

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
    # Replay the generator to know which copies were mirrored.
    rng = np.random.default_rng(0)
    flips = np.array([_draw_augmentation(rng, 32).flip for _ in range(160)])
    assert 0.35 < flips.mean() < 0.65
    copies = np.where(flips[:, None, None], grey[100:, :, ::-1], grey[100:])
    pearson = _unit_rows(copies) @ _unit_rows(grey[:100]).T
    own = pearson[np.arange(160), sources]
    # Cross-check one coefficient against numpy's Pearson.
    np.testing.assert_allclose(
        own[7], np.corrcoef(copies[7].ravel(), grey[sources[7]].ravel())[0, 1], rtol=1e-12
    )
    assert not (grey[100:] == grey[sources]).all(axis=(1, 2)).any()
    assert np.median(own) > 0.65 and (own > 0.5).mean() > 0.95 and own.min() > 0.35
    # Among all 100 faces the copy resembles its own source most (chance: 1%).
    assert (pearson.argmax(axis=1) == sources).mean() > 0.85


def _ramp(resolution):
    """An asymmetric test picture: a horizontal ramp plus a bright top-left block."""
    picture = np.tile(np.linspace(40, 200, resolution), (resolution, 1))
    picture[: resolution // 4, : resolution // 4] = 255
    return np.rint(picture).astype(np.uint8)


IDENTITY = _Augmentation(
    flip=False, scale=1.0, angle=0.0, shift=(0.0, 0.0), contrast=1.0, brightness=0.0
)


def test_geometry_follows_the_documented_recipe():
    face = _ramp(16)
    image = Image.fromarray(face)

    def apply(**changes):
        return _apply_augmentation(image, IDENTITY._replace(**changes), 16).astype(int)

    np.testing.assert_array_equal(apply(), face)
    np.testing.assert_array_equal(apply(flip=True), face[:, ::-1])
    # A whole-pixel shift moves the picture; edge replication fills the vacated strip.
    shifted = apply(shift=(3.0, -2.0))
    np.testing.assert_array_equal(shifted[:14, 3:], face[2:, :13])
    np.testing.assert_array_equal(shifted[:14, :3], np.repeat(face[2:, :1], 3, axis=1))
    # 90 degrees counter-clockwise as seen (the draws stay within +-8; this fixes the sign).
    np.testing.assert_array_equal(apply(angle=90.0), np.rot90(face))
    # Zoom 2 about the centre: output column c reads face column (c + 0.5 - 8) / 2 + 8 - 0.5
    # (pixel centres at +0.5). Pillow's bicubic bends a ramp by up to ~0.15 of a step
    # (5.3 here) plus rounding, so allow 2 levels; a centre off by one pixel is 5 off.
    zoomed = apply(scale=2.0)
    columns = np.arange(2, 14)
    ramp = 40 + 160 * ((columns + 0.5 - 8) / 2 + 7.5) / 15
    assert np.abs(zoomed[8:, 2:14] - ramp).max() <= 2
    # Photometric: v -> (v - mean) * contrast + mean + brightness.
    expected = (face - face.mean()) * 1.1 + face.mean() - 12.5
    np.testing.assert_array_equal(
        apply(contrast=1.1, brightness=-12.5), np.clip(np.rint(expected), 0, 255)
    )


@pytest.mark.parametrize("resolution", [5, 16, 32, 64])
def test_no_border_enters_even_at_the_extremes(resolution):
    flat = Image.fromarray(np.full((resolution, resolution), 128, np.uint8))
    edge = 2.0 * resolution / 32
    for flip in (False, True):
        for angle in (-8.0, 8.0):
            for shift in ((edge, edge), (-edge, edge), (edge, -edge), (-edge, -edge)):
                aug = IDENTITY._replace(flip=flip, scale=0.9, angle=angle, shift=shift)
                assert (_apply_augmentation(flat, aug, resolution) == 128).all()


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
