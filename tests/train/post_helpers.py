"""What the GRPO and awm tests share: a checked GrpoConfig on a tiny model (named post_* so that no other test folder's
helper module can shadow it under importlib mode)."""
from qimage.train.config import GrpoConfig, check_post, from_dict


def grpo_config(model_dir, out, **over):
    """A small GRPO run: 2 prompts x 2 rollouts, 4 steps with 3 trained, OCR reward on letters; ``over`` replaces keys
    (a dict value updates a section)."""
    data = {"out": str(out), "model": {"dir": str(model_dir)}, "prompts": {"letters": 1.0}, "reward": "ocr",
            "steps": 2, "prompts_per_step": 2, "group_size": 2, "beta": 0.01,
            "rollout": {"steps": 4, "window": [0, 3], "micro_batch": 2},
            "optim": {"lr": 1e-3, "warmup_steps": 0, "weight_decay": 0.0},
            "log": {"every": 1, "checkpoint_every": 1, "sample_every": 0, "prompts": []}}
    for k, v in over.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    cfg = from_dict(GrpoConfig, data)
    check_post(cfg)
    return cfg
