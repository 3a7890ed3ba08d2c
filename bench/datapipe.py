"""Throughput of the classical filters (stages 1, 2 and 5) at 512 px: the Ray pipeline against a single-process
loop over the very same per-row function, in one run.

    python bench/datapipe.py [--n 600] [--side 512]
    python bench/datapipe.py --scale 2000,20000 [--side 256]   # driver memory and output size against input size

The loop only scores (qimage.datapipe.process.process_file per file, no output written, in one Ray worker process so
that both sides run at Ray's worker niceness); the pipeline does the
whole `qimage data run`: Ray tasks per shard, shard files, the global dedup, kept/rejected Parquet, report.json and
report.html. Ray start-up is timed apart, and the pipeline is timed warm (after one small run has started its worker
processes) and cold. Model filters are unconfigured (skipped); OpenCV runs one thread per process in both.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(root: Path, n: int, side: int, seed: int = 0) -> list[str]:
    """n distinct side x side JPEGs: random crops, flips and exposure of scikit-image's colour photos."""
    import cv2
    import skimage.data as d

    photos = [d.astronaut(), d.coffee(), d.chelsea(), d.rocket(), d.hubble_deep_field(), d.immunohistochemistry()]
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        p = photos[i % len(photos)]
        h, w = p.shape[:2]
        c = int(min(h, w) * rng.uniform(0.55, 1.0))
        y, x = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        img = cv2.resize(p[y:y + c, x:x + c], (side, side), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = np.clip(img.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
        name = f"img_{i:05d}.jpg"
        cv2.imwrite(str(root / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        names.append(name)
    return names


def scale(sizes: list[int], side: int, shard_size: int, stages: str) -> None:
    """End-to-end runs at several input sizes, each in a fresh driver process: img/s, the driver's peak memory and
    the output's bytes per image. A driver whose memory grows with the input shows here, not in the small runs."""
    import json
    import subprocess
    import sys

    rows = []
    for n in sizes:
        r = subprocess.run([sys.executable, __file__, "--_scale-child", str(n), "--side", str(side),
                            "--shard-size", str(shard_size), "--stages", stages], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr[-2000:])
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(f"scale: {side}px JPEGs, stages {stages}, shard size {shard_size}, nsfw off (its model costs ~60 ms/img), "
          f"{os.cpu_count()} cores; each size in a fresh driver")
    for x in rows:
        print(f"  {x['n']:>6} images: {x['seconds']:7.1f} s end to end, {x['n'] / x['seconds']:6.1f} img/s; "
              f"driver peak RSS {x['peak_mb']:7.1f} MB ({x['peak_mb'] - x['baseline_mb']:6.1f} MB over the driver "
              f"before the run); output {x['bytes_per_image']:,.0f} bytes/image")
    a, b = rows[0], rows[-1]
    grow = (b["peak_mb"] - b["baseline_mb"]) / max(1e-9, a["peak_mb"] - a["baseline_mb"])
    print(f"driver memory over its baseline, {b['n']} vs {a['n']} images: {grow:.2f}x for {b['n'] / a['n']:.0f}x the "
          f"images ({1024 * (b['peak_mb'] - a['peak_mb']) / (b['n'] - a['n']):.2f} KB per extra image)")


def _scale_child(n: int, side: int, shard_size: int, stages: str) -> None:
    import json
    import resource

    from qimage.datapipe.cluster import init_ray
    from qimage.datapipe.pipeline import run

    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        make_images(tmp / "in", n, side)
        rpath = tmp / "recipe.yaml"
        rpath.write_text(f"run: {{shard_size: {shard_size}}}\nfilters: {{nsfw: {{enabled: false}}}}\n")
        init_ray(None, 256)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        run(tmp / "in", tmp / "out", recipe_path=rpath, stages=stages, progress=False, log=lambda m: None)
        seconds = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = sum(p.stat().st_size for sub in ("kept", "rejected") for p in (tmp / "out" / sub).glob("*.parquet"))
        print(json.dumps({"n": n, "seconds": seconds, "peak_mb": peak, "baseline_mb": baseline,
                          "bytes_per_image": size / n}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default=None, metavar="N,N,...",
                    help="instead: end-to-end runs at these input sizes (e.g. 2000,20000), driver memory and output size")
    ap.add_argument("--_scale-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--shard-size", type=int, default=50)
    ap.add_argument("--stages", default="1-2,5")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--worker-niceness", type=int, default=None,
                    help="RAY_worker_niceness for the local Ray (Ray's default is 15: its workers yield to any other "
                         "work; 0 lets both sides compete with other load on equal terms)")
    args = ap.parse_args()
    if args._scale_child:
        return _scale_child(args._scale_child, args.side, args.shard_size, args.stages)
    if args.scale:
        return scale([int(x) for x in args.scale.split(",")], args.side, args.shard_size, args.stages)

    from qimage.datapipe import recipe as R
    from qimage.datapipe.cluster import init_ray
    from qimage.datapipe.pipeline import parse_stages, run
    from qimage.datapipe.process import Plan, process_file

    cores = os.cpu_count() or 1
    if args.worker_niceness is not None:
        os.environ["RAY_worker_niceness"] = str(args.worker_niceness)
    tmp = Path(tempfile.mkdtemp(prefix="bench_datapipe_"))
    try:
        files = make_images(tmp / "in", args.n, args.side)
        make_images(tmp / "warm", 20, args.side, seed=1)
        rpath = tmp / "recipe.yaml"
        rpath.write_text(f"run: {{shard_size: {args.shard_size}}}\n")
        recipe = R.load(rpath)
        stages = parse_stages(args.stages)
        load0 = os.getloadavg()

        # single-process loop over the same per-row function. It runs inside one Ray worker process: Ray renices
        # its workers to 15, and on a machine shared with other work a loop at nice 0 would be measured against
        # pipeline workers that yield to everyone else. Same process type, same niceness, one process.
        def loop_in_worker(root: str, names: list[str]) -> tuple[float, float]:
            plan = Plan(recipe, stages)
            for rel in names[:5]:  # warm-up: detector construction, first-call allocations
                process_file(plan, Path(root), rel, {})
            t, c = time.perf_counter(), time.process_time()
            for rel in names:
                process_file(plan, Path(root), rel, {})
            # CPU seconds too: on a machine shared with other work, wall time measures the others as well
            return time.perf_counter() - t, time.process_time() - c

        t = time.perf_counter()
        init_ray(None, recipe["run"]["object_store_mb"])
        ray_start = time.perf_counter() - t
        quiet = dict(stages=args.stages, progress=False, log=lambda m: None)
        warm_recipe = tmp / "warm.yaml"
        warm_recipe.write_text("run: {shard_size: 5}\n")  # several tasks, so every worker process starts
        t = time.perf_counter()
        run(tmp / "warm", tmp / "out_warm", recipe_path=warm_recipe, **quiet)
        cold_small = time.perf_counter() - t

        import ray

        remote_loop = ray.remote(num_cpus=1)(loop_in_worker)

        def loop() -> tuple[float, float]:
            return ray.get(remote_loop.remote(str(tmp / "in"), files))

        def pipeline() -> tuple[float, float]:
            shutil.rmtree(tmp / "out", ignore_errors=True)
            t = time.perf_counter()
            rep = run(tmp / "in", tmp / "out", recipe_path=rpath, **quiet)
            return time.perf_counter() - t, rep["timing"]["scoring_s"], rep["timing"]["worker_cpu_s"]

        def pair() -> float:
            """The machine's own ceiling: as many copies of the loop as cores, side by side, each on all images."""
            t = time.perf_counter()
            ray.get([remote_loop.remote(str(tmp / "in"), files) for _ in range(cores)])
            return time.perf_counter() - t

        # alternate them so that load from other work on the machine hits all alike; keep each one's best
        loops, pipes, pairs = [], [], []
        for _ in range(args.repeat):
            loops.append(loop())
            pipes.append(pipeline())
            pairs.append(pair())
        loop_s, loop_cpu = min(loops)
        pipe_s, score_s, pipe_cpu = min(pipes)
        load1 = os.getloadavg()

        loop_rate, pipe_rate, score_rate = args.n / loop_s, args.n / pipe_s, args.n / score_s
        nice = os.environ.get("RAY_worker_niceness", "15 (Ray's default)")
        print(f"images: {args.n} x {args.side}px JPEG, stages {args.stages}, {cores} cores, shard size {args.shard_size}, "
              f"best of {args.repeat}, worker niceness {nice}")
        print(f"filters: {', '.join(f.name for f in Plan(recipe, stages).filters)}")
        print(f"loop (1 Ray worker process, scoring only): {loop_s:6.2f} s {loop_rate:6.1f} img/s; "
              f"{loop_cpu:.2f} CPU-s = {args.n / loop_cpu:.1f} img per CPU-second")
        print(f"pipeline scoring phase (Ray tasks): {score_s:6.2f} s {score_rate:6.1f} img/s {score_rate / cores:6.1f} img/s/core")
        print(f"pipeline end to end (+dedup, Parquet, reports): {pipe_s:6.2f} s {pipe_rate:6.1f} img/s "
              f"{pipe_rate / cores:6.1f} img/s/core")
        print(f"pipeline tasks' CPU: {pipe_cpu:.2f} CPU-s = {args.n / pipe_cpu:.1f} img per CPU-second "
              f"(with the loop's figure: the cost of the pipeline's per-shard work, whatever the machine's load)")
        print(f"ray.init {ray_start:.1f} s; first (cold) run on 20 images {cold_small:.1f} s")
        ceiling = cores * args.n / min(pairs) / loop_rate
        print(f"ratio pipeline / loop: scoring {score_rate / loop_rate:.2f}x, end to end {pipe_rate / loop_rate:.2f}x")
        print(f"ceiling on this machine now: {cores} loops side by side give {ceiling:.2f}x one loop "
              f"(the most any parallel run could gain while other work shares the cores)")
        print(f"load average (1 min) before/after: {load0[0]:.2f} / {load1[0]:.2f} on {cores} cores "
              f"(above {cores} means other work was competing)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
