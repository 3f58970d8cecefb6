"""k-NN precision, recall, density and coverage against a direct loop and worked cases."""

import numpy as np
import pytest

from diffusion_circuits.metrics.sample_quality import knn_radii, precision_recall_density_coverage


def loop_prdc(real, fake, k):
    """The definitions of Kynkaanniemi et al. (2019) and Naeem et al. (2020), point by point."""

    def radius(points, i):
        others = sorted(np.linalg.norm(points[i] - q) for j, q in enumerate(points) if j != i)
        return others[k - 1]

    real_r = [radius(real, i) for i in range(len(real))]
    fake_r = [radius(fake, j) for j in range(len(fake))]
    dist = lambda a, b: np.linalg.norm(a - b)  # noqa: E731
    precision = np.mean([any(dist(f, r) <= real_r[i] for i, r in enumerate(real)) for f in fake])
    recall = np.mean([any(dist(r, f) <= fake_r[j] for j, f in enumerate(fake)) for r in real])
    density = sum(dist(f, r) <= real_r[i] for f in fake for i, r in enumerate(real)) / (
        k * len(fake)
    )
    coverage = np.mean([min(dist(r, f) for f in fake) <= real_r[i] for i, r in enumerate(real)])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def test_matches_a_point_by_point_implementation():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(25, 3)), rng.normal(0.5, 1.2, size=(30, 3))
    for k in (1, 3, 5):
        ours = precision_recall_density_coverage(real, fake, k=k)
        expected = loop_prdc(real, fake, k)
        assert ours == pytest.approx(expected)


def test_radii_by_hand():
    # points 0, 1, 3, 6 on a line: 1st neighbours at 1, 1, 2, 3; 2nd at 3, 2, 3, 5
    points = np.array([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(points, 1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(points, 2).tolist() == [3.0, 2.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="k=4 needs at least"):
        knn_radii(points, 4)


def test_same_distribution_scores_high_and_mode_collapse_loses_recall():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 2))
    same = precision_recall_density_coverage(real, rng.normal(size=(400, 2)), k=5)
    assert same["precision"] > 0.9 and same["recall"] > 0.9 and same["coverage"] > 0.9
    assert same["density"] == pytest.approx(1.0, abs=0.15)
    collapsed = precision_recall_density_coverage(real, rng.normal(0, 0.05, size=(400, 2)), k=5)
    assert collapsed["precision"] > 0.9  # every sample is realistic ...
    assert collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.2  # ... but covers one mode


def test_shape_mismatch_is_one_clear_error():
    with pytest.raises(ValueError, match="real and fake must be"):
        precision_recall_density_coverage(np.zeros((5, 2)), np.zeros((5, 3)))
