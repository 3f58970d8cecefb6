import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from diffusion_circuits.data import face_drawing
from diffusion_circuits.data.faceset import PART_LABELS, FaceSet
from diffusion_circuits.data.store import to_greyscale
from diffusion_circuits.data.synthetic import (
    ATTRIBUTE_COLUMNS,
    EXPECTED_MARGINALS,
    HAIR_COLOUR_PROBS,
    HAIR_COLOURS,
    P_FACIAL_HAIR,
    P_GLASSES,
    P_MALE,
    P_OLD,
    P_SMILING,
    attribute_marginals,
    draw_face,
    generate_synthetic_faces,
    sample_attributes,
)

BASE = {
    "expression": "neutral",
    "facial_hair": False,
    "gender": "male",
    "age": "young",
    "glasses": False,
    "hair_colour": "brown",
}


def _draw(seed: int = 7, size: int = 64, **changes):
    return draw_face({**BASE, **changes}, size, np.random.default_rng(seed))


# A LANCZOS downsampling by 4 spreads a change over 3 output pixels each way.
LANCZOS_REACH = 3


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.nonzero(mask.any(axis=1))[0]


# --- determinism and format -------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_faces():
    a = generate_synthetic_faces(6, 32, seed=3)
    b = generate_synthetic_faces(6, 32, seed=3)
    c = generate_synthetic_faces(6, 32, seed=4)
    assert a.images.tobytes() == b.images.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    pd.testing.assert_frame_equal(a.attributes, b.attributes)
    assert a.images.tobytes() != c.images.tobytes() and a.masks.tobytes() != c.masks.tobytes()
    grey = generate_synthetic_faces(6, 32, seed=3, greyscale=True)
    assert grey.images.tobytes() == generate_synthetic_faces(6, 32, 3, True).images.tobytes()


def test_no_global_random_state_used():
    # The legacy global generator is exactly what must stay untouched here.
    np.random.seed(0)  # noqa: NPY002
    before = np.random.random()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    generate_synthetic_faces(3, 16, seed=0)
    assert np.random.random() == before  # noqa: NPY002


@pytest.mark.parametrize("resolution", [32, 64])
def test_format_and_part_masks(resolution):
    faces = generate_synthetic_faces(40, resolution, seed=0)
    assert isinstance(faces, FaceSet)
    assert faces.images.shape == (40, resolution, resolution, 3)
    assert faces.images.dtype == np.uint8
    assert faces.masks.shape == (40, resolution, resolution) and faces.masks.dtype == np.uint8
    assert set(np.unique(faces.masks)) <= set(PART_LABELS.values())
    for part, label in PART_LABELS.items():
        assert (faces.masks == label).any(axis=(1, 2)).mean() > 0.95, part
    # The face sits in the middle of the picture, background at the top corners.
    centre = resolution // 2
    assert (faces.masks[:, centre, centre] != PART_LABELS["background"]).all()
    assert (faces.masks[:, 0, [0, -1]] == PART_LABELS["background"]).all()
    attributes = faces.attributes
    assert attributes["image_id"].tolist() == attributes["source_id"].tolist() == list(range(40))
    assert set(ATTRIBUTE_COLUMNS) <= set(attributes.columns)


def test_no_two_faces_identical():
    faces = generate_synthetic_faces(200, 16, seed=0)
    assert len({image.tobytes() for image in faces.images}) == 200


def test_mask_vote_ties_go_to_the_later_part():
    face, mouth = PART_LABELS["face"], PART_LABELS["mouth"]
    labels = np.zeros((8, 8), np.uint8)
    labels[:4, :4] = face  # block (0, 0): all face
    labels[:4, 4:] = face
    labels[:2, 4:] = mouth  # block (0, 1): 8 face, 8 mouth -> mouth
    labels[4:, 4:] = PART_LABELS["eyes"]
    labels[4, 4] = face  # block (1, 1): 15 eyes, 1 face -> eyes
    expected = [[face, mouth], [PART_LABELS["background"], PART_LABELS["eyes"]]]
    np.testing.assert_array_equal(face_drawing._vote(labels, 2), expected)


# --- attribute sampling -------------------------------------------------------------


def test_expected_marginals_by_hand():
    # e.g. grey: 0.25 * 0.60 + 0.75 * 0.03; facial hair: 0.45 * 0.35 + 0.55 * 0.01
    hand = {
        "smiling": 0.5,
        "male": 0.45,
        "young": 0.75,
        "eyeglasses": 0.1625,
        "facial_hair": 0.163,
        "black_hair": 0.3,
        "brown_hair": 0.3375,
        "blond_hair": 0.19,
        "grey_hair": 0.1725,
    }
    assert pytest.approx(hand, abs=1e-12) == EXPECTED_MARGINALS
    measured = attribute_marginals(sample_attributes(20000, np.random.default_rng(5)))
    assert measured == pytest.approx(hand, abs=0.015)


def test_attribute_correlations_hold():
    table = sample_attributes(4000, np.random.default_rng(0))
    male = (table["gender"] == "male").to_numpy()
    old = (table["age"] == "old").to_numpy()
    hair = table["hair_colour"].to_numpy()
    facial_hair, glasses = table["facial_hair"].to_numpy(), table["glasses"].to_numpy()
    smiling = (table["expression"] == "smiling").to_numpy()

    def agrees(hits: np.ndarray, p: float) -> bool:  # exact binomial test, not rejected
        return stats.binomtest(int(hits.sum()), len(hits), p).pvalue > 1e-3

    assert agrees(male, P_MALE) and agrees(old, P_OLD) and agrees(smiling, P_SMILING)
    assert agrees(facial_hair[male], P_FACIAL_HAIR["male"])
    assert agrees(facial_hair[~male], P_FACIAL_HAIR["female"])
    assert agrees(glasses[old], P_GLASSES["old"]) and agrees(glasses[~old], P_GLASSES["young"])
    for age, rows in (("old", old), ("young", ~old)):
        observed = [(hair[rows] == colour).sum() for colour in HAIR_COLOURS]
        expected = np.asarray(HAIR_COLOUR_PROBS[age]) * rows.sum()
        assert stats.chisquare(observed, expected).pvalue > 1e-3, age
    assert facial_hair[male].mean() > 10 * facial_hair[~male].mean()
    assert (hair[old] == "grey").mean() > 10 * (hair[~old] == "grey").mean()
    assert glasses[old].mean() > 2 * glasses[~old].mean()
    # Expression is independent of gender.
    crosstab = pd.crosstab(male, smiling).to_numpy()
    assert stats.chi2_contingency(crosstab).pvalue > 1e-3


def test_sampled_values_are_the_documented_ones():
    table = sample_attributes(500, np.random.default_rng(1))
    assert set(table["expression"]) == {"neutral", "smiling"}
    assert set(table["gender"]) == {"female", "male"}
    assert set(table["age"]) == {"young", "old"}
    assert set(table["hair_colour"]) == set(HAIR_COLOURS)
    assert table["facial_hair"].dtype == bool and table["glasses"].dtype == bool


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
    assert list(marginals) == list(EXPECTED_MARGINALS)
    assert marginals["smiling"] == 0.75 and marginals["male"] == 0.25
    assert marginals["young"] == 0.75 and marginals["blond_hair"] == 0.5
    assert marginals["grey_hair"] == marginals["eyeglasses"] == marginals["facial_hair"] == 0.25
    assert marginals["brown_hair"] == 0.0


# --- what each attribute changes in the drawing -----------------------------------------


def test_same_generator_same_face():
    a, b = _draw(), _draw()
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()


@pytest.mark.parametrize("seed", [0, 7, 11])
def test_expression_changes_only_the_mouth(seed):
    neutral, labels = _draw(seed)
    smiling, smiling_labels = _draw(seed, expression="smiling")
    changed = np.abs(smiling.astype(int) - neutral.astype(int)).sum(-1) > 0
    mouth = (labels == PART_LABELS["mouth"]) | (smiling_labels == PART_LABELS["mouth"])
    rows, cols = _rows(mouth), _rows(mouth.T)
    changed_rows, changed_cols = _rows(changed), _rows(changed.T)
    assert changed.any()
    reach = LANCZOS_REACH
    assert rows.min() - reach <= changed_rows.min() and changed_rows.max() <= rows.max() + reach
    assert cols.min() - reach <= changed_cols.min() and changed_cols.max() <= cols.max() + reach
    # Labels change only between face and mouth; the open smile is taller and larger.
    differ = labels != smiling_labels
    assert set(np.unique(labels[differ])) | set(np.unique(smiling_labels[differ])) <= {
        PART_LABELS["face"],
        PART_LABELS["mouth"],
    }
    smile, band = smiling_labels == PART_LABELS["mouth"], labels == PART_LABELS["mouth"]
    assert smile.sum() > band.sum() and len(_rows(smile)) > len(_rows(band))
    # The smile is a bowl (wider at its top than at its bottom); the neutral mouth a band.
    widths = smile.sum(axis=1)[_rows(smile)]
    assert widths[0] > widths[-1]
    assert len(_rows(band)) <= 3 and len(_rows(band.T)) > 3 * len(_rows(band))


def test_glasses_change_only_the_eye_region_and_no_label():
    plain, labels = _draw()
    glasses, glasses_labels = _draw(glasses=True)
    np.testing.assert_array_equal(labels, glasses_labels)
    changed = np.abs(glasses.astype(int) - plain.astype(int)).sum(-1) > 0
    eye_rows = _rows(labels == PART_LABELS["eyes"])
    rows = _rows(changed)
    assert changed.sum() > 40
    assert eye_rows.min() - 6 <= rows.min() and rows.max() <= eye_rows.max() + 6
    # The rims are dark: the changed pixels got darker.
    assert glasses[changed].mean() < plain[changed].mean() - 30


def test_facial_hair_covers_the_lower_face_with_hair_label():
    plain, labels = _draw()
    bearded, bearded_labels = _draw(facial_hair=True)
    changed = np.abs(bearded.astype(int) - plain.astype(int)).sum(-1) > 0
    eye_y = _rows(labels == PART_LABELS["eyes"]).max()
    assert changed.any() and _rows(changed).min() > eye_y
    became_hair = (bearded_labels == PART_LABELS["hair"]) & (labels != PART_LABELS["hair"])
    assert became_hair.sum() > 50 and (labels[became_hair] == PART_LABELS["face"]).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_women_have_long_hair(seed):
    _, male = _draw(seed, gender="male")
    _, female = _draw(seed, gender="female")
    mouth_row = _rows(male == PART_LABELS["mouth"]).max()
    assert not (male[mouth_row:] == PART_LABELS["hair"]).any()
    assert (female[mouth_row:] == PART_LABELS["hair"]).sum() > 40
    assert (female == PART_LABELS["hair"]).sum() > 1.5 * (male == PART_LABELS["hair"]).sum()


def test_hair_colours_are_four_luminance_levels():
    # The default pipeline is greyscale: hair colour must survive as luminance.
    luminance = []
    for colour in HAIR_COLOURS:
        image, labels = _draw(gender="female", hair_colour=colour)
        grey = to_greyscale(image)[..., 0].astype(float)
        luminance.append(np.median(grey[labels == PART_LABELS["hair"]]))
    assert np.all(np.diff(luminance) > 30), dict(zip(HAIR_COLOURS, luminance, strict=True))


@pytest.mark.parametrize("seed", [4, 5])
def test_old_faces_are_greyer_and_wrinkled(seed):
    young, labels = _draw(seed)
    old, old_labels = _draw(seed, age="old")
    np.testing.assert_array_equal(labels, old_labels)
    face = labels == PART_LABELS["face"]
    saturation = [np.ptp(np.median(image[face], axis=0)) for image in (young, old)]
    assert saturation[1] < 0.85 * saturation[0]
    # Wrinkles: dark lines inside the face (without them both counts agree within ~5).
    dark = []
    for image in (young, old):
        grey = to_greyscale(image)[..., 0][face].astype(float)
        dark.append((grey < 0.85 * np.median(grey)).sum())
    assert dark[1] > dark[0] + 30
    background = labels == PART_LABELS["background"]
    top = background & (np.arange(64)[:, None] < 8)
    np.testing.assert_array_equal(young[top], old[top])


# --- greyscale and arguments ------------------------------------------------------------


def test_greyscale_replicates_luminance():
    colour = generate_synthetic_faces(4, 32, seed=0)
    faces = generate_synthetic_faces(4, 32, seed=0, greyscale=True)
    assert (faces.images[..., 0] == faces.images[..., 1]).all()
    assert (faces.images[..., 1] == faces.images[..., 2]).all()
    np.testing.assert_array_equal(faces.images, to_greyscale(colour.images))
    np.testing.assert_array_equal(faces.masks, colour.masks)
    # ITU-R 601, as Pillow's "L" conversion computes it (up to rounding).
    pillow = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in colour.images])
    assert np.abs(faces.images[..., 0].astype(int) - pillow).max() <= 1


@pytest.mark.parametrize(
    ("n", "resolution"),
    [
        (0, 32),
        (-1, 32),
        (2.5, 32),
        (True, 32),
        (4, 30),
        (4, 18),
        (4, 20),  # a multiple of 4, not of 8
        (4, 36),
        (4, 8),
        (4, 12),
        (4, 136),
        (4, 256),
        (4, 32.0),
    ],
)
def test_bad_arguments(n, resolution):
    with pytest.raises(ValueError, match="must be"):
        generate_synthetic_faces(n, resolution)


@pytest.mark.parametrize("resolution", [16, 24, 128])
def test_accepted_resolutions(resolution):
    faces = generate_synthetic_faces(1, resolution, seed=2)
    assert faces.images.shape == (1, resolution, resolution, 3)
    assert set(np.unique(faces.masks)) == set(PART_LABELS.values())


def test_sample_attributes_rejects_empty():
    with pytest.raises(ValueError, match="n must be"):
        sample_attributes(0, np.random.default_rng(0))
