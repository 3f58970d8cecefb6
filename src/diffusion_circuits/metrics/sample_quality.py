"""Sample quality in a feature space: improved precision and recall, density and coverage.

Given features of real images ``R`` (N x D) and of generated ones ``F`` (M x D), each
real point gets the radius ``r_k(i)`` of the ball reaching its k-th nearest real
neighbour (itself excluded); the fake points likewise among themselves.

- precision (Kynkaanniemi et al. 2019): the fraction of fakes inside at least one real
  ball: are the samples realistic?
- recall (same paper): the fraction of reals inside at least one fake ball: do the
  samples cover the data?
- density (Naeem et al. 2020): ``(1 / kM) sum_j #{i : F_j in ball(R_i)}``; 1 on average
  when fakes are distributed like reals, above 1 when they crowd the densest reals.
- coverage (same paper): the fraction of reals whose ball contains at least one fake.

All four are 1 (density about 1) for two large samples of one distribution; with small
sets they are lower, which is why the pipeline reports the real-vs-real ceiling beside
them.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["knn_radii", "precision_recall_density_coverage"]


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (Euclidean).

    Examples
    --------
    >>> knn_radii(np.array([[0.0], [1.0], [3.0]]), k=1).tolist()
    [1.0, 1.0, 2.0]
    """
    features = np.asarray(features, dtype=np.float64)
    if not 1 <= k < len(features):
        raise ValueError(f"k={k} needs at least k + 1 = {k + 1} points, got {len(features)}")
    distances = cdist(features, features)
    # column 0 of each sorted row is the point itself (distance 0)
    return np.sort(distances, axis=1)[:, k]


def precision_recall_density_coverage(
    real: np.ndarray, fake: np.ndarray, k: int = 5
) -> dict[str, float]:
    """The four k-NN sample-quality measures of ``fake`` against ``real`` features.

    Parameters
    ----------
    real, fake : numpy.ndarray
        [N, D] and [M, D] feature vectors (same D).
    k : int
        Neighbour rank defining each point's radius.

    Returns
    -------
    dict with ``precision``, ``recall``, ``density``, ``coverage``.

    Examples
    --------
    Fakes identical to the reals (corners of a unit square, k = 1, so every radius is 1)
    have precision, recall and coverage 1; density counts each fake once per real ball
    it lies in, and each corner lies in its own ball and its two neighbours':

    >>> x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> precision_recall_density_coverage(x, x.copy(), k=1)
    {'precision': 1.0, 'recall': 1.0, 'density': 3.0, 'coverage': 1.0}

    Fakes far from every real score 0:

    >>> precision_recall_density_coverage(x, x + 10.0, k=1)
    {'precision': 0.0, 'recall': 0.0, 'density': 0.0, 'coverage': 0.0}
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake must be [N, D] and [M, D], got {real.shape} and {fake.shape}"
        )
    real_radii = knn_radii(real, k)
    fake_radii = knn_radii(fake, k)
    distances = cdist(real, fake)  # [N, M]
    inside_real_ball = distances <= real_radii[:, None]
    inside_fake_ball = distances <= fake_radii[None, :]
    return {
        "precision": float(inside_real_ball.any(axis=0).mean()),
        "recall": float(inside_fake_ball.any(axis=1).mean()),
        "density": float(inside_real_ball.sum() / (k * fake.shape[0])),
        "coverage": float((distances.min(axis=1) <= real_radii).mean()),
    }
