"""A small image classifier trained inside the pipeline: the feature space of sample quality.

No pretrained network (Inception, DINO, CLIP) can be downloaded here, so each dataset gets
its own encoder, trained on its training images only:

- on the face attributes when the dataset has them (the synthetic faces' six attributes;
  CelebA's mapped ones): one softmax head per attribute. The same network is the
  attribute classifier of the synthetic samples' attribute fidelity;
- otherwise (the LFW stand-in has no attributes) on the identity of the training source
  images, under the augmentations that generated the dataset: a face-recognition-style
  embedding.

A third head, on both datasets, tells clean images from the same images under Gaussian
pixel noise (``NOISE_HEAD``): without it an identity or attribute network is free to
ignore noise, and a grid of visibly noisy samples scored a precision of 1.0.

The features are the encoder's L2-normalised penultimate layer (128-d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "ATTRIBUTES",
    "NOISE_HEAD",
    "FeatureNet",
    "add_pixel_noise",
    "LabelSpace",
    "label_space",
    "train_feature_net",
]

# canonical attribute columns of a FaceSet (data/faceset.py)
ATTRIBUTES = ("expression", "gender", "age", "facial_hair", "glasses", "hair_colour")
# the clean-vs-noised head; its noise std is drawn log-uniformly from this range ([-1, 1] units)
NOISE_HEAD = "noised"
NOISE_STD_RANGE = (0.03, 0.5)


@dataclass(frozen=True)
class LabelSpace:
    """What the feature network is trained to predict: one categorical target per head."""

    kind: str  # "attributes" or "identity"
    heads: dict[str, list]  # target name -> its classes, in index order

    def encode(self, attributes: pd.DataFrame) -> torch.Tensor:
        """[N, heads] class indices of each row (long)."""
        columns = []
        for name, classes in self.heads.items():
            column = "source_id" if self.kind == "identity" else name
            index = {value: i for i, value in enumerate(classes)}
            columns.append([index[value] for value in attributes[column].tolist()])
        return torch.tensor(np.array(columns).T, dtype=torch.long)


def label_space(train_attributes: pd.DataFrame) -> LabelSpace:
    """Attributes with at least two observed values and no missing one, else source identity."""
    heads = {}
    for name in ATTRIBUTES:
        if name not in train_attributes:
            continue
        column = train_attributes[name]
        if column.isna().any() or column.nunique() < 2:
            continue
        heads[name] = sorted(column.unique().tolist(), key=str)
    if heads:
        return LabelSpace("attributes", heads)
    return LabelSpace(
        "identity", {"identity": sorted(train_attributes["source_id"].unique().tolist())}
    )


class FeatureNet(nn.Module):
    """Four stride-2 convolution stages, global average pooling, one linear head per target."""

    def __init__(self, in_channels: int, head_sizes: dict[str, int], width: int = 32):
        super().__init__()
        head_sizes = {**head_sizes, NOISE_HEAD: 2}
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1),
                nn.GroupNorm(8, out),
                nn.SiLU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.GroupNorm(8, out),
                nn.SiLU(),
            ]
            channels = out
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.heads = nn.ModuleDict({name: nn.Linear(channels, n) for name, n in head_sizes.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] in [-1, 1] -> [B, 4 * width] unit-norm features."""
        return F.normalize(self.encoder(x), dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.encoder(x)
        return {name: head(hidden) for name, head in self.heads.items()}


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a shift of up to 2 pixels: what the labels are invariant to."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def add_pixel_noise(x: torch.Tensor, std: torch.Tensor | float, generator=None) -> torch.Tensor:
    """``x`` plus Gaussian noise of standard deviation ``std`` (per image), clipped to [-1, 1]."""
    std = torch.as_tensor(std, dtype=x.dtype).reshape(-1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return (x + std * noise).clamp(-1, 1)


def _noise_some(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half of the batch under pixel noise; returns the images and the noised indicator."""
    noised = torch.rand(len(x), generator=generator) < 0.5
    low, high = (math.log(v) for v in NOISE_STD_RANGE)
    std = torch.exp(low + (high - low) * torch.rand(len(x), generator=generator))
    x = torch.where(noised[:, None, None, None], add_pixel_noise(x, std, generator), x)
    return x, noised.long()


def train_feature_net(
    x: torch.Tensor,
    labels: torch.Tensor,
    space: LabelSpace,
    steps: int,
    batch_size: int,
    seed: int = 0,
    progress: bool = True,
) -> FeatureNet:
    """Train a :class:`FeatureNet` on images ``x`` [N, C, H, W] with ``labels`` [N, heads]."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = FeatureNet(x.shape[1], {name: len(c) for name, c in space.heads.items()})
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    net.train()
    for _ in tqdm(range(steps), desc="feature net", disable=not progress):
        index = torch.randint(0, len(x), (batch_size,), generator=generator)
        images, noised = _noise_some(_augment(x[index], generator), generator)
        logits = net(images)
        clean = noised == 0  # the label heads learn from clean images only
        loss = F.cross_entropy(logits[NOISE_HEAD], noised) + sum(
            F.cross_entropy(logits[name][clean], labels[index, i][clean])
            for i, name in enumerate(space.heads)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return net.eval()
