"""MSRoPE against its formula, against diffusers' tables, and for the relative-position property."""
import math

import torch
from diffusers.models.transformers.transformer_qwenimage import QwenEmbedRope

from qimage.models.rope import MSRoPE, apply_rope, image_positions, text_positions


def test_image_grid_is_centred_and_frames_count_images():
    pos = image_positions([(1, 4, 6), (1, 5, 3)])
    first, second = pos[:24].view(4, 6, 3), pos[24:].view(5, 3, 3)
    assert first[:, 0, 1].tolist() == [-2, -1, 0, 1]  # h=4 -> -2..1
    assert first[0, :, 2].tolist() == [-3, -2, -1, 0, 1, 2]
    assert second[:, 0, 1].tolist() == [-3, -2, -1, 0, 1]  # odd h=5 -> -(5-2)..1
    assert set(first[..., 0].flatten().tolist()) == {0} and set(second[..., 0].flatten().tolist()) == {1}


def test_text_sits_on_the_diagonal_after_the_largest_half_size():
    pos = text_positions([(1, 4, 6), (1, 10, 2)], 3)
    assert pos.tolist() == [[5, 5, 5], [6, 6, 6], [7, 7, 7]]  # m = max(4//2, 6//2, 10//2, 2//2) = 5


def test_angles_follow_the_formula():
    rope = MSRoPE((4, 6, 6), theta=10000)
    ang = rope.angles(torch.tensor([[2, -3, 5]]))[0]
    expected = [p * 10000 ** (-2 * k / d) for p, d in [(2, 4), (-3, 6), (5, 6)] for k in range(d // 2)]
    assert torch.allclose(ang, torch.tensor(expected, dtype=torch.float64))


def test_tables_match_diffusers():
    ours = MSRoPE((8, 12, 12))
    ref = QwenEmbedRope(theta=10000, axes_dim=[8, 12, 12], scale_rope=True)
    for shapes, text_len in [([(1, 4, 6)], 7), ([(1, 5, 3), (1, 4, 4)], 11), ([(1, 32, 32)], 40)]:
        vid, txt = ref([shapes], max_txt_seq_len=text_len, device=torch.device("cpu"))
        cos, sin = ours(shapes, text_len)
        table = torch.cat([txt, vid])
        assert torch.allclose(cos, table.real, atol=2e-6) and torch.allclose(sin, table.imag, atol=2e-6)


def test_logits_depend_only_on_relative_position():
    rope = MSRoPE((4, 6, 6))
    q, k = torch.randn(1, 1, 16), torch.randn(1, 1, 16)
    p1, p2 = torch.tensor([[0, 3, -2]]), torch.tensor([[1, -4, 7]])

    def logit(a, b):
        ca, sa = (t.float() for t in (rope.angles(a).cos(), rope.angles(a).sin()))  # (L=1, D/2)
        cb, sb = (t.float() for t in (rope.angles(b).cos(), rope.angles(b).sin()))
        return (apply_rope(q, ca, sa) * apply_rope(k, cb, sb)).sum()

    shift = torch.tensor([[5, -9, 13]])
    assert math.isclose(logit(p1, p2), logit(p1 + shift, p2 + shift), rel_tol=1e-5, abs_tol=1e-5)
    assert not math.isclose(logit(p1, p2), logit(p1, p2 + shift), rel_tol=1e-3)


def test_rotation_preserves_norm():
    x = torch.randn(2, 3, 5, 16)  # (B, H, L, D)
    cos, sin = MSRoPE((4, 6, 6))([(1, 2, 2)], 1)
    assert torch.allclose(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
