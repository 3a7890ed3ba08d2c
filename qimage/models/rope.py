"""MSRoPE: Qwen-Image's multimodal scalable rotary position embedding.

Every token gets a position on three axes (frame, height, width); the head dimension is split into three parts of
sizes ``axes_dims = (d_f, d_h, d_w)`` and each part is rotated by its own axis position:

    angle(p, k) = p * theta^(-2k / d_a)         for k = 0 .. d_a/2 - 1 on axis a with position p
    (x_{2k}, x_{2k+1}) -> (x_{2k} cos a - x_{2k+1} sin a,  x_{2k} sin a + x_{2k+1} cos a)

Positions:
- image ``i`` of a sample (target 0, condition images 1, 2, ...) with a token grid of h x w tokens and f frames:
  frame = i .. i+f-1, row r -> r - (h - h//2), column c -> c - (w - w//2): the grid is centred on the origin
  (h = 4 gives -2, -1, 0, 1);
- text token j: m + j on all three axes (the diagonal), m = max over the sample's images of max(h//2, w//2), so text
  never collides with image positions however the image is resized.

Because the rotation is applied to queries and keys, attention logits depend only on position differences:
<R(p) q, R(p') k> = <q, R(p' - p) k>.  Angles are computed in float64 and the rotation in float32 whatever the model's
dtype, since bf16 angles lose the low-frequency axes.
"""
from __future__ import annotations

from typing import Sequence

import torch

Shape = tuple[int, int, int]  # (frames, height tokens, width tokens)


def axis_frequencies(dim: int, theta: float = 10000.0) -> torch.Tensor:
    """theta^(-2k/dim) for k = 0 .. dim/2 - 1, in float64."""
    if dim % 2:
        raise ValueError(f"every MSRoPE axis dim must be even, got {dim}")
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def image_positions(shapes: Sequence[Shape]) -> torch.Tensor:
    """(N, 3) integer positions (frame, row, col) of the tokens of a sample's images, row-major, image after image."""
    out = []
    for index, (f, h, w) in enumerate(shapes):
        frame = torch.arange(index, index + f)
        row = torch.arange(h) - (h - h // 2)
        col = torch.arange(w) - (w - w // 2)
        grid = torch.stack(torch.meshgrid(frame, row, col, indexing="ij"), dim=-1)
        out.append(grid.reshape(-1, 3))
    return torch.cat(out)


def text_positions(shapes: Sequence[Shape], text_len: int) -> torch.Tensor:
    """(text_len, 3): token j at m + j on every axis, m = max(h//2, w//2) over the images."""
    start = max(max(h // 2, w // 2) for _, h, w in shapes)
    return (start + torch.arange(text_len)).unsqueeze(-1).expand(text_len, 3)


class MSRoPE:
    """Computes (cos, sin) tables for given image shapes and text length; caches them per shape and device.

    Not an nn.Module on purpose: it holds no weights, and a module would put nothing in the state dict anyway.
    """

    def __init__(self, axes_dims: Sequence[int] = (16, 56, 56), theta: float = 10000.0):
        self.axes_dims = tuple(int(d) for d in axes_dims)
        self.freqs = [axis_frequencies(d, theta) for d in self.axes_dims]
        self._cache: dict = {}

    def angles(self, positions: torch.Tensor) -> torch.Tensor:
        """(N, 3) positions -> (N, head_dim/2) rotation angles in float64, axes concatenated (frame, height, width)."""
        return torch.cat([positions[:, a, None].double() * self.freqs[a] for a in range(3)], dim=-1)

    def __call__(self, shapes: Sequence[Shape], text_len: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for the joint sequence [text, image], each (text_len + image_tokens, head_dim/2) float32."""
        key = (tuple(tuple(int(v) for v in s) for s in shapes), int(text_len), str(device))
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            pos = torch.cat([text_positions(shapes, text_len), image_positions(shapes)])
            ang = self.angles(pos)
            self._cache[key] = (ang.cos().float().to(device), ang.sin().float().to(device))
        return self._cache[key]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates consecutive channel pairs of x (..., L, D) by angles whose cos/sin are (L, D/2), in float32."""
    return apply_rope_complex(x, as_complex(cos, sin))


def as_complex(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The rotation table as unit complex numbers cos + i sin, (L, D/2)."""
    return torch.complex(cos, sin)


def apply_rope_complex(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Each pair (x_2k, x_2k+1) read as the complex number x_2k + i x_2k+1 and multiplied by the table: one complex
    multiply is the fastest form of the rotation on CPU (measured against pair arithmetic and x*C + swap(x)*S)."""
    z = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(z * table).flatten(-2).type_as(x)
