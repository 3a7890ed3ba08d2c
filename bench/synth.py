"""Throughput of the synthesisers: images per second at 512 px on one worker and on two, and their ratio.

Each figure is the full `qimage synth` path (plan, render, PNG + caption + JSON written to a temporary folder,
manifest) after a short warm-up that loads fonts and word lists. The baseline is the same synthesiser on one
worker, measured in the same run. Goal from issue 3: >= 20 img/s per core for `pure`.

    python bench/synth.py [--n-scale 1.0] [--size 512]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from qimage.synth.runner import KINDS, RunConfig, run

N = {"pure": 300, "compose": 40, "complex": 80, "scenes": 150}


def rate(kind: str, n: int, size: int, workers: int, lang: str) -> float:
    with tempfile.TemporaryDirectory() as d:
        cfg = RunConfig(kind=kind, n=n, out=d, lang=lang, width=size, height=size, seed=1, workers=workers)
        t = time.perf_counter()
        run(cfg, progress=False)
        return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-scale", type=float, default=1.0, help="multiply the per-kind sample counts")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--lang", default="mix")
    args = ap.parse_args()
    print(f"CPUs visible: {os.cpu_count()}  size: {args.size}px  lang: {args.lang}")
    print(f"{'kind':<9}{'n':>5}{'1 worker img/s':>16}{'2 workers img/s':>17}{'ratio':>8}")
    for kind in KINDS:
        n = max(4, int(N[kind] * args.n_scale))
        rate(kind, 4, args.size, 1, args.lang)  # warm-up: fonts, cmaps, word lists, faker
        one = rate(kind, n, args.size, 1, args.lang)
        two = rate(kind, n, args.size, 2, args.lang)
        print(f"{kind:<9}{n:>5}{one:>16.1f}{two:>17.1f}{two / one:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
