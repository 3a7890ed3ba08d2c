"""Speed of one pretraining step at the toy config, against a matmul peak measured in the same run.

The step is the trainer's own (`qimage.train.pretrain.Trainer.train_step`: batch schedule, cached latents and prompt
embeddings, timestep/noise draws, MMDiT forward and backward, clipping, AdamW, EMA) on a random-initialised toy model
(`qimage init --preset toy`) with `qimage synth pure` data at 128x64, batch 32, with the toy recipe's optimiser
settings (train/recipes/toy-pretrain.yaml), once with torch's per-tensor AdamW and once with `optim.fused` (one
kernel for all parameters). FLOPs are counted by torch's FlopCounterMode over one step; the peak is the best fp32
GEMM rate of bench/mmdit.py, measured here.

    python bench/train.py [--batch 32] [--iters 10] [--size 128x64]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from mmdit import matmul_peak  # bench/ is the script's folder, so its sibling imports directly

RECIPES = Path(__file__).resolve().parent.parent / "train" / "recipes"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--size", default="128x64")
    ap.add_argument("--samples", type=int, default=64, help="synthesised training images")
    args = ap.parse_args()

    from qimage.quiet import quiet_libraries
    from qimage.model_dir import init_model_dir
    from qimage.synth.runner import RunConfig, run as synth_run
    from qimage.train.config import PretrainConfig, from_dict
    from qimage.train.data import Schedule
    from qimage.train.distributed import World
    from qimage.train.pretrain import Trainer

    quiet_libraries()
    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="qimage-bench-train-"))
    init_model_dir(tmp / "toy", "toy", seed=0)
    synth_run(RunConfig(kind="pure", n=args.samples, out=str(tmp / "pure"), width=w, height=h, seed=0), progress=False)
    recipe_optim = yaml.safe_load((RECIPES / "toy-pretrain.yaml").read_text())["optim"]
    rows = []
    for fused in (False, True):
        label = ("fused" if fused else "per-tensor") + " AdamW"
        if fused == recipe_optim.get("fused", False):
            label += " (the recipe)"
        optim = {**recipe_optim, "fused": fused}
        cfg = from_dict(PretrainConfig, {
            "out": str(tmp / "run"), "model": {"dir": str(tmp / "toy"), "init": "adaln-zero"},
            "sources": {"pure": {"path": str(tmp / "pure")}}, "batch_size": args.batch, "optim": optim,
            "stages": [{"name": "bench", "steps": 1000, "buckets": [args.size]}], "log": {"sample_every": 0},
        })
        trainer = Trainer(cfg, tmp / "run", World(), torch.device("cpu"), progress=False)
        schedule = Schedule(trainer.records, {}, [(w, h)], args.batch, cfg.stages[0].steps, cfg.seed, 0)
        for i in range(3):  # warm-up: fills the latent and prompt caches, allocator, oneDNN kernels
            trainer.train_step(schedule, i)
        with FlopCounterMode(display=False) as fc:
            trainer.train_step(schedule, 3)
        flops = fc.get_total_flops()
        times = []
        for i in range(args.iters):
            t = time.perf_counter()
            trainer.train_step(schedule, 4 + i)
            times.append(time.perf_counter() - t)
        rows.append((label, flops, min(times), statistics.median(times)))
    peak = matmul_peak()
    params = sum(p.numel() for p in trainer.model.parameters())
    tokens = (w // trainer.vae_scale // 2) * (h // trainer.vae_scale // 2)
    print(f"toy MMDiT {params / 1e6:.2f}M params, {tokens} image tokens at {w}x{h}, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, {rows[0][1] / 1e9:.1f} GFLOP per step (fwd+bwd)")
    print("| optimiser | step ms (best / median) | samples/s (best) | samples/s (median) | GFLOP/s (best) "
          "| matmul peak GFLOP/s | % of peak |")
    print("|---|---|---|---|---|---|---|")
    for label, flops, best, med in rows:
        print(f"| {label} | {best * 1e3:.0f} / {med * 1e3:.0f} | {args.batch / best:.1f} | {args.batch / med:.1f} "
              f"| {flops / best / 1e9:.1f} | {peak:.1f} | {100 * flops / best / 1e9 / peak:.0f}% |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
