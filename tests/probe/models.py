"""Tiny random-weight versions of public model configs, and inputs for them.

Each config keeps its public model's block types, conditioning and attention layout and
shrinks only widths, depths and resolution (no weights can be downloaded here):

- ``sd15``: Stable Diffusion 1.5's UNet2DConditionModel (CrossAttnDownBlock2D x3 +
  DownBlock2D, the mirror up path, 2 layers per block, cross-attention to text tokens).
- ``sdxl_like``: SDXL's layout (no attention at the top level, several transformer
  blocks per spatial transformer, linear projections, per-level head counts).
- ``dit``: DiT-XL/2 (adaLN-Zero, class labels, patch 2, learned sigma: out = 2 x in).
- ``pixart``: PixArt-alpha (adaLN-single, T5-sized caption projection, cross-attention).
- ``sd3``: Stable Diffusion 3.5's MMDiT (joint attention over [image; text], the last
  block context-pre-only, SD3.5's extra image-only attention in block 0, RMS qk-norm).
- ``flux``: FLUX.1's transformer (dual-stream blocks, then single-stream blocks over
  [text; image], rotary position embeddings, packed 2x2 latents).
"""

import torch
from diffusers import (
    DiTTransformer2DModel,
    FluxTransformer2DModel,
    PixArtTransformer2DModel,
    SD3Transformer2DModel,
    UNet2DConditionModel,
)

TEXT_TOKENS = 5

CONFIGS = {
    "sd15": (
        UNet2DConditionModel,
        dict(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            block_out_channels=(8, 16, 16, 16),  # SD 1.5: (320, 640, 1280, 1280)
            layers_per_block=2,
            cross_attention_dim=12,  # SD 1.5: 768 (CLIP ViT-L/14)
            attention_head_dim=2,  # diffusers' name for the number of heads; SD 1.5: 8
            norm_num_groups=4,
        ),
    ),
    "sdxl_like": (
        UNet2DConditionModel,
        dict(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(8, 16),
            layers_per_block=1,
            transformer_layers_per_block=(1, 2),
            cross_attention_dim=12,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            norm_num_groups=4,
        ),
    ),
    "dit": (
        DiTTransformer2DModel,
        dict(
            num_attention_heads=2,  # DiT-XL/2: 16 heads of 72
            attention_head_dim=4,
            in_channels=4,
            out_channels=8,
            num_layers=8,  # DiT-XL/2: 28
            sample_size=8,  # DiT-XL/2 at 256px: 32
            patch_size=2,
            num_embeds_ada_norm=10,  # DiT: 1000 ImageNet classes
        ),
    ),
    "pixart": (
        PixArtTransformer2DModel,
        dict(
            num_attention_heads=2,  # PixArt-alpha: 16 heads of 72
            attention_head_dim=4,
            in_channels=4,
            out_channels=8,
            num_layers=4,  # PixArt-alpha: 28
            sample_size=8,
            patch_size=2,
            cross_attention_dim=8,  # PixArt-alpha: 1152
            caption_channels=12,  # PixArt-alpha: 4096 (T5-XXL)
            use_additional_conditions=False,
        ),
    ),
    "sd3": (
        SD3Transformer2DModel,
        dict(
            sample_size=8,
            patch_size=2,
            in_channels=4,  # SD3: 16 latent channels
            out_channels=4,
            num_layers=3,  # SD3.5 medium: 24
            attention_head_dim=4,  # SD3.5 medium: 24 heads of 64
            num_attention_heads=2,
            joint_attention_dim=12,  # SD3: 4096 (T5-XXL + CLIP)
            caption_projection_dim=8,  # = heads * head_dim
            pooled_projection_dim=6,  # SD3: 2048
            pos_embed_max_size=8,
            dual_attention_layers=(0,),  # SD3.5 medium: blocks 0-12
            qk_norm="rms_norm",
        ),
    ),
    "flux": (
        FluxTransformer2DModel,
        dict(
            patch_size=1,
            in_channels=8,  # FLUX.1: 64 (16 latent channels packed 2x2)
            num_layers=2,  # FLUX.1: 19 dual-stream blocks
            num_single_layers=2,  # FLUX.1: 38 single-stream blocks
            attention_head_dim=8,  # FLUX.1: 24 heads of 128
            num_attention_heads=2,
            joint_attention_dim=12,  # FLUX.1: 4096 (T5-XXL)
            pooled_projection_dim=6,  # FLUX.1: 768 (CLIP)
            axes_dims_rope=(2, 2, 4),  # sums to head_dim; FLUX.1: (16, 56, 56)
        ),
    ),
}
FLUX_GRID = 4  # packed latent tokens per side


def make_model(kind: str, seed: int = 0):
    cls, config = CONFIGS[kind]
    torch.manual_seed(seed)
    return cls(**config).eval()


def model_inputs(kind: str, batch: int = 2, seed: int = 1) -> dict:
    """Keyword inputs of one forward (``timestep`` included)."""
    config = CONFIGS[kind][1]
    generator = torch.Generator().manual_seed(seed)
    if kind == "flux":
        return _flux_inputs(config, batch, generator)
    size = config["sample_size"]
    inputs = {
        ("sample" if CONFIGS[kind][0] is UNet2DConditionModel else "hidden_states"): torch.randn(
            batch, config["in_channels"], size, size, generator=generator
        ),
        "timestep": torch.tensor([10, 500, 900, 250][:batch]),
    }
    if "cross_attention_dim" in config or kind in ("pixart", "sd3"):
        width = config.get(
            "caption_channels", config.get("cross_attention_dim", config.get("joint_attention_dim"))
        )
        inputs["encoder_hidden_states"] = torch.randn(
            batch, TEXT_TOKENS, width, generator=generator
        )
    if kind == "sd3":
        inputs["pooled_projections"] = torch.randn(
            batch, config["pooled_projection_dim"], generator=generator
        )
    if kind == "dit":
        inputs["class_labels"] = torch.tensor([1, 7, 3, 0][:batch])
    return inputs


def image_tokens(kind: str) -> int:
    """Image (patch) tokens of a transformer's sequence for :func:`model_inputs`."""
    if kind == "flux":
        return FLUX_GRID**2
    config = CONFIGS[kind][1]
    return (config["sample_size"] // config["patch_size"]) ** 2


def _flux_inputs(config: dict, batch: int, generator: torch.Generator) -> dict:
    """Packed latent tokens with their (0, row, column) position ids, and text tokens."""
    rows, cols = torch.meshgrid(torch.arange(FLUX_GRID), torch.arange(FLUX_GRID), indexing="ij")
    image_ids = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3)
    return {
        "hidden_states": torch.randn(
            batch, FLUX_GRID**2, config["in_channels"], generator=generator
        ),
        "encoder_hidden_states": torch.randn(
            batch, TEXT_TOKENS, config["joint_attention_dim"], generator=generator
        ),
        "pooled_projections": torch.randn(
            batch, config["pooled_projection_dim"], generator=generator
        ),
        "timestep": torch.tensor([0.01, 0.5, 0.9, 0.25][:batch]),
        "img_ids": image_ids.float(),
        "txt_ids": torch.zeros(TEXT_TOKENS, 3),
    }
