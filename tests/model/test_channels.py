"""Grey data trains 1-channel models; RGB data 3-channel ones (the channel count follows data.colour)."""

import numpy as np
import pytest
import torch

from diffusion_circuits.model.factory import build_unet
from diffusion_circuits.model.noise import images_to_tensor
from params_helper import params_with


def test_channels_follow_data_colour():
    grey = params_with({"data": {"colour": "grey"}})
    assert (grey.model.in_channels, grey.model.out_channels) == (1, 1)
    rgb = params_with(
        {"data": {"colour": "rgb"}, "natural": {"source": "celeba", "celeba_dir": "/x"}}
    )
    assert (rgb.model.in_channels, rgb.model.out_channels) == (3, 3)
    unet = build_unet(grey.model)
    assert unet.conv_in.in_channels == 1 and unet.conv_out.out_channels == 1


def test_contradicting_channel_count_is_refused():
    with pytest.raises(ValueError, match="must both be 1 for data.colour='grey'"):
        params_with({"data": {"colour": "grey"}, "model": {"in_channels": 3}})


def test_grey_images_become_one_exact_channel():
    grey = np.repeat(np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1) * 16, 3, axis=-1)
    one = images_to_tensor(grey, channels=1)
    assert one.shape == (1, 1, 4, 4)
    assert torch.equal(one[:, 0], images_to_tensor(grey)[:, 0])
    with pytest.raises(ValueError, match="cannot turn 3-channel images into 2"):
        images_to_tensor(grey, channels=2)
