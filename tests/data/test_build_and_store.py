import numpy as np
import pandas as pd
import pytest

from diffusion_circuits.data.build import build_natural, build_synthetic
from diffusion_circuits.data.store import assign_split, load_faceset, probe_image_ids, save_faceset
from diffusion_circuits.params import Params
from params_helper import params_with


def params(**sections) -> Params:
    base = {"synthetic": {"n_images": 40}, "natural": {"n_images": 150}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return params_with(base)


def test_split_is_by_source_and_never_straddles():
    sources = np.arange(300) % 100
    split = assign_split(sources, 0.2, seed=0)
    held = set(sources[split == "heldout"])
    assert len(held) == 20
    assert held.isdisjoint(set(sources[split == "train"]))
    with pytest.raises(ValueError, match="at least 2 distinct"):
        assign_split(np.zeros(5), 0.2, 0)


def test_both_datasets_share_format_and_round_trip(tmp_path):
    p = params()
    synthetic, summary = build_synthetic(p)
    natural, natural_summary = build_natural(p, synthetic.attributes)
    assert synthetic.images.shape[1:] == natural.images.shape[1:] == (32, 32, 3)
    for faces in (synthetic, natural):  # greyscale LFW -> both greyscale
        assert (faces.images[..., 0] == faces.images[..., 2]).all()
    assert natural_summary["source"] == "lfw" and natural_summary["n_distinct_sources"] == 100
    assert summary["marginals"]["male"] == pytest.approx(
        (synthetic.attributes["gender"] == "male").mean()
    )
    save_faceset(natural, tmp_path / "natural")
    loaded = load_faceset(tmp_path / "natural")
    assert loaded.images.tobytes() == natural.images.tobytes() and loaded.masks is None
    pd.testing.assert_frame_equal(loaded.attributes, natural.attributes)
    n_heldout = loaded.attributes.query("split == 'heldout'")["source_id"].nunique()
    ids, selection = probe_image_ids(loaded.attributes, 100)
    # never a trained-on face: all held-out sources when there are fewer than asked for
    assert selection == "heldout" and len(ids) == n_heldout < 100
    assert loaded.attributes.set_index("image_id").loc[ids, "source_id"].is_unique
    ids, selection = probe_image_ids(loaded.attributes, 10)
    assert selection == "heldout" and len(ids) == 10
    assert set(loaded.attributes.set_index("image_id").loc[ids, "split"]) == {"heldout"}


def test_celeba_source_is_matched_and_recorded(tmp_path, celeba_fixture):
    root = celeba_fixture(tmp_path / "celeba", n=30)
    p = params(
        natural={"source": "celeba", "celeba_dir": str(root), "n_images": 12},
        data={"colour": "rgb"},
    )
    synthetic, _ = build_synthetic(p)
    natural, summary = build_natural(p, synthetic.attributes)
    assert len(natural.images) == 12 and natural.masks.shape == (12, 32, 32)
    assert summary["source"] == "celeba" and summary["n_loaded"] >= 12
    assert set(summary["marginal_gap"]) >= {"male", "smiling"}
    too_many = params(natural={"source": "celeba", "celeba_dir": str(root), "n_images": 40})
    with pytest.raises(ValueError, match="only 30 usable CelebA images"):
        build_natural(too_many, synthetic.attributes)


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_truncated_images_file_is_one_line_naming_it(tmp_path, keep):
    from diffusion_circuits.cli import is_user_error, user_message
    from diffusion_circuits.data.faceset import FaceSet

    images = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    attributes = pd.DataFrame({"image_id": range(8), "source_id": range(8), "split": "train"})
    save_faceset(FaceSet(images=images, attributes=attributes, masks=None), tmp_path)
    path = tmp_path / "images.npz"
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    with pytest.raises(Exception) as info:
        load_faceset(tmp_path)
    assert is_user_error(info.value)
    line = user_message(info.value)
    assert str(path) in line and "truncated" in line and "\n" not in line
