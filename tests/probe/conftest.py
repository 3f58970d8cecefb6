import pytest
import torch
from diffusers import UNet2DModel

ARCHITECTURES = {
    "paper": dict(
        block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
    ),
    "attn_everywhere": dict(
        block_out_channels=(16, 32, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        layers_per_block=2,
    ),
    "two_levels_no_mid_attention": dict(
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=16,
        add_attention=False,
    ),
    "four_levels": dict(
        block_out_channels=(16, 16, 32, 32),
        down_block_types=("DownBlock2D",) * 4,
        up_block_types=("UpBlock2D",) * 4,
        attention_head_dim=8,
    ),
}


def make_unet(kind: str = "paper", seed: int = 0) -> UNet2DModel:
    config = {
        "sample_size": 16,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        **ARCHITECTURES[kind],
    }
    torch.manual_seed(seed)
    return UNet2DModel(**config).eval()


def inputs(batch: int = 3, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 16, 16, generator=generator), torch.tensor([10, 500, 900][:batch])


@pytest.fixture(params=list(ARCHITECTURES))
def any_unet(request):
    return make_unet(request.param)


@pytest.fixture
def unet():
    return make_unet("paper")


def assert_clean(unet) -> None:
    """No hook of any kind left and every attention processor a diffusers one."""
    for module in unet.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        processor = getattr(module, "processor", None)
        if processor is not None:
            assert type(processor).__module__.startswith("diffusers")
