"""v-prediction: the target, its loss weights, and every metric read on the implied noise."""

import types

import pytest
import torch
from diffusers import DDPMScheduler

from diffusion_circuits.analysis.accuracy import accuracy_table
from diffusion_circuits.model import training
from diffusion_circuits.model.noise import add_noise, noise_from_output, training_target


def _scheduler(kind: str) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=kind
    )


def test_v_target_by_hand_and_its_noise_estimate_is_exact():
    scheduler = _scheduler("v_prediction")
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 1, 4, 4, generator=gen), torch.randn(3, 1, 4, 4, generator=gen)
    t = torch.tensor([0, 500, 999])
    abar = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    v = training_target(scheduler, x0, eps, t)
    assert torch.allclose(v, abar.sqrt() * eps - (1 - abar).sqrt() * x0, atol=1e-6)
    x_t = scheduler.add_noise(x0, eps, t)
    assert torch.allclose(noise_from_output(scheduler, v, x_t, t), eps, atol=1e-5)
    # A wrong v moves the noise estimate by sqrt(abar) times the error, no more.
    moved = noise_from_output(scheduler, v + 1.0, x_t, t) - eps
    assert torch.allclose(moved, abar.sqrt().expand_as(moved), atol=1e-5)


def test_epsilon_output_is_the_noise_estimate_unchanged():
    scheduler = _scheduler("epsilon")
    out = torch.randn(2, 1, 3, 3)
    x0 = torch.randn(2, 1, 3, 3)
    t = torch.tensor([10, 900])
    assert torch.equal(noise_from_output(scheduler, out, torch.zeros_like(out), t), out)
    assert torch.equal(training_target(scheduler, x0, out, t), out)


def test_min_snr_weights_for_v_prediction():
    scheduler = _scheduler("v_prediction")
    t = torch.tensor([0, 300, 900])
    snr = (scheduler.alphas_cumprod[t] / (1 - scheduler.alphas_cumprod[t])).float()
    weights = training.min_snr_weights(scheduler, t, gamma=5.0)
    assert torch.allclose(weights, torch.clamp(snr, max=5.0) / (snr + 1))
    # Same weight on the x0 error as the epsilon rule: w_v * (snr + 1) == w_eps * snr.
    eps_weights = training.min_snr_weights(_scheduler("epsilon"), t, gamma=5.0)
    assert torch.allclose(weights * (snr + 1), eps_weights * snr, rtol=1e-5)


class _OracleV(torch.nn.Module):
    """Outputs the true v for known clean images: v = (sqrt(abar) x_t - x0) / sqrt(1-abar)."""

    def __init__(self, scheduler, x0):
        super().__init__()
        self.scheduler, self.x0 = scheduler, x0
        self.device = x0.device

    def forward(self, x_t, t):
        abar = self.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        return types.SimpleNamespace(sample=(abar.sqrt() * x_t - self.x0) / (1 - abar).sqrt())


def test_accuracy_of_a_v_model_is_measured_on_its_noise_estimate():
    scheduler = _scheduler("v_prediction")
    x0 = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    table = accuracy_table(_OracleV(scheduler, x0), scheduler, x0, range(4), [100, 900], seed=3)
    model = table[table.metric == "accuracy"]["value"]
    assert model.to_numpy() == pytest.approx(1.0, abs=1e-5)
    # Read as an epsilon model, the same output would score far below 1.
    x_t, eps, t = add_noise(scheduler, x0, 900, 3)
    raw = _OracleV(scheduler, x0)(x_t, t).sample
    assert ((raw - eps) ** 2).mean() > 0.1
