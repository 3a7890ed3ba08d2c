"""VAE normalisation as the reference pipeline does it, and the released model's size loading by name."""
import torch
from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel

from qimage import vae as vae_ops
from qimage.models import MMDiT
from qimage.presets import PRESETS, QWEN_IMAGE_TRANSFORMER


def test_latents_are_normalised_with_the_config_statistics():
    torch.manual_seed(0)
    cfg = dict(PRESETS["tiny"].vae, latents_mean=[0.5, -1.0, 2.0, 0.1], latents_std=[2.0, 0.5, 1.5, 3.0])
    vae = AutoencoderKLQwenImage(**cfg).eval()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        z = vae_ops.encode(vae, x)
        mu = vae.encode(x[:, :, None]).latent_dist.mode()[:, :, 0]
        mean = torch.tensor(cfg["latents_mean"]).view(1, 4, 1, 1)
        std = torch.tensor(cfg["latents_std"]).view(1, 4, 1, 1)
        assert z.shape == (2, 4, 32 // vae_ops.scale_factor(vae), 48 // vae_ops.scale_factor(vae))
        assert torch.allclose(z, (mu - mean) / std, atol=1e-6)
        image = vae_ops.decode(vae, z)
        expected = vae.decode((z * std + mean)[:, :, None]).sample[:, :, 0].clamp(-1, 1)
        assert torch.allclose(image, expected, atol=1e-6)


def test_released_qwen_image_size_loads_by_name():
    with torch.device("meta"):
        ours = MMDiT(**QWEN_IMAGE_TRANSFORMER)
        ref = QwenImageTransformer2DModel(**QWEN_IMAGE_TRANSFORMER)
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert set(ours_sd) == set(ref_sd)
    assert all(ours_sd[k].shape == ref_sd[k].shape for k in ref_sd)
    assert 20.0e9 < sum(p.numel() for p in ours.parameters()) < 20.6e9  # the 20B model
