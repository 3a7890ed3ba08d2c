"""Single-image VAE passes as 2-D convolutions: the same function, about half the time on a CPU.

diffusers' ``AutoencoderKLQwenImage`` treats an image as a one-frame video and runs causal 3-D convolutions: time is
padded with 2*p zeros *before* the frame, so of a kernel's kt time slices only the last one ever meets data. For a
single frame (and no cached frames, which only exist from a video's second chunk on), each causal convolution is
therefore exactly a 2-D convolution with ``weight[:, :, -1]``, the same bias, spatial padding and stride. ``planar``
switches a VAE's causal convolutions to that form for the duration of a ``with`` block (per instance, nothing global);
anything with more than one frame or a cache still takes diffusers' path. Gradients reach the same parameters.
"""
from __future__ import annotations

import contextlib
import types

import torch.nn.functional as F


def _planar_forward(self, x, cache_x=None):
    if x.shape[2] != 1 or cache_x is not None:
        return type(self).forward(self, x, cache_x)
    pw, _, ph, _, _, _ = self._padding
    y = F.conv2d(F.pad(x[:, :, 0], (pw, pw, ph, ph)), self.weight[:, :, -1], self.bias, stride=self.stride[1:])
    return y[:, :, None]


@contextlib.contextmanager
def planar(vae):
    from diffusers.models.autoencoders.autoencoder_kl_qwenimage import QwenImageCausalConv3d

    # modules already switched by an enclosing `planar` stay as they are (and are restored by it): re-entrant
    convs = [m for m in vae.modules() if isinstance(m, QwenImageCausalConv3d) and "forward" not in m.__dict__]
    for m in convs:
        m.forward = types.MethodType(_planar_forward, m)
    try:
        yield vae
    finally:
        for m in convs:
            del m.forward
