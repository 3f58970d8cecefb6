"""Head-role scores and labels from hand-made maps; edge and texture maps by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.filters import sobel

from diffusion_circuits.data.faceset import PART_LABELS
from diffusion_circuits.metrics.head_roles import (
    attention_grid,
    edge_map,
    pool_to_grid,
    role_scores,
    texture_map,
)

RNG = np.random.default_rng(0)


def _pool(maps: np.ndarray, side: int) -> torch.Tensor:
    pooled = F.avg_pool2d(torch.from_numpy(maps)[:, None], maps.shape[-1] // side)[:, 0].flatten(1)
    assert torch.allclose(pool_to_grid(maps, (side, side)), pooled)
    return pooled


def test_edge_map_is_sobel_of_each_image_alone():
    images = RNG.random((3, 12, 12))
    edges = edge_map(images)
    for i in range(3):
        assert np.allclose(edges[i], sobel(images[i]))  # no smoothing across the batch


def test_texture_map_is_3x3_local_variance_by_brute_force():
    images = RNG.random((2, 6, 7))
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="symmetric")  # scipy's "reflect"
    expected = np.empty_like(images)
    for b in range(2):
        for r in range(6):
            for c in range(7):
                expected[b, r, c] = padded[b, r : r + 3, c : c + 3].var()
    assert np.allclose(texture_map(images), expected)
    assert texture_map(np.full((1, 4, 4), 0.3)).max() == pytest.approx(0.0)


def test_attention_grid_keeps_the_aspect_ratio():
    assert attention_grid(256, (64, 64)) == (16, 16)
    assert attention_grid(8, (32, 64)) == (2, 4)
    with pytest.raises(ValueError, match="grid"):
        attention_grid(10, (64, 64))


def _fixture():
    """Two 16x16 images; heads on a 4x4 grid: edge copy, eyes mask, uniform, texture copy."""
    edges, texture = RNG.random((2, 16, 16)), RNG.random((2, 16, 16))
    masks = np.zeros((2, 16, 16), dtype=np.uint8)
    masks[:, 4:8, 0:16] = PART_LABELS["eyes"]
    masks[:, 8:12, 4:12] = PART_LABELS["nose"]
    eyes = (masks == PART_LABELS["eyes"]).astype(np.float64)
    saliency = torch.stack(
        [
            _pool(edges, 4),
            _pool(eyes, 4),
            torch.full((2, 16), 1 / 16, dtype=torch.float64),
            _pool(texture, 4),
        ],
        dim=1,
    )
    return saliency, edges, texture, masks


def test_role_scores_recover_the_map_a_head_copies():
    saliency, edges, texture, masks = _fixture()
    scores = role_scores(saliency, edges, texture, masks, PART_LABELS)
    assert list(scores.columns[:6]) == [
        "image_id",
        "head",
        "edge_score",
        "texture_score",
        "semantic_score",
        "semantic_part",
    ]
    assert {"part_face", "part_eyes", "part_nose", "part_mouth", "part_hair"} <= set(scores.columns)
    assert "part_background" not in scores.columns
    by_head = scores.set_index(["image_id", "head"])
    assert np.allclose(by_head.xs(0, level="head")["edge_score"], 1.0)
    assert np.allclose(by_head.xs(3, level="head")["texture_score"], 1.0)
    eyes_head = by_head.xs(1, level="head")
    assert np.allclose(eyes_head["semantic_score"], 1.0)
    assert set(eyes_head["semantic_part"]) == {"eyes"}
    assert eyes_head["part_face"].isna().all()  # no face pixels: undefined, not 0
    assert (
        by_head.xs(2, level="head")[["edge_score", "texture_score", "semantic_score"]]
        .isna()
        .all()
        .all()
    )


def test_without_masks_semantic_is_nan():
    saliency, edges, texture, _ = _fixture()
    scores = role_scores(saliency, edges, texture, None, PART_LABELS)
    assert scores["semantic_score"].isna().all() and scores["semantic_part"].isna().all()
    assert not any(c.startswith("part_") for c in scores.columns)


def test_bad_input_is_rejected():
    saliency, edges, texture, masks = _fixture()
    with pytest.raises(ValueError, match="edge_map must be"):
        role_scores(saliency, edges[:1], texture, masks, PART_LABELS)
    with pytest.raises(ValueError, match="grid"):
        role_scores(saliency, edges, texture, masks, PART_LABELS, grid=(2, 2))
