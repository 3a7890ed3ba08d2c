"""DDP through torchrun on CPU (gloo): two processes give the loss of one process with the same global batch."""
import csv
import os
import subprocess
import sys

import pytest

from qimage.cli import main


def _losses(out):
    with open(out / "log.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("loss", [{}, {"text_weight": 2.0, "object_weight": 5.0}], ids=["reference", "region-weighted"])
def test_two_gloo_processes_match_one(tmp_path, write_config, pretrain_config, synth_dirs, loss):
    sources = {"text": synth_dirs["pure"], "shapes": synth_dirs["scenes"]}
    common = dict(caption_dropout=0.5, stages=[{"name": "a", "steps": 3, "resolution": 64}], loss=loss)
    one = write_config(pretrain_config(sources, tmp_path / "one", **common), "one.yaml")
    two = write_config(pretrain_config(sources, tmp_path / "two", **common), "two.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert main(["train", "pretrain", "--no-progress", "--config", str(one)]) == 0  # the reference, in this process
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "qimage", "train", "pretrain", "--no-progress", "--config", str(two)],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 3
    assert b == pytest.approx(a, rel=1e-4)
    assert a[0] != a[1]  # not a constant: the comparison means something
