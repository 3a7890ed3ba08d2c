"""The flow-matching loss against its equation, and the timestep distribution (logit-normal, resolution shift)."""
import math

import pytest
import torch

from qimage.presets import SCHEDULER_CONFIG
from qimage.train import flow


def test_interpolation_and_target_follow_the_equations():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 5, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    sigma = torch.tensor([0.0, 0.25, 1.0])
    xt, target = flow.interpolate(x0, noise, sigma)
    assert torch.equal(xt[0], x0[0]) and torch.equal(xt[2], noise[2])  # data at s=0, noise at s=1
    torch.testing.assert_close(xt[1], 0.75 * x0[1] + 0.25 * noise[1])
    torch.testing.assert_close(target, noise - x0)
    # the target is the path's velocity: finite difference of x_s in s
    h = 1e-3
    xa, _ = flow.interpolate(x0, noise, sigma.clamp(max=0.5))
    xb, _ = flow.interpolate(x0, noise, sigma.clamp(max=0.5) + h)
    torch.testing.assert_close((xb - xa) / h, target, atol=1e-2, rtol=0)


def test_loss_is_mean_squared_error_of_velocity():
    g = torch.Generator().manual_seed(1)
    pred, target = torch.randn(2, 4, 6, generator=g), torch.randn(2, 4, 6, generator=g)
    expected = sum(float((p - t) ** 2) for p, t in zip(pred.flatten(), target.flatten())) / pred.numel()
    assert flow.loss(pred, target).item() == pytest.approx(expected, rel=1e-6)
    assert flow.loss(target, target).item() == 0.0
    assert flow.loss(pred.bfloat16(), target).dtype == torch.float32


def test_shift_mu_is_linear_in_token_count_as_the_scheduler_config_says():
    cfg = SCHEDULER_CONFIG
    assert flow.shift_mu(cfg, 256) == pytest.approx(0.5)
    assert flow.shift_mu(cfg, 8192) == pytest.approx(0.9)
    assert flow.shift_mu(cfg, (256 + 8192) / 2) == pytest.approx(0.7)
    assert flow.shift_mu(cfg, 128) < 0.5  # below the base length the shift extrapolates downwards


@pytest.mark.parametrize("mean,std,mu", [(0.0, 1.0, 0.0), (0.0, 1.0, 0.8), (-0.5, 0.7, 0.3)])
def test_sigmas_are_logit_normal_with_the_shift_added(mean, std, mu):
    s = flow.sample_sigmas(200_000, torch.Generator().manual_seed(2), mean, std, mu).double()
    assert 0 < s.min() and s.max() < 1
    logit = torch.log(s / (1 - s))
    assert logit.mean().item() == pytest.approx(mean + mu, abs=0.01)
    assert logit.std().item() == pytest.approx(std, rel=0.01)
    # median: sigmoid(mean + mu); the shift moves mass towards noise for larger images
    assert s.median().item() == pytest.approx(1 / (1 + math.exp(-(mean + mu))), abs=0.005)


def test_logit_shift_equals_the_schedulers_exponential_time_shift():
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)
    s0 = torch.linspace(0.05, 0.95, 19)
    mu = 0.7
    shifted = sched.time_shift(mu, 1.0, s0)  # what the sampler applies at inference
    torch.testing.assert_close(torch.sigmoid(torch.log(s0 / (1 - s0)) + mu), shifted.float(), atol=1e-6, rtol=0)


def test_sigma_draws_are_deterministic_for_a_seed():
    a = flow.sample_sigmas(8, torch.Generator().manual_seed(3), mu=0.4)
    b = flow.sample_sigmas(8, torch.Generator().manual_seed(3), mu=0.4)
    assert torch.equal(a, b)


def test_weighted_loss_is_the_mean_of_per_sample_weighted_means():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(3, 4, 6, generator=g), torch.randn(3, 4, 6, generator=g)
    w = torch.rand(3, 4, 1, generator=g) * 4 + 1  # broadcast over channels, as latent-cell weights are
    err = (pred - target) ** 2
    expected = sum(float((w[b] * err[b]).sum() / w[b].expand_as(err[b]).sum()) for b in range(3)) / 3
    assert flow.loss(pred, target, w).item() == pytest.approx(expected, rel=1e-6)
    assert flow.loss(pred, target, torch.ones(3, 4, 6)).item() == pytest.approx(flow.loss(pred, target).item(), rel=1e-6)
    # scaling one sample's weights changes nothing (normalised per sample); moving weight onto its errors does
    w2 = w.clone()
    w2[1] *= 7
    assert flow.loss(pred, target, w2).item() == pytest.approx(expected, rel=1e-6)
    big = (err[0].mean(-1, keepdim=True) > err[0].mean()).float() * 9 + 1
    w3 = w.clone()
    w3[0] = big
    assert flow.loss(pred, target, w3).item() > flow.loss(pred, target, torch.ones_like(w3)).item()
