"""Advantage-weighted matching (objective: awm): the loss against its equation, the direction of one update, a tied
group adds nothing, exact resume, and the config key."""
import csv

import torch

from qimage.cli import main
from qimage.train import awm, grpo
from qimage.train.checkpoint import STATE_FILE, load_state
from post_helpers import grpo_config


def _config(model_dir, out, **over):
    return grpo_config(model_dir, out, **{"objective": "awm", **over})


def _world():
    from qimage.train import distributed

    return distributed.init("cpu")


def test_weighted_matching_by_hand():
    pred = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    # sample 0: mean(1, 4) = 2.5, A = 2 -> 5; sample 1: mean(1, 9) = 5, A = -0.5 -> -2.5
    out = awm.weighted_matching(pred, target, torch.tensor([2.0, -0.5]))
    assert torch.equal(out, torch.tensor([5.0, -2.5]))


def _rewind(c, states):
    """The chunk's generators back to ``states``: every call below draws the same (s, eps) per rollout."""
    for g, st in zip(c.denoising.generators, states):
        g.set_state(st)


def test_one_update_lowers_the_favoured_rollouts_error_and_raises_the_other(small_model, tmp_path):
    """Advantages (+1, -1) on one group of two: after an SGD step on the AWM loss (beta 0), the first rollout's
    matching error (same s and eps) falls and the second's rises. A tied group (A = 0) leaves every weight as it was."""
    cfg = _config(small_model, tmp_path / "r", prompts_per_step=1, group_size=2, beta=0.0)
    trainer = awm.Trainer(cfg, tmp_path / "r", *_world())
    trainer.opt = torch.optim.SGD(trainer.policy.trainable(), lr=0.05)
    trainer.sched = torch.optim.lr_scheduler.LambdaLR(trainer.opt, lambda _: 1.0)
    items, seeds, starts = trainer.global_batch(0)
    c = trainer.rollouts(items, seeds, starts)[0]
    states = [g.get_state() for g in c.denoising.generators]
    cond = trainer.encode([c])[0]
    trainer.policy.train_mode()
    before = trainer.chunk_loss(c, torch.ones(2), *cond)[0].detach()
    weights = {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters()}
    _rewind(c, states)
    trainer.update([c], torch.zeros(2))
    assert all(torch.equal(p, weights[n]) for n, p in trainer.policy.model.named_parameters())
    _rewind(c, states)
    trainer.update([c], torch.tensor([1.0, -1.0]))
    _rewind(c, states)
    after = trainer.chunk_loss(c, torch.ones(2), *cond)[0].detach()
    assert after[0] < before[0] and after[1] > before[1], (before, after)


def test_awm_run_logs_and_resumes_exactly(small_model, tmp_path, brightness):
    straight = _config(small_model, tmp_path / "a", steps=3, reward=brightness, minibatches=2)
    grpo.run(straight, progress=False)
    cfg = _config(small_model, tmp_path / "b", steps=3, reward=brightness, minibatches=2)
    assert grpo.run(cfg, stop_at=1, progress=False)["stopped"]
    assert grpo.run(cfg, resume=True, progress=False)["step"] == 3
    a, b = (list(csv.DictReader(open(tmp_path / d / "log.csv"))) for d in "ab")
    keys = ["step", "reward", "loss", "kl"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert float(a[-1]["kl"]) > 0  # the policy moved away from the reference
    sa, sb = load_state(tmp_path / "a" / STATE_FILE), load_state(tmp_path / "b" / STATE_FILE)
    for name, t in sa["policy"].items():
        assert torch.equal(t, sb["policy"][name]), name
    assert (tmp_path / "a" / "model" / "model_index.json").is_file()


def test_unknown_objective_is_a_one_line_error(small_model, tmp_path, write_config, capsys):
    cfg = write_config({"out": str(tmp_path / "r"), "model": {"dir": str(small_model)}, "objective": "ppo",
                        "rollout": {"steps": 4, "window": [0, 3]}})
    assert main(["train", "grpo", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "objective must be one of flow-grpo, awm, got 'ppo'" in err, err
