"""The Wan-2.1 VAE as Qwen-Image uses it, through diffusers' ``AutoencoderKLQwenImage``.

Images are one-frame videos (B, 3, 1, H, W) in [-1, 1]. Latents are normalised per channel with the config's
statistics and packed into 2x2 patches for the transformer:

    z      = (mu(x) - latents_mean) / latents_std                  encode (posterior mean, or a sample)
    x      = clamp(D(z * latents_std + latents_mean), -1, 1)       decode
    tokens[b, (i, j), c*4 + dy*2 + dx] = z[b, c, 2i + dy, 2j + dx]  pack (row-major over the 2x2 grid)
"""
from __future__ import annotations

import torch


def scale_factor(vae) -> int:
    """Spatial compression, as diffusers' pipeline computes it: 2 ** len(temperal_downsample)."""
    return 2 ** len(vae.config.temperal_downsample)


def _stats(vae, like: torch.Tensor):
    shape = (1, vae.config.z_dim, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, dtype=like.dtype, device=like.device).view(shape)
    std = torch.tensor(vae.config.latents_std, dtype=like.dtype, device=like.device).view(shape)
    return mean, std


def encode(vae, images: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> normalised latents (B, z, H/f, W/f). The posterior mean unless ``sample``."""
    dist = vae.encode(images.to(vae.dtype)[:, :, None]).latent_dist
    z = (dist.sample(generator) if sample else dist.mode())[:, :, 0]
    mean, std = _stats(vae, z)
    return (z - mean) / std


def decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents (B, z, h, w) -> images (B, 3, h*f, w*f) in [-1, 1]."""
    mean, std = _stats(vae, latents)
    z = (latents * std + mean).to(vae.dtype)
    return vae.decode(z[:, :, None]).sample[:, :, 0].clamp(-1, 1)


def pack(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h/2 * w/2, 4C) tokens."""
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, h/2 * w/2, 4C) tokens -> (B, C, h, w) latents; h, w in latent pixels."""
    b, _, d = tokens.shape
    return tokens.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, d // 4, h, w)


def to_pil(images: torch.Tensor):
    """(B, 3, H, W) in [-1, 1] -> PIL images, rounding like diffusers' postprocess."""
    from PIL import Image

    arr = ((images.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype("uint8")
    return [Image.fromarray(a) for a in arr]


def from_pil(images, size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL images -> (B, 3, H, W) in [-1, 1], resized to size=(W, H) with Lanczos when given."""
    import numpy as np
    from PIL import Image

    out = []
    for im in images:
        im = im.convert("RGB")
        if size is not None and im.size != tuple(size):
            im = im.resize(tuple(size), Image.LANCZOS)
        out.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1))
    return torch.stack(out)
