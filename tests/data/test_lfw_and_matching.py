import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.data.lfw import expand_with_augmentation, load_lfw_faces
from diffusion_circuits.data.matching import marginal_gap, select_matched
from diffusion_circuits.data.synthetic import attribute_marginals, sample_attributes


def test_lfw_faces_are_the_100_real_crops():
    faces = load_lfw_faces()
    assert faces.shape == (100, 25, 25) and faces.dtype == np.uint8
    assert faces.std() > 20  # real pictures, not a constant


def test_expansion_keeps_originals_first_and_copies_tied_to_their_source():
    faces = load_lfw_faces()
    a = expand_with_augmentation(faces, 260, 32, seed=0)
    b = expand_with_augmentation(faces, 260, 32, seed=0)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.images.shape == (260, 32, 32, 3)
    assert (a.images[..., 0] == a.images[..., 2]).all()
    table = a.attributes
    assert (table["source_id"][:100] == np.arange(100)).all()
    assert (table["source_id"][100:] == np.arange(160) % 100).all()
    assert not table["augmented"][:100].any() and table["augmented"][100:].all()
    assert table["source"].eq("lfw").all() and table["expression"].isna().all()
    for copy in (100, 150, 259):
        source = table["source_id"][copy]
        original, augmented = a.images[source, ..., 0], a.images[copy, ..., 0]
        assert not np.array_equal(original, augmented)
        mirrored = max(
            np.corrcoef(original.ravel(), augmented.ravel())[0, 1],
            np.corrcoef(original[:, ::-1].ravel(), augmented.ravel())[0, 1],
        )
        assert mirrored > 0.5


def test_matching_moves_marginals_to_the_target():
    skewed = sample_attributes(3000, np.random.default_rng(0))
    skewed.loc[skewed.index[:1500], "gender"] = "male"  # 72% male instead of 45%
    target = attribute_marginals(sample_attributes(2000, np.random.default_rng(1)))
    chosen = select_matched(skewed, target, 600, seed=0)
    assert len(set(chosen)) == 600
    random = np.random.default_rng(0).choice(len(skewed), 600, replace=False)
    matched_gap = sum(marginal_gap(skewed.iloc[chosen], target).values())
    random_gap = sum(marginal_gap(skewed.iloc[random], target).values())
    assert matched_gap < random_gap / 2
    np.testing.assert_array_equal(chosen, select_matched(skewed, target, 600, seed=0))


def test_matching_errors():
    table = sample_attributes(10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot select 11"):
        select_matched(table, {"male": 0.5}, 11, 0)
    with pytest.raises(ValueError, match="unknown target keys"):
        select_matched(table, {"bald": 0.5}, 5, 0)
    table.loc[0, "gender"] = pd.NA
    with pytest.raises(ValueError, match="missing"):
        select_matched(table, {"male": 0.5}, 5, 0)
