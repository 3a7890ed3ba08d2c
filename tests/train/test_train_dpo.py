"""flow-DPO: the loss by hand, pairs from JSONL and Parquet, online runs that log and resume exactly."""
import csv
import io
import json
import math

import pytest
import torch
from PIL import Image

from qimage.cli import main
from qimage.errors import UserError
from qimage.train import dpo
from qimage.train.checkpoint import STATE_FILE, load_state
from qimage.train.config import DpoConfig, check_post, from_dict


def test_dpo_loss_by_hand():
    e_w, e_l = torch.tensor([0.10, 0.30]), torch.tensor([0.20, 0.10])
    e_ref_w, e_ref_l = torch.tensor([0.15, 0.15]), torch.tensor([0.15, 0.15])
    loss, won = dpo.dpo_loss(e_w, e_l, e_ref_w, e_ref_l, beta=10.0)
    # inside = (e_w - e_l) - 0 = -0.1 and 0.2; loss = -log sigmoid(-10 * inside) = log(1 + exp(10 * inside))
    assert torch.allclose(loss, torch.tensor([math.log1p(math.exp(-1.0)), math.log1p(math.exp(2.0))]), atol=1e-6)
    assert won.tolist() == [True, False]
    same, _ = dpo.dpo_loss(e_w, e_l, e_w, e_l, beta=1000.0)
    assert torch.allclose(same, torch.full((2,), math.log(2)), atol=1e-6)  # the reference itself: log 2


def _image(color):
    return Image.new("RGB", (32, 32), color)


def test_pairs_from_jsonl_and_pick_a_pic_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _image("white").save(tmp_path / "w.png")
    _image("black").save(tmp_path / "b.png")
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "w.png", "rejected": "b.png"}) + "\n")
    (row,) = dpo.read_pairs(tmp_path / "pairs.jsonl")
    assert row["prompt"] == "p" and row["chosen"].getpixel((0, 0)) == (255, 255, 255)

    def jpg(color):
        buf = io.BytesIO()
        _image(color).save(buf, format="JPEG")
        return buf.getvalue()

    folder = tmp_path / "pick"
    folder.mkdir()
    pq.write_table(pa.table({"caption": ["a", "b", "tie"], "jpg_0": [jpg("white"), jpg("white"), jpg("white")],
                             "jpg_1": [jpg("black"), jpg("black"), jpg("black")], "label_0": [1.0, 0.0, 0.5]}),
                   folder / "part-0.parquet")
    rows = dpo.read_pairs(folder)
    assert [r["prompt"] for r in rows] == ["a", "b"]  # the tie is dropped
    assert rows[0]["chosen"].getpixel((0, 0))[0] > 200 and rows[1]["chosen"].getpixel((0, 0))[0] < 50
    (tmp_path / "bad.jsonl").write_text('{"prompt": "p"}\n')
    with pytest.raises(UserError, match="bad.jsonl:1: needs prompt, chosen and rejected"):
        dpo.read_pairs(tmp_path / "bad.jsonl")


def _config(model, out, reward, **over):
    data = {"out": str(out), "model": {"dir": str(model)}, "prompts": {"letters": 1.0}, "reward": reward,
            "steps": 3, "prompts_per_step": 3, "group_size": 3, "beta": 500.0,
            "rollout": {"steps": 3, "window": [0, 2]}, "optim": {"lr": 1e-3, "warmup_steps": 0},
            "log": {"every": 1, "checkpoint_every": 1, "sample_every": 0, "prompts": []}}
    data.update(over)
    cfg = from_dict(DpoConfig, data)
    check_post(cfg)
    return cfg


def test_online_dpo_logs_pairs_and_resumes_exactly(small_model, tmp_path, brightness):
    straight = _config(small_model, tmp_path / "a", brightness)
    dpo.run(straight, progress=False)
    cfg = _config(small_model, tmp_path / "b", brightness)
    assert dpo.run(cfg, stop_at=1, progress=False)["stopped"]
    assert dpo.run(cfg, resume=True, progress=False)["step"] == 3
    a, b = (list(csv.DictReader(open(tmp_path / d / "log.csv"))) for d in "ab")
    keys = ["step", "reward", "pairs", "loss", "implicit_acc", "margin", "ref_margin"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert all(int(r["pairs"]) == 3 for r in a)  # brightness never ties within a group of 3
    # the first step is taken from the reference itself: its loss is log 2 and no pair is won yet
    assert float(a[0]["loss"]) == pytest.approx(math.log(2), abs=1e-6) and float(a[0]["implicit_acc"]) == 0.0
    sa, sb = load_state(tmp_path / "a" / STATE_FILE), load_state(tmp_path / "b" / STATE_FILE)
    for name, t in sa["policy"].items():
        assert torch.equal(t, sb["policy"][name]), name
    assert (tmp_path / "a" / "model" / "model_index.json").is_file() and (tmp_path / "a" / "curves.png").is_file()


def test_offline_dpo_trains_on_a_jsonl_file(small_model, tmp_path, write_config, capsys):
    for color in ("white", "black"):
        _image(color).save(tmp_path / f"{color}.png")
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"prompt": "a white square", "chosen": "white.png",
                                                      "rejected": "black.png"}) + "\n")
    cfg = write_config({"out": str(tmp_path / "r"), "model": {"dir": str(small_model)}, "pairs": str(tmp_path / "pairs.jsonl"),
                        "steps": 2, "prompts_per_step": 2, "rollout": {"steps": 3, "window": [0, 2]},
                        "log": {"sample_every": 0, "prompts": []}})
    assert main(["train", "dpo", "--config", str(cfg), "--no-progress"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    assert [int(r["pairs"]) for r in rows] == [2, 2]
    missing = write_config({"model": {"dir": str(small_model)}, "pairs": str(tmp_path / "nope.jsonl")}, "m.yaml")
    capsys.readouterr()
    assert main(["train", "dpo", "--config", str(missing)]) == 2
    assert "nope.jsonl does not exist" in capsys.readouterr().err
