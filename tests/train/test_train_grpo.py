"""Flow-GRPO: the objective's pieces against their equations, on-policy recomputation, exact resume, bad configs."""
import csv
import json

import pytest
import torch

from qimage.cli import main
from qimage.train import grpo
from qimage.train.checkpoint import STATE_FILE, load_state
from post_helpers import grpo_config as _config


def test_advantages_are_group_normalised_and_zero_for_a_constant_group():
    r = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.0, 1.0, 0.0, 1.0], [0.2, 0.4, 0.6, 0.8]])
    a = grpo.advantages(r, "group", clip=5.0)
    assert torch.equal(a[0], torch.zeros(4))
    assert torch.allclose(a.mean(1), torch.zeros(3), atol=1e-6)
    # (r - mean) / (sample std + 1e-4): row 1 has std 0.57735
    assert torch.allclose(a[1], torch.tensor([-0.5, 0.5, -0.5, 0.5]) / (0.5773503 + 1e-4), atol=1e-6)
    g = grpo.advantages(r, "global", clip=5.0)
    assert torch.allclose(g[2], (r[2] - 0.5) / (r.std() + 1e-4), atol=1e-6)
    assert grpo.advantages(torch.tensor([[0.0, 0.0, 0.0, 1.0]]), "group", clip=1.0).max() == 1.0  # clipped


def test_clipped_objective_by_hand():
    logp_old = torch.zeros(4)
    logp = torch.log(torch.tensor([1.5, 1.5, 0.5, 0.5]))
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss, ratio = grpo.clipped_objective(logp, logp_old, adv, clip_range=0.2)
    # max(-A r, -A clip(r)): A>0, r=1.5 -> -1.2 (clipped); A<0, r=1.5 -> 1.5; A>0, r=0.5 -> -0.5; A<0, r=0.5 -> 0.8
    assert torch.allclose(loss, torch.tensor([-1.2, 1.5, -0.5, 0.8]), atol=1e-6)
    assert torch.allclose(ratio, torch.tensor([1.5, 1.5, 0.5, 0.5]), atol=1e-6)


def test_kl_closed_form_matches_monte_carlo():
    from qimage.sampling import sde_logprob

    g = torch.Generator().manual_seed(0)
    mean, mean_ref = torch.randn(1, 64, generator=g), torch.randn(1, 64, generator=g) * 0.3
    std = torch.tensor(0.7)
    x = mean + std * torch.randn(200000, 64, generator=g)
    mc = (sde_logprob(x, mean, std) - sde_logprob(x, mean_ref, std)).mean()
    exact = grpo.gaussian_kl(mean, mean_ref, std)[0]
    assert abs(float(mc) - float(exact)) < 0.01 * float(exact) + 2e-3, (float(mc), float(exact))


def test_recomputed_logprobs_equal_the_rollouts_and_do_not_depend_on_the_batch(small_model):
    """The same chunk recomputed: bit-identical log-probs (ratio exactly 1). The first sample recomputed in a chunk
    with another prompt: equal within float32 batching noise."""
    from qimage.pipeline import Pipeline
    from qimage.sampling import sde_logprob

    pipe = Pipeline.load(small_model, dtype=torch.float32)
    ro = _config(small_model, "unused").rollout
    items = [{"prompt": 'On a white background, displaying black text "ABCD".'}]
    other = items + [{"prompt": 'A photo of two red circles and a much longer caption than the first one.'}]
    alone = grpo.rollout(pipe, items, [7], ro, (32, 32))
    mixed = grpo.rollout(pipe, other, [7, 8], ro, (32, 32))
    for j in range(len(alone.x)):
        with torch.enable_grad():
            mean, std = grpo.step_stats(alone, j, ro)
        assert torch.equal(sde_logprob(alone.x_next[j], mean, std), alone.logp[j])
        assert torch.allclose(mixed.logp[j][:1], alone.logp[j], rtol=0, atol=1e-4)
        assert torch.allclose(mixed.x_next[j][:1], alone.x_next[j], rtol=0, atol=1e-4)


def test_same_noise_shares_a_groups_start_and_keeps_each_rollouts_step_noise(small_model, tmp_path):
    """rollout.same_noise: a group's rollouts start from one latent, so with the SDE window closed (plain ODE) they
    end identical; inside the window each draws its own step noise, so they part. Groups still differ."""
    import dataclasses

    from qimage.pipeline import Pipeline

    cfg = _config(small_model, tmp_path / "r", prompts_per_step=2, group_size=3, rollout={"same_noise": True})
    trainer = grpo.Trainer(cfg, tmp_path / "r", *_world())
    items, seeds, starts = trainer.global_batch(0)
    assert len(set(seeds)) == 6 and starts == [seeds[0]] * 3 + [seeds[3]] * 3
    pipe = Pipeline.load(small_model, dtype=torch.float32)
    prompt = [{"prompt": items[0]["prompt"]}] * 3
    ode = dataclasses.replace(cfg.rollout, noise_level=0.0)
    c = grpo.rollout(pipe, prompt, seeds[:3], ode, (32, 32), starts[:3])
    assert torch.equal(c.final[0], c.final[1]) and torch.equal(c.final[0], c.final[2])
    c = grpo.rollout(pipe, prompt, seeds[:3], cfg.rollout, (32, 32), starts[:3])
    assert torch.equal(c.x[0][0], c.x[0][1])  # one start
    assert (c.final[0] - c.final[1]).abs().max() > 1e-2  # own step noise
    unshared = _config(small_model, tmp_path / "u", prompts_per_step=2, group_size=3)
    _, seeds_u, starts_u = grpo.Trainer(unshared, tmp_path / "u", *_world()).global_batch(0)
    assert starts_u == seeds_u == seeds  # the default: every rollout its own start


def test_first_minibatch_is_on_policy_and_the_run_writes_its_logs(small_model, tmp_path, brightness):
    cfg = _config(small_model, tmp_path / "r", minibatches=2, reward=brightness,
                  log={"sample_every": 1, "prompts": ["a"]})
    result = grpo.run(cfg, progress=False)
    assert result["step"] == 2 and not result["stopped"]
    rows = list(csv.DictReader(open(tmp_path / "r" / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]
    # the second minibatch follows an optimiser step: off-policy, its ratios move away from 1
    assert all(float(r["ratio_dev"]) > 0 for r in rows)
    for name in ("curves.png", "done.json", "samples/step-000002.png", "model/model_index.json", "model/qimage.json"):
        assert (tmp_path / "r" / name).is_file(), name
    single = _config(small_model, tmp_path / "s", steps=1)
    trainer = grpo.Trainer(single, tmp_path / "s", *_world())
    out = trainer.iteration()
    assert out["ratio_dev"] == 0.0 and out["clip_frac"] == 0.0  # one minibatch: every ratio is exactly 1


def _world():
    from qimage.train import distributed

    return distributed.init("cpu")


def test_interrupted_and_resumed_run_matches_uninterrupted(small_model, tmp_path, brightness):
    straight = _config(small_model, tmp_path / "a", steps=3, reward=brightness)
    grpo.run(straight, progress=False)
    cfg = _config(small_model, tmp_path / "b", steps=3, reward=brightness)
    assert grpo.run(cfg, stop_at=1, progress=False)["stopped"]
    assert grpo.run(cfg, resume=True, progress=False)["step"] == 3
    a, b = (list(csv.DictReader(open(tmp_path / d / "log.csv"))) for d in "ab")
    keys = ["step", "reward", "loss", "kl", "ratio_dev"]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    sa, sb = load_state(tmp_path / "a" / STATE_FILE), load_state(tmp_path / "b" / STATE_FILE)
    for name, t in sa["policy"].items():
        assert torch.equal(t, sb["policy"][name]), name
    assert float(a[-1]["kl"]) > 0  # the policy moved away from the reference


@pytest.mark.parametrize("over, message", [
    ({"group_size": 1}, "group_size must be at least 2"),
    ({"reward": "nope"}, "unknown reward 'nope'"),
    ({"reward": "weighted"}, "reward weighted needs `weights`"),
    ({"rollout": {"window": [0, 4]}}, "the last step is never trained"),
    ({"model": {"dir": "/nonexistent/model"}}, "/nonexistent/model"),
    ({"prompts": {"letters": 0.0, "file": "PROMPTS"}}, "has no quoted text for the OCR reward"),
    ({"prompts_per_step": 3, "group_size": 4, "minibatches": 2, "rollout": {"micro_batch": 4}},
     "into 3 micro-batches, which do not split into minibatches = 2"),
])
def test_bad_configs_are_one_line_errors(small_model, tmp_path, write_config, capsys, over, message):
    import yaml

    (tmp_path / "prompts.txt").write_text('Draw "ABCD" please\na cat without quotes\n')
    data = yaml.safe_load(json.dumps({"out": str(tmp_path / "r"), "model": {"dir": str(small_model)},
                                      "rollout": {"steps": 4, "window": [0, 3]}}))
    for k, v in over.items():
        v = json.loads(json.dumps(v).replace("PROMPTS", str(tmp_path / "prompts.txt")))
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    code = main(["train", "grpo", "--config", str(write_config(data))])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_finished_run_is_not_overwritten_without_a_flag(small_model, tmp_path, write_config, capsys):
    cfg = write_config({"out": str(tmp_path / "r"), "model": {"dir": str(small_model)}, "steps": 1,
                        "prompts_per_step": 1, "group_size": 2, "rollout": {"steps": 4, "window": [0, 3]},
                        "log": {"sample_every": 0, "prompts": []}})
    assert main(["train", "grpo", "--config", str(cfg), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "grpo", "--config", str(cfg), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "grpo", "--config", str(cfg), "--no-progress", "--overwrite"]) == 0


def test_lora_policy_starts_as_the_base_trains_only_adapters_and_saves_for_diffusers(small_model, tmp_path,
                                                                                     brightness):
    """LoRA through peft: the adapter starts as a no-op (B = 0), only adapter weights train, the reference is the base
    with adapters disabled, the saved directory is the merged model and the LoRA file loads in QwenImagePipeline."""
    from diffusers import QwenImagePipeline

    from qimage.pipeline import Pipeline

    lora = {"rank": 4, "alpha": 8.0, "targets": ["to_q", "to_k", "to_v", "to_out.0"]}
    cfg = _config(small_model, tmp_path / "l", steps=2, reward=brightness, optim={"lr": 1e-2},
                  **{"model": {"lora": lora}})
    trainer = grpo.Trainer(cfg, tmp_path / "l", *_world())
    names = [n for n, p in trainer.pipe.transformer.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    base = Pipeline.load(small_model, dtype=torch.float32)
    kw = dict(steps=2, seeds=3, output="latent")
    prompt = 'On a white background, displaying black text "ABCD".'
    assert torch.equal(trainer.pipe(prompt, **kw), base(prompt, **kw))  # B = 0: the policy is the base
    for _ in range(2):
        trainer.iteration()
    moved = trainer.pipe(prompt, **kw)
    assert not torch.allclose(moved, base(prompt, **kw), atol=1e-4)
    with trainer.policy.reference():
        assert torch.equal(trainer.pipe(prompt, **kw), base(prompt, **kw))
    trainer.save()
    merged = Pipeline.load(tmp_path / "l" / "model", dtype=torch.float32)
    assert torch.allclose(merged(prompt, **kw), moved, atol=1e-5)
    pipe = QwenImagePipeline.from_pretrained(small_model)
    pipe.load_lora_weights(str(tmp_path / "l" / "model" / "lora"))
    assert any("lora" in n for n, _ in pipe.transformer.named_parameters())


@pytest.mark.parametrize("objective", ["flow-grpo", "awm"])
def test_two_gloo_processes_match_one(small_model, tmp_path, brightness, write_config, objective):
    """torchrun with 2 processes: each rolls out half of the batch, rewards are gathered for the advantages, gradients
    averaged; the log and the weights equal one process's (micro-batches differ, so within float32 batching noise)."""
    import os
    import subprocess
    import sys

    def cfg(name):
        return write_config({"out": str(tmp_path / name), "model": {"dir": str(small_model)}, "reward": brightness,
                             "steps": 2, "prompts_per_step": 2, "group_size": 4, "beta": 0.01,
                             "objective": objective, "rollout": {"steps": 4, "window": [0, 3], "micro_batch": 4},
                             "optim": {"lr": 1e-3, "warmup_steps": 0, "weight_decay": 0.0},
                             "log": {"every": 1, "checkpoint_every": 1, "sample_every": 0, "prompts": []}}, f"{name}.yaml")

    assert main(["train", "grpo", "--no-progress", "--config", str(cfg("one"))]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "qimage", "train", "grpo", "--no-progress", "--config", str(cfg("two"))],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = (list(csv.DictReader(open(tmp_path / d / "log.csv"))) for d in ("one", "two"))
    for key in ("reward", "loss", "kl"):
        assert [float(r[key]) for r in b] == pytest.approx([float(r[key]) for r in a], rel=1e-3, abs=1e-9), key
    assert float(a[1]["kl"]) > 0
    sa, sb = load_state(tmp_path / "one" / STATE_FILE), load_state(tmp_path / "two" / STATE_FILE)
    for name, t in sa["policy"].items():
        assert torch.allclose(t, sb["policy"][name], atol=1e-5), name
