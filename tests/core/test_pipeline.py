"""Sampling against its equations and against diffusers' QwenImagePipeline on the same model directory."""
import numpy as np
import pytest
import torch
from diffusers import QwenImagePipeline

from qimage import vae as vae_ops
from qimage.pipeline import Pipeline
from qimage.sampling import euler_step, sample, schedule, true_cfg

PROMPT = 'On a white background, displaying black text "QWEN".'


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    return Pipeline.load(tiny_model_dir, device="cpu")


def test_pack_layout_is_channel_then_2x2():
    z = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    tokens = vae_ops.pack(z)
    i, j, c, dy, dx = 1, 2, 2, 1, 0
    assert tokens[1, i * 3 + j, c * 4 + dy * 2 + dx] == z[1, c, 2 * i + dy, 2 * j + dx]
    assert torch.equal(vae_ops.unpack(tokens, 4, 6), z)


def test_euler_integrates_a_straight_flow_exactly(pipe):
    x0, eps = torch.randn(1, 8, 16), torch.randn(1, 8, 16)
    timesteps, sigmas = schedule(pipe.scheduler, 7, 64)
    assert sigmas[0] == 1 and sigmas[-1] == 0 and torch.all(sigmas[1:] < sigmas[:-1])
    out = sample(lambda x, t, i: eps - x0, eps.clone(), timesteps, sigmas, step=euler_step)
    assert torch.allclose(out, x0, atol=1e-5)


def test_schedule_shift_grows_with_resolution(pipe):
    _, small = schedule(pipe.scheduler, 10, 256)
    _, large = schedule(pipe.scheduler, 10, 8192)
    assert torch.all(large[1:-2] > small[1:-2])  # more tokens -> more time spent at high noise
    assert small[-2] == pytest.approx(0.02, abs=1e-6)  # shift_terminal


def test_true_cfg_equation():
    cond, uncond = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    out = true_cfg(cond, uncond, 4.0)
    comb = uncond + 4.0 * (cond - uncond)
    assert torch.allclose(out.norm(dim=-1), cond.norm(dim=-1), atol=1e-5)
    assert torch.allclose(torch.nn.functional.cosine_similarity(out, comb, dim=-1), torch.ones(2, 5), atol=1e-5)


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_same_image_as_diffusers(pipe, tiny_model_dir, cfg):
    ours = pipe([PROMPT], width=64, height=48, steps=4, cfg=cfg, seeds=7)[0]
    ref = QwenImagePipeline.from_pretrained(tiny_model_dir)
    ref.set_progress_bar_config(disable=True)
    theirs = ref(PROMPT, negative_prompt=" " if cfg > 1 else None, true_cfg_scale=cfg, width=64, height=48,
                 num_inference_steps=4, generator=torch.Generator().manual_seed(7)).images[0]
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert a.shape == b.shape == (48, 64, 3) and a.std() > 1
    # measured: identical bytes (max difference 0) with and without CFG; one 8-bit level for float reordering
    assert np.abs(a - b).max() <= 1


def test_same_seed_same_bytes_and_batch_invariance(pipe):
    kw = dict(width=64, height=64, steps=3, cfg=4.0)
    alone = np.asarray(pipe([PROMPT], seeds=[5], **kw)[0])
    again = np.asarray(pipe([PROMPT], seeds=[5], **kw)[0])
    long = "a very long prompt about a red fox and " * 12
    batched = np.asarray(pipe([long, PROMPT], seeds=[9, 5], **kw)[1])
    assert np.array_equal(alone, again)
    assert np.abs(alone.astype(int) - batched.astype(int)).max() <= 1  # measured 0; one level of margin
    other = np.asarray(pipe([PROMPT], seeds=[6], **kw)[0])
    assert not np.array_equal(alone, other)


def test_condition_images_are_appended_with_frame_index(pipe, monkeypatch):
    from PIL import Image

    seen = []
    forward = pipe.transformer.forward

    def spy(hidden, embeds, mask, sigma, shapes, **kw):
        seen.append((hidden.shape[1], shapes[0]))
        return forward(hidden, embeds, mask, sigma, shapes, **kw)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    cond = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 96, 3), dtype=np.uint8))
    plain = pipe([PROMPT], width=64, height=64, steps=2, cfg=1.0, seeds=1, output="latent")
    edited = pipe([PROMPT], width=64, height=64, steps=2, cfg=1.0, seeds=1, output="latent", condition_images=[cond])
    assert edited.shape == plain.shape and not torch.allclose(edited, plain)
    tokens, shapes = seen[-1]
    assert shapes[0] == (1, 8, 8) and shapes[1][0] == 1  # target grid, then the condition grid
    assert tokens == 64 + shapes[1][1] * shapes[1][2]


def _gaussian_velocity(s0):
    """Exact v(x, s) = E[eps - x0 | x_s = x] for x0 ~ N(0, s0^2), eps ~ N(0, 1)."""
    def v(x, s):
        return x * (s - (1 - s) * s0**2) / ((1 - s) ** 2 * s0**2 + s**2)
    return v


def test_sde_keeps_the_marginals_and_reduces_to_euler(pipe):
    from qimage.sampling import sde_step, sde_step_stats

    s0 = 0.5
    v = _gaussian_velocity(s0)
    sigmas = torch.linspace(1, 0, 201)
    gens = [torch.Generator().manual_seed(0)]
    x = torch.randn(1, 20000, generator=torch.Generator().manual_seed(1))
    y, wrong = x.clone(), x.clone()
    for s, sn in zip(sigmas[:-1], sigmas[1:]):
        y = sde_step(y, v(y, s), s, sn, gens, noise_level=0.7)
        # negative control: the same noise without the score correction drifts off the data distribution
        mean, std = euler_step(wrong, v(wrong, s), s, sn), sde_step_stats(wrong, v(wrong, s), s, sn, 0.7)[1]
        wrong = mean + std * torch.randn(wrong.shape, generator=gens[0])
    assert abs(y.std().item() - s0) < 0.03
    assert abs(wrong.std().item() - s0) > 0.1
    x = torch.randn(2, 5, 4)
    vel = torch.randn(2, 5, 4)
    assert torch.allclose(sde_step(x, vel, torch.tensor(0.6), torch.tensor(0.5), noise_level=0.0),
                          euler_step(x, vel, torch.tensor(0.6), torch.tensor(0.5)), atol=1e-6)


def test_sde_step_plugs_into_the_pipeline_and_reproduces_per_seed(pipe):
    import functools

    from qimage.sampling import sde_logprob, sde_step, sde_step_stats

    step = functools.partial(sde_step, noise_level=0.7)
    transitions = []
    kw = dict(width=64, height=64, steps=3, cfg=1.0, output="latent")
    a = pipe([PROMPT], seeds=[3], step=step, callback=lambda i, x, v, xn: transitions.append((x, v, xn)), **kw)
    b = pipe([PROMPT, "another prompt"], seeds=[3, 4], step=step, **kw)[:1]
    ode = pipe([PROMPT], seeds=[3], **kw)
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, ode, atol=1e-3)
    _, sigmas = schedule(pipe.scheduler, 3, 64)
    x, v, x_next = transitions[0]
    mean, std = sde_step_stats(x, v, sigmas[0], sigmas[1], 0.7)
    logp = sde_logprob(x_next, mean, std)
    assert logp.shape == (1,) and torch.isfinite(logp).all()
    assert logp > sde_logprob(x_next + 3 * std, mean, std)  # a transition is likelier than one far from the mean
