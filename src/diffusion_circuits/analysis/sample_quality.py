"""Sample quality of a trained model: k-NN precision/recall/density/coverage and attribute
fidelity, in the feature space of a network trained on the dataset's training images."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from diffusion_circuits import layout
from diffusion_circuits.data.faceset import FaceSet
from diffusion_circuits.data.store import heldout_originals, load_faceset
from diffusion_circuits.io import atomic_dir, read_json, write_json
from diffusion_circuits.metrics.sample_quality import precision_recall_density_coverage
from diffusion_circuits.model.feature_net import (
    NOISE_HEAD,
    FeatureNet,
    LabelSpace,
    add_pixel_noise,
    label_space,
    train_feature_net,
)
from diffusion_circuits.model.noise import images_to_tensor
from diffusion_circuits.params import Params

__all__ = [
    "FeatureSpace",
    "fit_feature_net",
    "fit_feature_space",
    "load_feature_space",
    "save_feature_space",
    "quality_scores",
    "attribute_fidelity",
    "attribute_error_of_real_draws",
    "attribute_frequencies",
    "max_frequency_error",
    "error_of_draws",
    "ceiling_images",
    "noise_control",
    "NOISE_CONTROL_STDS",
]

# pixel-noise levels ([-1, 1] units) of the noised-real control: what noise does to the scores
NOISE_CONTROL_STDS = (0.1, 0.3)
# draws of held-out images behind the attribute-error floor of a perfect sampler
ATTRIBUTE_NULL_DRAWS = 1000


class FeatureSpace:
    """A trained :class:`FeatureNet` with its label space."""

    def __init__(self, net: FeatureNet, space: LabelSpace):
        self.net, self.space = net, space

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        return torch.cat(
            [self.net.features(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        ).numpy()

    @torch.no_grad()
    def clean_fraction(self, x: torch.Tensor, batch_size: int = 256) -> float:
        """Fraction of images the noise head calls clean (P(noised) < 0.5)."""
        logits = torch.cat(
            [self.net(x[i : i + batch_size])[NOISE_HEAD] for i in range(0, len(x), batch_size)]
        )
        return float((logits.argmax(1) == 0).double().mean())

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> pd.DataFrame:
        """Predicted class of every head, one row per image (class values, not indices)."""
        logits = [self.net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return pd.DataFrame(
            {
                name: np.asarray(classes, dtype=object)[
                    torch.cat([chunk[name] for chunk in logits]).argmax(1).numpy()
                ]
                for name, classes in self.space.heads.items()
            }
        )


def _split(faces: FaceSet, channels: int):
    train = faces.attributes["split"].to_numpy() == "train"
    heldout = heldout_originals(faces.attributes)
    position = heldout.index.to_numpy()
    return (
        images_to_tensor(faces.images[train], channels),
        faces.attributes[train].reset_index(drop=True),
        images_to_tensor(faces.images[position], channels),
        heldout.reset_index(drop=True),
    )


def fit_feature_space(
    faces: FaceSet, channels: int, steps: int, batch_size: int, seed: int = 0
) -> tuple[FeatureSpace, dict]:
    """Train the feature network on the training split; return it and its held-out accuracy.

    The held-out accuracy is per attribute head (fraction of held-out sources whose
    attribute is predicted right, beside the majority-class rate: the classifier's null);
    an identity network has no held-out classes, so none is reported for it.
    """
    x_train, train_attributes, x_heldout, heldout_attributes = _split(faces, channels)
    space = label_space(train_attributes)
    net = train_feature_net(
        x_train, space.encode(train_attributes), space, steps, batch_size, seed=seed
    )
    feature_space = FeatureSpace(net, space)
    report: dict = {"label_space": space.kind, "n_train_images": len(x_train)}
    if space.kind == "attributes":
        predicted = feature_space.predict(x_heldout)
        report["heldout_accuracy"] = {
            name: float((predicted[name].to_numpy() == heldout_attributes[name].to_numpy()).mean())
            for name in space.heads
        }
        report["heldout_majority_rate"] = {
            name: float(heldout_attributes[name].value_counts(normalize=True).iloc[0])
            for name in space.heads
        }
    return feature_space, report


def save_feature_space(feature_space: FeatureSpace, folder: str | Path) -> None:
    with atomic_dir(folder) as tmp:
        torch.save(feature_space.net.state_dict(), Path(tmp) / "weights.pt")
        write_json(
            {
                **asdict(feature_space.space),
                "in_channels": feature_space.net.encoder[0].in_channels,
            },
            Path(tmp) / "label_space.json",
        )


def load_feature_space(folder: str | Path) -> FeatureSpace:
    folder = Path(folder)
    meta = read_json(folder / "label_space.json")
    space = LabelSpace(meta["kind"], meta["heads"])
    net = FeatureNet(meta["in_channels"], {name: len(c) for name, c in space.heads.items()})
    net.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    return FeatureSpace(net.eval(), space)


def ceiling_images(faces: FaceSet, channels: int, n: int, seed: int) -> torch.Tensor:
    """``n`` training images drawn at random: the "fake" set of the real-vs-real ceiling."""
    x_train, *_ = _split(faces, channels)
    order = np.random.default_rng(seed).permutation(len(x_train))[:n]
    return x_train[torch.from_numpy(np.sort(order))]


def noise_control(
    feature_space: FeatureSpace,
    faces: FaceSet,
    ceiling: torch.Tensor,
    channels: int,
    k: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Scores of the ceiling's real images under pixel noise: the metric's sensitivity to noise.

    A feature space that cannot see noise scores noised faces like clean ones; this control
    says how far visible noise moves precision and recall in the one the pipeline uses.
    """
    generator = torch.Generator().manual_seed(seed)
    scores = {}
    for std in NOISE_CONTROL_STDS:
        noised = add_pixel_noise(ceiling, std, generator)
        scores[f"std{std}"] = quality_scores(feature_space, faces, noised, channels, k)
    return scores


def quality_scores(
    feature_space: FeatureSpace, faces: FaceSet, candidates: torch.Tensor, channels: int, k: int
) -> dict[str, float]:
    """Precision, recall, density and coverage of ``candidates`` against the held-out
    sources, and the fraction of them the feature network calls clean."""
    _, _, x_heldout, _ = _split(faces, channels)
    return {
        **precision_recall_density_coverage(
            feature_space.features(x_heldout), feature_space.features(candidates), k=k
        ),
        "clean_fraction": feature_space.clean_fraction(candidates),
    }


def attribute_fidelity(
    feature_space: FeatureSpace, faces: FaceSet, samples: torch.Tensor, channels: int
) -> pd.DataFrame:
    """Attribute frequencies: training data (true labels), held-out real and samples (predicted).

    Returns one row per attribute value with ``attribute, value, data_frequency,
    heldout_predicted_frequency, sample_frequency, difference, difference_vs_labels``.
    ``difference`` is samples minus held-out real images, both read by the same
    classifier, so that its own errors cancel (the age head calls 16% of real held-out
    faces old where 25% are); ``difference_vs_labels`` is samples minus the training labels.
    """
    if feature_space.space.kind != "attributes":
        return pd.DataFrame()
    heads = feature_space.space.heads
    _, train_attributes, x_heldout, _ = _split(faces, channels)
    table = _frequencies(train_attributes, heads).rename(columns={"frequency": "data_frequency"})
    heldout = _frequencies(feature_space.predict(x_heldout), heads)["frequency"]
    table["heldout_predicted_frequency"] = heldout
    table["sample_frequency"] = _frequencies(feature_space.predict(samples), heads)["frequency"]
    table["difference"] = table["sample_frequency"] - table["heldout_predicted_frequency"]
    table["difference_vs_labels"] = table["sample_frequency"] - table["data_frequency"]
    return table


def attribute_error_of_real_draws(
    feature_space: FeatureSpace,
    faces: FaceSet,
    channels: int,
    n: int,
    seed: int,
    draws: int = ATTRIBUTE_NULL_DRAWS,
) -> dict[str, float] | None:
    """The max attribute frequency error of ``n`` held-out real images instead of samples.

    A perfect sampler draws faces from the data distribution; scored like samples (the
    classifier's frequencies against its frequencies on all held-out images), ``n`` of
    them still miss by sampling noise. This is that floor: the mean and 95th percentile
    over ``draws`` draws of ``n`` held-out images (with replacement). ``None`` for a
    feature space without attributes.
    """
    if feature_space.space.kind != "attributes":
        return None
    _, _, x_heldout, _ = _split(faces, channels)
    predicted = feature_space.predict(x_heldout)
    return error_of_draws(predicted, predicted, feature_space.space.heads, n, seed, draws)


def error_of_draws(
    predicted: pd.DataFrame,
    reference: pd.DataFrame,
    heads: dict[str, list],
    n: int,
    seed: int,
    draws: int = ATTRIBUTE_NULL_DRAWS,
) -> dict[str, float]:
    """Mean and 95th percentile over ``draws`` draws of ``n`` rows of ``predicted`` (with
    replacement) of their max attribute frequency error against ``reference``'s frequencies."""
    target = _frequencies(reference, heads)["frequency"].to_numpy()
    rng = np.random.default_rng(seed)
    errors = [
        max_frequency_error(
            _frequencies(predicted.iloc[rng.integers(0, len(predicted), n)], heads)["frequency"],
            target,
        )
        for _ in range(draws)
    ]
    return {
        "n": n,
        "draws": draws,
        "mean": float(np.mean(errors)),
        "q95": float(np.quantile(errors, 0.95)),
    }


def attribute_frequencies(feature_space: FeatureSpace, x: torch.Tensor) -> np.ndarray | None:
    """The classifier's frequency of every (attribute, value) on ``x``; None without attributes."""
    if feature_space.space.kind != "attributes":
        return None
    return _frequencies(feature_space.predict(x), feature_space.space.heads)["frequency"].to_numpy()


def max_frequency_error(frequencies: np.ndarray, reference: np.ndarray) -> float:
    """The largest absolute difference between two frequency vectors (same value order)."""
    return float(np.abs(np.asarray(frequencies) - np.asarray(reference)).max())


def _frequencies(labels: pd.DataFrame, heads: dict[str, list]) -> pd.DataFrame:
    """Relative frequency of every class of every head, one row per (attribute, value)."""
    rows = []
    for name, classes in heads.items():
        counts = labels[name].value_counts(normalize=True)
        rows += [
            {"attribute": name, "value": str(value), "frequency": float(counts.get(value, 0.0))}
            for value in classes
        ]
    return pd.DataFrame(rows)


def fit_feature_net(params: Params, dataset: str) -> tuple[FeatureSpace, dict[str, Any]]:
    """The feature network of ``dataset`` and ``metrics/feature_net/<dataset>.json``: its
    training report, the real-vs-real ceiling, its noised control and the attribute error
    of real draws (the floor of a perfect sampler)."""
    cfg, channels = params.samples, params.model.in_channels
    torch.set_num_threads(params.runtime.num_threads)  # as every model stage: same rounding
    faces = load_faceset(layout.dataset_dir(dataset))
    feature_space, report = fit_feature_space(
        faces, channels, cfg.feature_steps, cfg.feature_batch_size, seed=cfg.seed
    )
    reals = ceiling_images(faces, channels, cfg.n_samples, cfg.seed)
    ceiling = quality_scores(feature_space, faces, reals, channels, cfg.k)
    noised = noise_control(feature_space, faces, reals, channels, cfg.k, cfg.seed)
    attribute_floor = attribute_error_of_real_draws(
        feature_space, faces, channels, cfg.n_samples, cfg.seed
    )
    metrics = {
        **report,
        "real_vs_real": ceiling,
        "noised_real_vs_real": noised,
        **({"attribute_error_of_real_draws": attribute_floor} if attribute_floor else {}),
    }
    return feature_space, metrics
