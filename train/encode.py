"""The frozen encoders of pretraining: images -> VAE posterior, captions -> prompt embeddings, with caches.

The VAE and the text encoder do not train, so each image's posterior (normalised mean and std) and each caption's
embedding can be computed once and reused. Latents are z = mean + std * eps with fresh eps every step (the posterior
is a distribution; resampling it is free augmentation), or the mean alone. In the normalised space of
``qimage.vae.encode``:

    mean_n = (mu - latents_mean) / latents_std,     std_n = sigma / latents_std

Determinism: a caption is always encoded alone (no padding from other prompts, so its embedding is the same bytes
whatever batch it first appears in), and cached latents are encoded in a fixed order at the start of a stage, so a
resumed run sees exactly the tensors an uninterrupted one saw.
"""
from __future__ import annotations

import torch

from qimage import vae as vae_ops
from qimage.text_encoder import encode_prompts

from .buckets import fit
from .vae2d import planar


@torch.no_grad()
def posterior(vae, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) in [-1, 1] -> normalised posterior (mean, std), each (B, z, H/f, W/f)."""
    with planar(vae):  # single images: 2-D convolutions, same values, about half the time
        dist = vae.encode(images.to(vae.dtype)[:, :, None]).latent_dist
    mean, std = dist.mean[:, :, 0].float(), dist.std[:, :, 0].float()
    shape = (1, vae.config.z_dim, 1, 1)
    m = torch.tensor(vae.config.latents_mean, dtype=mean.dtype, device=mean.device).view(shape)
    s = torch.tensor(vae.config.latents_std, dtype=mean.dtype, device=mean.device).view(shape)
    return (mean - m) / s, std / s


class FrozenEncoders:
    def __init__(self, vae, text_encoder, tokenizer, device, cache: bool = True, chunk: int = 32):
        self.vae, self.text_encoder, self.tokenizer = vae, text_encoder, tokenizer
        self.device, self.cache, self.chunk = device, cache, chunk
        self._latents: dict = {}
        self._prompts: dict[str, torch.Tensor] = {}

    def _encode_images(self, records, bucket) -> tuple[torch.Tensor, torch.Tensor]:
        images = vae_ops.from_pil([fit(r.load(), bucket) for r in records]).to(self.device)
        return posterior(self.vae, images)

    def uncached(self, keyed_records: list) -> list:
        """The [(key, record, bucket)] whose latents are not in the cache yet, in the given order."""
        return [(k, r, b) for k, r, b in keyed_records if (k, b) not in self._latents]

    def warm(self, keyed_records: list, progress=None) -> None:
        """Encodes [(key, record, bucket)] into the latent cache, chunk by chunk in the given order."""
        if not self.cache:
            return
        todo = self.uncached(keyed_records)
        by_bucket: dict = {}
        for item in todo:
            by_bucket.setdefault(item[2], []).append(item)
        for bucket, items in sorted(by_bucket.items()):
            for i in range(0, len(items), self.chunk):
                part = items[i:i + self.chunk]
                mean, std = self._encode_images([r for _, r, _ in part], bucket)
                for j, (k, _, b) in enumerate(part):
                    self._latents[(k, b)] = (mean[j].cpu(), std[j].cpu())
                if progress is not None:
                    progress(len(part))

    def latents(self, keyed_records: list, bucket, eps: torch.Tensor | None) -> torch.Tensor:
        """Normalised latents (B, z, h, w) for [(key, record)]: mean + std * eps, or the mean when eps is None."""
        if self.cache:
            self.warm([(k, r, bucket) for k, r in keyed_records])
            pairs = [self._latents[(k, bucket)] for k, _ in keyed_records]
            mean = torch.stack([p[0] for p in pairs]).to(self.device)
            std = torch.stack([p[1] for p in pairs]).to(self.device)
        else:
            mean, std = self._encode_images([r for _, r in keyed_records], bucket)
        return mean if eps is None else mean + std * eps.to(mean)

    def prompts(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeds (B, L, hidden), mask (B, L)), right-padded to the longest caption of this batch."""
        rows = []
        for c in captions:
            e = self._prompts.get(c)
            if e is None:
                e, _ = encode_prompts(self.text_encoder, self.tokenizer, [c], self.device)
                e = e[0].float()
                if self.cache:
                    self._prompts[c] = e
            rows.append(e)
        return pad_rows(rows)


def pad_rows(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeds (B, L, hidden), mask (B, L)) of (L_i, hidden) rows, right-padded with zeros the mask leaves out."""
    from torch.nn.utils.rnn import pad_sequence

    embeds = pad_sequence(rows, batch_first=True)
    mask = pad_sequence([torch.ones(e.shape[0], dtype=torch.long, device=e.device) for e in rows], batch_first=True)
    return embeds, mask
