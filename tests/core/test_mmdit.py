"""MMDiT is drop-in for diffusers' QwenImageTransformer2DModel: same weights -> same outputs, both ways."""
import pytest
import torch
from diffusers import QwenImageTransformer2DModel

from qimage.models import MMDiT

CFG = dict(patch_size=2, in_channels=32, out_channels=8, num_layers=2, attention_head_dim=32,
           num_attention_heads=4, joint_attention_dim=64, axes_dims_rope=(8, 12, 12))


def pair(**extra):
    """A diffusers model with non-trivial weights (every tensor perturbed) and qimage's MMDiT loaded strictly from it."""
    torch.manual_seed(0)
    ref = QwenImageTransformer2DModel(**CFG, **extra).eval()
    ref.load_state_dict({k: v + 0.1 * torch.randn_like(v) for k, v in ref.state_dict().items()})
    ours = MMDiT(**CFG, **extra).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def inputs(b=2, h=4, w=6, lt=7, images=1):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, h * w * images, 32, generator=g)
    c = torch.randn(b, lt, 64, generator=g)
    mask = torch.ones(b, lt, dtype=torch.long)
    mask[-1, 4:] = 0
    return x, c, mask, torch.tensor([0.3, 0.8][:b]), [[(1, h, w)] * images] * b


def test_state_dict_names_are_diffusers():
    ref, ours = pair()
    assert set(ref.state_dict()) == set(ours.state_dict())


@pytest.mark.parametrize("case", ["no-mask", "mask", "edit", "zero_cond_t"])
def test_outputs_match_diffusers(case):
    extra = {"zero_cond_t": True} if case == "zero_cond_t" else {}
    ref, ours = pair(**extra)
    x, c, mask, t, shapes = inputs(images=2 if case in ("edit", "zero_cond_t") else 1)
    mask = None if case == "no-mask" else mask
    with torch.no_grad():
        a = ref(x, c, mask, t, shapes).sample
        b = ours(x, c, mask, t, shapes).sample
    assert a.abs().max() > 1  # not a vacuous comparison
    assert (a - b).abs().max() < 1e-5  # measured 2.7e-6 to 3.6e-6 over the four cases; ~3x margin


def test_gradients_match_diffusers():
    ref, ours = pair()
    x, c, mask, t, shapes = inputs()
    for m in (ref, ours):
        m(x, c, mask, t, shapes).sample.square().mean().backward()
    ours_params = dict(ours.named_parameters())

    def grad(p):  # the last block's text stream feeds nothing: its grads are None or zeros, depending on the path
        return torch.zeros_like(p) if p.grad is None else p.grad

    assert any(p.grad is not None and p.grad.abs().max() > 1e-3 for p in ours.parameters())
    for name, p in ref.named_parameters():
        # measured: largest |difference| 3.6e-7 over all parameters; ~3x margin, no relative slack
        assert torch.allclose(grad(p), grad(ours_params[name]), atol=1e-6, rtol=0), name


def test_saves_and_loads_both_ways(tmp_path):
    ref, ours = pair()
    x, c, mask, t, shapes = inputs()
    ours.save_pretrained(tmp_path / "q")
    assert '"_class_name": "QwenImageTransformer2DModel"' in (tmp_path / "q" / "config.json").read_text()
    loaded_ref = QwenImageTransformer2DModel.from_pretrained(tmp_path / "q").eval()
    ref.save_pretrained(tmp_path / "d")
    loaded_ours = MMDiT.from_pretrained(tmp_path / "d").eval()
    with torch.no_grad():
        expected = ours(x, c, mask, t, shapes).sample
        assert torch.allclose(loaded_ref(x, c, mask, t, shapes).sample, expected, atol=1e-5)  # as above
        assert torch.allclose(loaded_ours(x, c, mask, t, shapes).sample, expected, atol=1e-6)


def test_output_ignores_padding_added_by_other_prompts():
    _, ours = pair()
    x, c, _, t, shapes = inputs(b=1, lt=5)
    long = torch.randn(1, 40, 64)
    batch_c = torch.cat([torch.nn.functional.pad(c, (0, 0, 0, 35)), long])
    batch_mask = torch.zeros(2, 40, dtype=torch.long)
    batch_mask[0, :5] = 1
    batch_mask[1] = 1
    with torch.no_grad():
        alone = ours(x, c, torch.ones(1, 5), t, shapes).sample
        batched = ours(torch.cat([x, x]), batch_c, batch_mask, torch.cat([t, t]), shapes * 2).sample[:1]
    assert (alone - batched).abs().max() < 1e-5


def test_samples_may_have_different_grids_in_one_batch():
    _, ours = pair()
    x, c, mask, t, _ = inputs()
    shapes = [[(1, 4, 6)], [(1, 6, 4)]]
    with torch.no_grad():
        both = ours(x, c, mask, t, shapes).sample
        second = ours(x[1:], c[1:, :4], None, t[1:], [[(1, 6, 4)]]).sample
    assert (both[1:] - second).abs().max() < 1e-5


def test_gradient_checkpointing_gives_the_same_gradients():
    _, ours = pair()
    x, c, mask, t, shapes = inputs()
    ours.train()
    ours(x, c, mask, t, shapes).sample.sum().backward()
    plain = [p.grad.clone() for p in ours.parameters() if p.grad is not None]
    ours.zero_grad(set_to_none=True)
    ours.enable_gradient_checkpointing()
    assert ours.gradient_checkpointing
    ours(x, c, mask, t, shapes).sample.sum().backward()
    ckpt = [p.grad for p in ours.parameters() if p.grad is not None]
    assert len(plain) == len(ckpt) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(plain, ckpt))


def test_adaln_zero_init_starts_at_zero_velocity():
    m = MMDiT(**CFG).initialize_weights("adaln-zero")
    x, c, mask, t, shapes = inputs()
    assert m(x, c, mask, t, shapes).sample.abs().max() == 0
    with pytest.raises(ValueError, match="unknown init scheme 'bogus'"):
        m.initialize_weights("bogus")


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="axes_dims_rope"):
        MMDiT(**{**CFG, "axes_dims_rope": (8, 8, 8)})
