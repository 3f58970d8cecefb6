import pytest
import torch

from diffusion_circuits.model import training
from diffusion_circuits.model.factory import (
    CheckpointError,
    build_unet,
    count_attention,
    load_checkpoint,
)
from diffusion_circuits.model.sampling import sample_trajectory
from diffusion_circuits.model.training import TrainingDiverged, train_ddpm


def data(n=12, size=16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, size, size, generator=generator) * 2 - 1


def weights(unet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in unet.state_dict().items()}


def test_default_architecture_is_the_papers():
    from params_helper import params_with

    unet = build_unet(params_with().model)
    n_layers, heads = count_attention(unet)
    assert n_layers == 3 and heads == [8, 8, 8]
    assert unet.config.block_out_channels[-1] == 256


def test_training_saves_a_loadable_checkpoint_and_is_deterministic(tmp_path, tiny_params):
    first = train_ddpm(data(), tiny_params, 0, tmp_path / "a", tmp_path / "ra", progress=False)
    second = train_ddpm(data(), tiny_params, 0, tmp_path / "b", tmp_path / "rb", progress=False)
    other = train_ddpm(data(), tiny_params, 1, tmp_path / "c", tmp_path / "rc", progress=False)
    a, b, c = weights(first.network), weights(second.network), weights(other.network)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)

    unet, scheduler = load_checkpoint(tmp_path / "a", expected=tiny_params.model)
    assert count_attention(unet) == (3, [8, 8, 8])
    assert scheduler.config.beta_schedule == "squaredcos_cap_v2"
    loaded = weights(unet)
    assert all(torch.equal(a[k], loaded[k]) for k in a)
    assert not (tmp_path / "ra" / "state.pt").exists()  # resume state removed after success


def test_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_params):
    train_ddpm(data(), tiny_params, 0, tmp_path / "a", tmp_path / "r", progress=False)
    other = tiny_params.model.model_copy(update={"layers_per_block": 2})
    with pytest.raises(CheckpointError, match="layers_per_block=1 but params say 2"):
        load_checkpoint(tmp_path / "a", expected=other)
    with pytest.raises(CheckpointError, match="no unet/config.json"):
        load_checkpoint(tmp_path / "missing")


def test_resume_after_kill_gives_the_same_weights(tmp_path, tiny_params, monkeypatch):
    reference = weights(
        train_ddpm(
            data(), tiny_params, 0, tmp_path / "ref", tmp_path / "rref", progress=False
        ).network
    )
    real_batch = training.batch_for_step

    def killed_at_step_4(*args, **kwargs):
        if args[1] == 4:
            raise KeyboardInterrupt("killed")
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(training, "batch_for_step", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train_ddpm(data(), tiny_params, 0, tmp_path / "out", tmp_path / "resume", progress=False)
    assert (tmp_path / "resume" / "state.pt").exists() and not (tmp_path / "out").exists()
    monkeypatch.setattr(training, "batch_for_step", real_batch)
    resumed = train_ddpm(
        data(), tiny_params, 0, tmp_path / "out", tmp_path / "resume", progress=False
    )
    assert resumed.resumed_from == 3
    got = weights(resumed.network)
    assert all(torch.equal(reference[k], got[k]) for k in reference)


def test_nan_in_data_stops_with_a_clear_message(tmp_path, tiny_params):
    x0 = data()
    x0[:, :, 0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"non-finite loss \(nan\) at step 0"):
        train_ddpm(x0, tiny_params, 0, tmp_path / "out", tmp_path / "r", progress=False)
    assert not (tmp_path / "out").exists()


def test_sampler_returns_samples_and_trajectory(tiny_params):
    unet = build_unet(tiny_params.model).eval()
    from diffusion_circuits.model.factory import build_scheduler

    trajectory = sample_trajectory(
        unet,
        build_scheduler(tiny_params.scheduler),
        n=2,
        seed=0,
        num_inference_steps=10,
        record=[900, 500, 100],
    )
    assert trajectory.samples.shape == (2, 1, 16, 16)
    assert trajectory.states.shape == (3, 2, 1, 16, 16)
    assert trajectory.timesteps == sorted(trajectory.timesteps, reverse=True)
    with pytest.raises(ValueError, match="outside"):
        sample_trajectory(unet, build_scheduler(tiny_params.scheduler), 1, 0, 5, record=[1000])


def test_min_snr_weights_cap_only_the_low_noise_timesteps():
    from diffusion_circuits.model.factory import build_scheduler
    from params_helper import params_with

    t = torch.tensor([0, 100, 500, 900, 999])
    epsilon = build_scheduler(params_with({"scheduler": {"prediction_type": "epsilon"}}).scheduler)
    snr = epsilon.alphas_cumprod[t] / (1 - epsilon.alphas_cumprod[t])
    weights = training.min_snr_weights(epsilon, t, gamma=5.0)
    assert torch.allclose(weights, torch.clamp(snr, max=5.0).float() / snr.float())
    assert weights[0] < 0.01 and weights[-1] == 1.0  # t = 0 has SNR >> 5; t = 999 SNR < 5
    # v-prediction: the same weight on the x0 error, min(SNR, 5) / (SNR + 1)
    v = build_scheduler(params_with({"scheduler": {"prediction_type": "v_prediction"}}).scheduler)
    weights = training.min_snr_weights(v, t, gamma=5.0)
    assert torch.allclose(weights, torch.clamp(snr, max=5.0).float() / (snr.float() + 1))
    assert torch.equal(training.min_snr_weights(epsilon, t, gamma=0.0), torch.ones(5))


def test_learning_rate_never_decays_below_its_floor():
    factors = [training.lr_factor(s, 10, 100, 0.1) for s in range(0, 101)]
    assert factors[0] == 0.0 and factors[10] == 1.0
    assert min(factors[10:]) == pytest.approx(0.1) and factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
