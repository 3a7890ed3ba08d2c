"""Forward+backward speed of qimage's MMDiT against diffusers' QwenImageTransformer2DModel.

Baseline, measured in the same run: diffusers' class on the same config, weights and inputs. Also prints the achieved
GFLOP/s (FLOPs counted by torch's FlopCounterMode) against a matmul peak measured here (fp32 GEMM of the same scale).

    python bench/mmdit.py [--config toy|wide] [--batch 32] [--iters 15]
"""
from __future__ import annotations

import argparse
import time

import torch
from diffusers import QwenImageTransformer2DModel
from torch.utils.flop_counter import FlopCounterMode

from qimage.models import MMDiT
from qimage.presets import PRESETS

CONFIGS = {
    "toy": PRESETS["toy"].transformer,  # the toy's denoiser: 3.7M params, 128 image tokens at 128x64 px
    "wide": dict(patch_size=2, in_channels=64, out_channels=16, num_layers=4, attention_head_dim=64,
                 num_attention_heads=8, joint_attention_dim=512, axes_dims_rope=(16, 24, 24)),
}


def matmul_peak(n: int = 1024, iters: int = 5, trials: int = 8) -> float:
    """Best fp32 GEMM rate over several trials (the best is the least disturbed by other processes)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(iters):
            a @ b
        best = max(best, 2 * n**3 * iters / (time.perf_counter() - t) / 1e9)
    return best


def make_inputs(cfg, batch, h, w, text_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, h * w, cfg["in_channels"], generator=g)
    c = torch.randn(batch, text_len, cfg["joint_attention_dim"], generator=g)
    mask = torch.ones(batch, text_len, dtype=torch.long)
    lengths = torch.randint(text_len // 2, text_len + 1, (batch,), generator=g)
    for i, n in enumerate(lengths):
        mask[i, n:] = 0  # padded prompts, as in training batches
    t = torch.rand(batch, generator=g)
    return x, c, mask, t, [[(1, h, w)]] * batch


def step(model, inputs):
    model.zero_grad(set_to_none=True)
    out = model(*inputs).sample
    out.square().mean().backward()
    return out


def timed(models, inputs, iters):
    """Interleaved single steps; per model the minimum wall time and the minimum process CPU time per step.

    CPU time is the figure that survives a shared machine: other processes stretch wall time, not this one's CPU time.
    """
    for m in models:
        step(m, inputs)
    wall = [[] for _ in models]
    cpu = [[] for _ in models]
    for _ in range(iters):
        for k, m in enumerate(models):
            w, c = time.perf_counter(), time.process_time()
            step(m, inputs)
            wall[k].append(time.perf_counter() - w)
            cpu[k].append(time.process_time() - c)
    return [min(w) for w in wall], [min(c) for c in cpu]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="toy", choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", default="16x8", help="token grid WxH (toy: 128x64 px with the 4x VAE)")
    ap.add_argument("--text", type=int, default=48, help="padded text length")
    ap.add_argument("--iters", type=int, default=15)
    args = ap.parse_args()
    cfg = CONFIGS[args.config]
    w, h = (int(v) for v in args.size.split("x"))

    torch.manual_seed(0)
    ref = QwenImageTransformer2DModel(**cfg).train()
    ours = MMDiT(**cfg).train()
    ours.load_state_dict(ref.state_dict(), strict=True)
    inputs = make_inputs(cfg, args.batch, h, w, args.text)

    diff = (step(ref, inputs) - step(ours, inputs)).abs().max().item()
    ours_params = dict(ours.named_parameters())

    def grad(p):  # qimage skips the last block's unused text stream: None there, zeros in diffusers
        return torch.zeros_like(p) if p.grad is None else p.grad

    grad_diff = max((grad(p) - grad(ours_params[n])).abs().max().item() for n, p in ref.named_parameters())
    with FlopCounterMode(display=False) as fc:
        step(ours, inputs)
    flops = fc.get_total_flops()

    (t_ref, t_ours), (c_ref, c_ours) = timed([ref, ours], inputs, args.iters)
    peak = matmul_peak()
    params = sum(p.numel() for p in ours.parameters())
    print(f"config {args.config}: {params / 1e6:.2f}M params, batch {args.batch}, {h * w} image + {args.text} text tokens, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"max |output diff| {diff:.2e}, max |grad diff| {grad_diff:.2e}")
    print(f"wall: diffusers fwd+bwd {t_ref * 1e3:.1f} ms | qimage {t_ours * 1e3:.1f} ms | speed-up {t_ref / t_ours:.2f}x")
    print(f"cpu:  diffusers fwd+bwd {c_ref * 1e3:.1f} ms | qimage {c_ours * 1e3:.1f} ms | speed-up {c_ref / c_ours:.2f}x")
    print(f"{flops / 1e9:.2f} GFLOP per step: qimage {flops / t_ours / 1e9:.1f} GFLOP/s, diffusers "
          f"{flops / t_ref / 1e9:.1f} GFLOP/s, matmul peak {peak:.1f} GFLOP/s "
          f"(qimage at {100 * flops / t_ours / 1e9 / peak:.0f}% of peak)")


if __name__ == "__main__":
    main()
