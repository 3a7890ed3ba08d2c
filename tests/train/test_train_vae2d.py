"""Single-frame causal 3-D convolutions as 2-D ones: same outputs and gradients, and the patch is undone after."""
import torch
from diffusers import AutoencoderKLQwenImage

from qimage.presets import PRESETS
from qimage.train.vae2d import planar


def _pass(vae, x):
    dist = vae.encode(x[:, :, None]).latent_dist
    out = vae.decode(dist.mode()).sample[:, :, 0]
    out.square().mean().backward()
    return dist.mean.detach(), out.detach(), {n: p.grad.clone() for n, p in vae.named_parameters() if p.grad is not None}


def test_planar_equals_causal_3d_in_values_and_gradients():
    torch.manual_seed(0)
    vae = AutoencoderKLQwenImage(**PRESETS["tiny"].vae)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    ref = _pass(vae, x)
    vae.zero_grad()
    with planar(vae), planar(vae):  # re-entrant: the inner block neither patches twice nor undoes the outer
        fast = _pass(vae, x)
    torch.testing.assert_close(fast[0], ref[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast[1], ref[1], atol=1e-5, rtol=1e-5)
    assert ref[2].keys() == fast[2].keys() and len(ref[2]) > 20
    for name, g in ref[2].items():
        torch.testing.assert_close(fast[2][name], g, atol=1e-5, rtol=1e-4, msg=name)
    assert all("forward" not in m.__dict__ for m in vae.modules())  # instance patches removed
