"""The sample-quality feature network: label space rule, learnability, save and load."""

import numpy as np
import pandas as pd
import torch

from diffusion_circuits.analysis.sample_quality import (
    FeatureSpace,
    load_feature_space,
    save_feature_space,
)
from diffusion_circuits.metrics.sample_quality import precision_recall_density_coverage
from diffusion_circuits.model.feature_net import add_pixel_noise, label_space, train_feature_net


def test_attributes_when_present_else_identity():
    with_attributes = pd.DataFrame(
        {"source_id": [0, 1, 2], "gender": ["male", "female", "male"], "age": ["young"] * 3,
         "glasses": [True, False, pd.NA]}
    )  # fmt: skip
    space = label_space(with_attributes)
    # age has one value and glasses a missing one: neither is a usable target
    assert space.kind == "attributes" and space.heads == {"gender": ["female", "male"]}
    assert space.encode(with_attributes)[:, 0].tolist() == [1, 0, 1]
    lfw_like = pd.DataFrame({"source_id": [5, 5, 9], "gender": [pd.NA] * 3})
    identity = label_space(lfw_like)
    assert identity.kind == "identity" and identity.heads == {"identity": [5, 9]}
    assert identity.encode(lfw_like)[:, 0].tolist() == [0, 0, 1]


def test_learns_a_visible_attribute_and_round_trips(tmp_path):
    """Bright vs dark images: the network must learn it well above the 50% null."""
    gen = torch.Generator().manual_seed(0)
    n = 64
    bright = torch.arange(n) % 2 == 0
    x = torch.where(bright[:, None, None, None], 0.6, -0.6) + 0.3 * torch.randn(
        n, 1, 16, 16, generator=gen
    )
    attributes = pd.DataFrame(
        {"source_id": range(n), "expression": np.where(bright, "smiling", "neutral")}
    )
    space = label_space(attributes)
    net = train_feature_net(
        x, space.encode(attributes), space, steps=60, batch_size=16, progress=False
    )
    feature_space = FeatureSpace(net, space)
    predicted = feature_space.predict(x)["expression"].to_numpy()
    assert (predicted == attributes["expression"].to_numpy()).mean() > 0.9
    features = feature_space.features(x)
    assert features.shape == (n, 128) and np.allclose(
        np.linalg.norm(features, axis=1), 1.0, atol=1e-5
    )

    save_feature_space(feature_space, tmp_path / "net")
    loaded = load_feature_space(tmp_path / "net")
    assert np.array_equal(loaded.features(x), features)
    assert loaded.space == space


def test_noised_images_leave_the_clean_manifold():
    """Smooth random images: noised copies (std 0.3) must fall outside the clean k-NN balls."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(160, 1, 4, 4, generator=gen) * 1.6 - 0.8
    x = torch.nn.functional.interpolate(coarse, size=16, mode="bilinear", align_corners=False)
    attributes = pd.DataFrame({"source_id": range(120)})
    space = label_space(attributes)
    net = train_feature_net(
        x[:120], space.encode(attributes), space, steps=400, batch_size=32, progress=False
    )
    feature_space = FeatureSpace(net, space)
    real, clean = feature_space.features(x[120:140]), feature_space.features(x[140:])
    noised = feature_space.features(add_pixel_noise(x[140:], 0.3, gen))
    clean_scores = precision_recall_density_coverage(real, clean, k=3)
    noised_scores = precision_recall_density_coverage(real, noised, k=3)
    assert clean_scores["precision"] >= 0.8
    assert noised_scores["precision"] <= 0.2
    assert feature_space.clean_fraction(x[140:]) >= 0.9
    assert feature_space.clean_fraction(add_pixel_noise(x[140:], 0.3, gen)) <= 0.1
