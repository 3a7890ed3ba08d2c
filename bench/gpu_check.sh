#!/usr/bin/env bash
# The GPU check: run once whenever a session is lent a CUDA machine, and record its figures in docs/benchmarks.md.
# <= 8 minutes on one GPU: the MMDiT against diffusers, a short toy pretraining and a short GRPO run, all in bf16
# autocast; prints samples/s, rollout images/s and peak GPU memory. Needs the project installed (README).
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this check is for a GPU machine')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== MMDiT forward+backward against diffusers (toy and wide configs) =="
timeout 120 python bench/mmdit.py --config toy --batch 64 --iters 20
timeout 120 python bench/mmdit.py --config wide --batch 32 --iters 10

echo "== short toy pretraining (bf16 autocast, 300 steps, batch 64) =="
qimage synth words -n 2000 -o "$WORK/words" --size 128x64 --seed 0 --workers 4 --faces 'Arimo 700' > /dev/null
qimage init "$WORK/init" --preset toy --seed 0 > /dev/null
cat > "$WORK/pretrain.yaml" <<YAML
out: $WORK/pretrain
device: cuda
model: {dir: $WORK/init, init: adaln-zero}
sources: {words: {path: $WORK/words}}
batch_size: 64
optim: {lr: 1.0e-3, warmup_steps: 50}
stages: [{name: words, steps: 300, buckets: ["128x64"]}]
log: {every: 50, checkpoint_every: 300, sample_every: 0}
YAML
timeout 240 python - "$WORK/pretrain.yaml" <<'PY'
import csv, sys, torch
from qimage.train.config import PretrainConfig, load
from qimage.train.pretrain import run
cfg = load(PretrainConfig, sys.argv[1])
run(cfg, progress=False)
rows = list(csv.DictReader(open(f"{cfg.out}/log.csv")))
print(f"pretrain samples/s (last windows): {', '.join(r['samples_per_s'] for r in rows[-3:])}")
print(f"pretrain peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
PY

echo "== GRPO on the shipped toy (bf16 autocast, 128 rollouts) =="
timeout 120 python bench/grpo.py --images 128 --device cuda
