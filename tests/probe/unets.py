"""Tiny UNet2DModels of different shapes, inputs, and the no-leftover-state check."""

import torch
from diffusers import UNet2DModel

ARCHITECTURES = {
    # the paper's layout, tiny: attention only in the mid block and the first up block
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
    # FIR skip blocks: downsampling in `resnet_down` + `skip_conv`, one attention after
    # all resnets in AttnSkipUpBlock2D, an image-space skip added to conv_out in place
    "skip_blocks": dict(
        block_out_channels=(32, 32),
        down_block_types=("SkipDownBlock2D", "AttnSkipDownBlock2D"),
        up_block_types=("AttnSkipUpBlock2D", "SkipUpBlock2D"),
        attention_head_dim=8,
        layers_per_block=2,
    ),
    # resnets as down/up samplers
    "resnet_samplers": dict(
        block_out_channels=(16, 32),
        down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "ResnetUpsampleBlock2D"),
        attention_head_dim=8,
        downsample_type="resnet",
        upsample_type="resnet",
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


def inputs(batch: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, 3, 16, 16, generator=generator)
    return x_t, torch.tensor([10, 500, 900, 250, 750, 999][:batch])


def processors(unet) -> dict:
    """Attention module -> its processor object, to check they come back unchanged."""
    return {m: m.processor for m in unet.modules() if hasattr(m, "set_processor")}


def assert_clean(unet, before: dict | None = None) -> None:
    """No hook of any kind left anywhere; processors the same objects as ``before``."""
    for name, module in unet.named_modules():
        for table in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_forward_hooks_with_kwargs",
            "_forward_pre_hooks_with_kwargs",
            "_backward_hooks",
        ):
            assert not getattr(module, table), f"{table} left on {name or 'unet'}"
        if before is None and hasattr(module, "set_processor"):
            assert type(module.processor).__module__.startswith("diffusers")
    if before is not None:
        assert all(module.processor is processor for module, processor in before.items())
