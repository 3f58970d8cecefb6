"""model.backbone: the DiT is built, called, trained, saved and load-checked by the same
code as the U-Net, and the U-Net is built exactly as before the choice existed."""

import numpy as np
import pytest
import torch
from diffusers import DiTTransformer2DModel, UNet2DModel

from diffusion_circuits.model.factory import (
    CheckpointError,
    build_network,
    build_scheduler,
    load_checkpoint,
    network_folder,
)
from diffusion_circuits.model.forward import denoise, forward_kwargs
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.model.training import train_ddpm
from diffusion_circuits.params import Params, ParamsError, load_params
from params_helper import params_with, raw_params

DIT = {"backbone": "dit", "dit": {"num_layers": 2, "patch_size": 4, "num_attention_heads": 8,
                                  "attention_head_dim": 8}}  # fmt: skip


@pytest.fixture
def tiny_dit(tiny_params) -> Params:
    raw = tiny_params.model_dump(mode="json")
    raw["model"] |= DIT
    return Params.model_validate(raw)


def test_the_default_dit_has_8_heads_at_256_channels_and_follows_the_data():
    params = params_with({"model": {"backbone": "dit"}})
    dit = build_network(params.model)
    assert isinstance(dit, DiTTransformer2DModel)
    assert (dit.config.num_attention_heads, dit.inner_dim) == (8, 256)
    assert dit.config.in_channels == dit.config.out_channels == 1  # data.colour: grey
    assert dit.config.sample_size == params.data.resolution
    assert dit.config.num_layers == params.model.dit.num_layers
    assert dit.config.num_embeds_ada_norm == 1  # one class


def test_the_unet_is_built_as_before_the_backbone_choice_existed():
    params = params_with()
    assert params.model.backbone == "unet"
    torch.manual_seed(0)
    before = UNet2DModel(**params.model.model_dump(exclude={"backbone", "dit"}))
    after = build_network(params.model, seed=0)
    assert isinstance(after, UNet2DModel)
    pairs = zip(before.parameters(), after.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"backbone": "vit"}, "model.backbone = 'vit'"),
        ({"dit": {**DIT["dit"], "patch_size": 5}}, "patch_size=5 does not divide"),
        ({"dit": {**DIT["dit"], "depth": 3}}, "unknown key 'model.dit.depth'"),
    ],
)
def test_bad_backbone_params_give_one_line_naming_the_key(tmp_path, model, message):
    import yaml

    raw = raw_params({"model": model})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=message) as error:
        load_params(tmp_path / "params.yaml")
    assert "\n" not in str(error.value)


def test_denoise_gives_the_dit_its_one_class_and_the_unet_nothing(tiny_dit, tiny_params):
    x, t = torch.randn(3, 1, 16, 16), torch.tensor([5, 500, 900])
    dit = build_network(tiny_dit.model).eval()
    labels = forward_kwargs(dit, 3, x.device)["class_labels"]
    assert labels.tolist() == [0, 0, 0]
    with torch.no_grad():
        assert torch.equal(denoise(dit, x, t), dit(x, t, class_labels=labels).sample)
    assert forward_kwargs(build_network(tiny_params.model), 3, x.device) == {}


def test_training_mode_drops_no_class_label(tiny_dit):
    # DiT's adaLN-Zero blocks drop 10% of labels in training (for guidance); with one class
    # the drop would only train an unused embedding and consume random draws.
    dit = build_network(tiny_dit.model).train()
    x, t = torch.randn(64, 1, 16, 16), torch.full((64,), 500)
    with torch.no_grad():
        assert torch.equal(denoise(dit, x, t), denoise(dit, x, t))


def _faces(n: int = 8) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (n, 1, 16, 16))).float()


def test_a_dit_trains_saves_and_loads_checked_against_the_params(tmp_path, tiny_dit):
    result = train_ddpm(_faces(), tiny_dit, 0, tmp_path / "m", tmp_path / "r", progress=False)
    assert np.isfinite(result.final_loss)
    assert network_folder(tmp_path / "m") == ("dit", tmp_path / "m" / "transformer")
    network, _ = load_checkpoint(tmp_path / "m", expected=tiny_dit.model)
    trained = result.network.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in network.state_dict().items())
    unet_params = tiny_dit.model.model_copy(update={"backbone": "unet"})
    with pytest.raises(CheckpointError, match="holds a dit but params say model.backbone='unet'"):
        load_checkpoint(tmp_path / "m", expected=unet_params)
    deeper = tiny_dit.model.model_copy(
        update={"dit": tiny_dit.model.dit.model_copy(update={"num_layers": 3})}
    )
    with pytest.raises(CheckpointError, match="model.dit.num_layers=2 but params say 3"):
        load_checkpoint(tmp_path / "m", expected=deeper)


def test_a_dit_samples_through_the_same_loop(tiny_dit):
    dit = build_network(tiny_dit.model).eval()
    scheduler = build_scheduler(tiny_dit.scheduler)
    trajectory = sample_trajectory(dit, scheduler, n=2, seed=0, num_inference_steps=3)
    assert trajectory.samples.shape == (2, 1, 16, 16)
    assert torch.isfinite(trajectory.samples).all()
