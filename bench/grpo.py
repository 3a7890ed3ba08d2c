"""GRPO's costs on the shipped toy: SDE rollouts against the ODE sampler, one iteration's breakdown, reward agreement.

Baseline, measured in the same run: the ODE (Euler) sampler on the same model, prompts, seeds, steps and CFG.

    python bench/grpo.py [--images 64] [--steps 10] [--device auto]

Prints: rollout time with the SDE (every step stochastic, log-probs kept) / ODE time (goal <= 1.1x) and rollout
images/s; one GRPO iteration (P x G = images) split into rollout, reward, log-prob recomputation (forward only) and
the rest of the update (backward, optimiser), with the share of each; one iteration of the awm objective; and how
often the fast OCR reward and the eval's full OCR agree on whether a rollout's text is exact.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch


def best_of(fn, trials: int = 2) -> float:
    times = []
    for _ in range(trials):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from qimage.quiet import quiet_libraries
    from qimage.device import autocast, pick_device
    from qimage.train import awm, grpo, rewards
    from qimage.config import parse
    from qimage.train.config import GrpoConfig, check_post
    from qimage.train.distributed import World
    from qimage.train.prompts import PromptPool

    quiet_libraries()
    device = pick_device(args.device)
    n = args.images
    cfg = parse(GrpoConfig, {"out": "/tmp/qimage-bench-grpo", "device": str(device), "prompts": {"letters": 1.0},
                                 "prompts_per_step": n // 8, "group_size": 8, "beta": 0.004, "minibatches": 1,
                                 "rollout": {"steps": args.steps, "window": [0, args.steps - 1], "micro_batch": 32},
                                 "log": {"sample_every": 0, "prompts": []}})
    check_post(cfg)
    trainer = grpo.Trainer(cfg, cfg.out, World(), device, progress=False)
    pipe = trainer.pipe
    items = PromptPool(cfg.prompts, 0).draw(0, n)
    prompts, seeds = [it["prompt"] for it in items], list(range(n))
    W, H = trainer.size
    mb = cfg.rollout.micro_batch

    def ode():
        with autocast(device):
            for k in range(0, n, mb):
                pipe(prompts[k:k + mb], width=W, height=H, steps=args.steps, seeds=seeds[k:k + mb], output="latent")

    def sde():
        with autocast(device):
            for k in range(0, n, mb):
                grpo.rollout(pipe, items[k:k + mb], seeds[k:k + mb], cfg.rollout, (W, H))

    ode()  # warm-up
    t_ode, t_sde = best_of(ode), best_of(sde)
    print(f"rollout ({n} images, {args.steps} steps, CFG {cfg.rollout.cfg}, {device}):")
    print(f"  ODE (baseline) {t_ode:.2f} s, SDE with log-probs {t_sde:.2f} s: ratio {t_sde / t_ode:.3f} (goal <= 1.1)")
    print(f"  rollout images/s: {n / t_sde:.1f}")

    chunks = trainer.rollouts(*trainer.global_batch(0))
    t = time.perf_counter()
    _, guard = trainer.rewards(chunks)
    t_reward = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad(), autocast(device):
        for c in chunks:
            for j in range(len(c.x)):
                grpo.step_stats(c, j, cfg.rollout)
    t_recompute = time.perf_counter() - t
    out = trainer.iteration()
    parts = {"rollout": out["rollout_s"], "reward": out["reward_s"], "log-prob recomputation": t_recompute,
             "backward + optimiser (+ KL reference)": max(0.0, out["train_s"] - t_recompute)}
    total = sum(parts.values())
    print(f"one GRPO iteration ({n} images, {args.steps - 1} trained steps, beta {cfg.beta}): {total:.1f} s")
    for k, v in parts.items():
        print(f"  {k:<40} {v:6.2f} s  {100 * v / total:5.1f}%")
    print(f"  (reward alone, measured separately: {t_reward:.2f} s = {1000 * t_reward / n:.0f} ms per image)")

    awm_cfg = dataclasses.replace(cfg, objective="awm", beta=1.0,
                                  rollout=dataclasses.replace(cfg.rollout, window=[0, 1]))
    out = awm.Trainer(awm_cfg, cfg.out, World(), device, progress=False).iteration()
    total = out["rollout_s"] + out["reward_s"] + out["train_s"]
    print(f"one AWM iteration (objective awm, same images, 1 stochastic step, beta {awm_cfg.beta}): {total:.1f} s")
    for k in ("rollout", "reward", "train"):
        print(f"  {k:<40} {out[k + '_s']:6.2f} s  {100 * out[k + '_s'] / total:5.1f}%")

    images = [im for c in chunks for im in pipe.finish(c.final, c.denoising.lh, c.denoising.lw)]
    agree = rewards.agreement(images, [it for c in chunks for it in c.items])
    print(f"fast OCR reward vs the eval's full OCR, exact or not: agree on {agree['agreement']:.3f} of {agree['n']}")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
