import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.data.faceset import PART_LABELS
from diffusion_circuits.data.synthetic import (
    HAIR_COLOUR_PROBS,
    P_FACIAL_HAIR,
    P_GLASSES,
    attribute_marginals,
    draw_face,
    generate_synthetic_faces,
    sample_attributes,
)


def test_same_seed_same_bytes_other_seed_other_faces():
    a = generate_synthetic_faces(6, 32, seed=3)
    b = generate_synthetic_faces(6, 32, seed=3)
    c = generate_synthetic_faces(6, 32, seed=4)
    assert a.images.tobytes() == b.images.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    pd.testing.assert_frame_equal(a.attributes, b.attributes)
    assert a.images.tobytes() != c.images.tobytes()


def test_format_and_part_masks():
    faces = generate_synthetic_faces(40, 32, seed=0)
    assert faces.images.shape == (40, 32, 32, 3) and faces.images.dtype == np.uint8
    assert faces.masks.shape == (40, 32, 32) and faces.masks.dtype == np.uint8
    assert set(np.unique(faces.masks)) <= set(PART_LABELS.values())
    for part, label in PART_LABELS.items():
        present = (faces.masks == label).any(axis=(1, 2)).mean()
        assert present > 0.9, part
    # The face sits in the middle of the picture, background at the corners.
    assert (faces.masks[:, 16, 16] != PART_LABELS["background"]).all()
    assert (faces.masks[:, 0, 0] == PART_LABELS["background"]).mean() > 0.9
    assert len(faces.attributes) == 40 and faces.attributes["image_id"].tolist() == list(range(40))


def test_attribute_correlations_hold():
    table = sample_attributes(20000, np.random.default_rng(0))
    male = table["gender"] == "male"
    old = table["age"] == "old"
    grey = table["hair_colour"] == "grey"
    assert table.loc[male, "facial_hair"].mean() == pytest.approx(P_FACIAL_HAIR["male"], abs=0.02)
    assert table.loc[~male, "facial_hair"].mean() == pytest.approx(
        P_FACIAL_HAIR["female"], abs=0.01
    )
    assert grey[old].mean() == pytest.approx(HAIR_COLOUR_PROBS["old"][3], abs=0.03)
    assert grey[~old].mean() == pytest.approx(HAIR_COLOUR_PROBS["young"][3], abs=0.01)
    assert table.loc[old, "glasses"].mean() == pytest.approx(P_GLASSES["old"], abs=0.03)
    assert table.loc[~old, "glasses"].mean() == pytest.approx(P_GLASSES["young"], abs=0.01)


def _draw(**changes):
    row = sample_attributes(1, np.random.default_rng(1)).iloc[0].copy()
    row.update(pd.Series({"expression": "neutral", "glasses": False, "facial_hair": False}))
    row.update(pd.Series(changes))
    return draw_face(row, 64, np.random.default_rng(7))


def test_changing_one_attribute_changes_only_its_region():
    neutral, labels = _draw()
    smiling, smiling_labels = _draw(expression="smiling")
    glasses, _ = _draw(glasses=True)
    changed = np.abs(smiling.astype(int) - neutral.astype(int)).sum(-1) > 0
    rows = np.nonzero(changed.any(axis=1))[0]
    mouth = (labels == PART_LABELS["mouth"]) | (smiling_labels == PART_LABELS["mouth"])
    mouth_rows = np.nonzero(mouth.any(axis=1))[0]
    assert (
        changed.any() and rows.min() >= mouth_rows.min() - 4 and rows.max() <= mouth_rows.max() + 4
    )
    changed = np.abs(glasses.astype(int) - neutral.astype(int)).sum(-1) > 0
    rows = np.nonzero(changed.any(axis=1))[0]
    eye_rows = np.nonzero((labels == PART_LABELS["eyes"]).any(axis=1))[0]
    assert changed.any() and rows.min() >= eye_rows.min() - 6 and rows.max() <= eye_rows.max() + 6


def test_greyscale_replicates_luminance():
    faces = generate_synthetic_faces(4, 32, seed=0, greyscale=True)
    assert (faces.images[..., 0] == faces.images[..., 1]).all()
    assert (faces.images[..., 1] == faces.images[..., 2]).all()


def test_marginals_by_hand():
    table = pd.DataFrame(
        {
            "expression": ["smiling", "neutral", "smiling", "smiling"],
            "gender": ["male", "female", "female", "female"],
            "age": ["old", "young", "young", "young"],
            "glasses": [True, False, False, False],
            "facial_hair": [True, False, False, False],
            "hair_colour": ["grey", "black", "blond", "blond"],
        }
    )
    marginals = attribute_marginals(table)
    assert marginals["smiling"] == 0.75 and marginals["male"] == 0.25
    assert marginals["young"] == 0.75 and marginals["blond_hair"] == 0.5


@pytest.mark.parametrize(("n", "resolution"), [(0, 32), (4, 30), (4, 8), (4, 256)])
def test_bad_arguments(n, resolution):
    with pytest.raises(ValueError, match="must be"):
        generate_synthetic_faces(n, resolution)
