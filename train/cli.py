"""`qimage train pretrain|vae` and `qimage eval`. Heavy imports stay inside the handlers (`qimage --help` is instant)."""
from __future__ import annotations

import argparse
import os

from qimage.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train the VAE or pretrain the MMDiT from a YAML config")
    tsub = t.add_subparsers(dest="train_command", metavar="WHAT")

    for name, what, config, func in (
            ("pretrain", "flow-matching pretraining of the transformer (torchrun for several processes)",
             "docs/train.md and train/recipes/", cmd_pretrain),
            ("edit", "edit training: flow matching on targets with the source as condition (docs/edit.md)",
             "docs/edit.md and train/recipes/toy-edit-train.yaml", cmd_edit)):
        p = tsub.add_parser(name, help=what)
        p.add_argument("--config", required=True, help=f"YAML config (see {config})")
        p.add_argument("--out", help="run directory (default: the config's `out`)")
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        p.add_argument("--stop-at", type=int, help="checkpoint and stop after this global step (resume later)")
        p.add_argument("--max-minutes", type=float, help="checkpoint and stop after this much training time")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=func)

    grpo_help = "GRPO on SDE rollouts with a reward: Flow-GRPO or advantage-weighted matching (docs/posttrain.md)"
    for name, what, func in (("grpo", grpo_help, cmd_grpo),
                             ("dpo", "flow-DPO on offline or online preference pairs (docs/posttrain.md)", cmd_dpo)):
        g = tsub.add_parser(name, help=what)
        g.add_argument("--config", required=True, help="YAML config (see docs/posttrain.md and train/recipes/)")
        g.add_argument("--out", help="run directory (default: the config's `out`)")
        g.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
        g.add_argument("--overwrite", action="store_true", help="start over in a --out that holds a run")
        g.add_argument("--stop-at", type=int, help="checkpoint and stop after this iteration (resume later)")
        g.add_argument("--max-minutes", type=float, help="checkpoint and stop after this much training time")
        g.add_argument("--no-progress", action="store_true", help="no progress bar")
        g.set_defaults(func=func)

    v = tsub.add_parser("vae", help="train the VAE from scratch, or fine-tune its decoder (--decoder-only)")
    v.add_argument("--config", required=True, help="YAML config (see docs/train.md and train/recipes/)")
    v.add_argument("--out", help="run directory (default: the config's `out`)")
    v.add_argument("--decoder-only", action="store_true", help="freeze the encoder (and latent statistics)")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=cmd_vae)
    r = tsub.add_parser("recipe", help="run a whole training recipe (data, VAE, denoiser, eval) with one command")
    r.add_argument("recipe", help="a built-in recipe name (toy) or a recipe YAML file")
    r.add_argument("--dry-run", action="store_true", help="print the steps that would run, run nothing")
    r.set_defaults(func=cmd_recipe)
    t.set_defaults(func=lambda args: (t.print_help(), 2)[1])

    d = sub.add_parser("demo", help="synthesise, clean, fine-tune the shipped toy, generate, evaluate: one HTML report")
    d.add_argument("-o", "--out", default="out/demo", help="output directory (default out/demo)")
    d.add_argument("--model", help="model directory to fine-tune (default: the shipped toy)")
    d.add_argument("--seed", type=int, default=0, help="seed of the data, training and samples")
    d.add_argument("--steps", type=int, default=60, help="fine-tuning steps (default 60)")
    d.add_argument("--edit-model", help="edit model directory for the edit step (default: the shipped edit toy)")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("eval", help="OCR read-back of held-out words and a GenEval-style scenes score")
    e.add_argument("--model", help="model directory (default: the shipped toy)")
    e.add_argument("-o", "--output", default="eval.json", help="JSON report (default eval.json)")
    e.add_argument("--words", type=int, default=48, help="held-out words to render (default 48; 0: scenes only)")
    e.add_argument("--nonwords", type=int, default=48,
                   help="random 4-letter strings that are no word (default 48; 0: none)")
    e.add_argument("--scenes", type=int, default=48,
                   help="held-out scenes combinations (default 48, all of synth/heldout_scenes.txt; 0: none)")
    e.add_argument("--size", help="WxH (default: the model's)")
    e.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    e.add_argument("--cfg", type=float, help="CFG scale (default: the model's)")
    e.add_argument("--seed", type=int, default=0, help="seed of the first image")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--against", help="another model's eval JSON (same options): per-prompt OCR-reward win rate")
    e.add_argument("--edit", action="store_true",
                   help="evaluate an edit model on held-out edit pairs instead (default model: the shipped edit toy)")
    e.add_argument("--pairs", type=int, default=48, help="--edit: held-out pairs (default 48)")
    e.add_argument("--kinds", default="words", help="--edit: synthesisers of the pairs, comma-separated (words, scenes)")
    e.set_defaults(func=cmd_eval)


def _positive(value, flag):
    if value is not None and value < 1:
        raise UserError(f"{flag} must be at least 1, got {value}")


def cmd_pretrain(args) -> int:
    from .config import PretrainConfig

    from .pretrain import run

    return _train(args, PretrainConfig, run)


def cmd_edit(args) -> int:
    from .edit import EditConfig, run

    return _train(args, EditConfig, run)


def _train(args, config_class, run) -> int:
    from .config import load

    cfg = load(config_class, args.config)
    _positive(args.stop_at, "--stop-at")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be positive, got {args.max_minutes}")
    result = run(cfg, out=args.out, resume=args.resume, stop_at=args.stop_at, progress=not args.no_progress,
                 max_minutes=args.max_minutes)
    if result["losses"]:
        print(f"step {result['step']}: last loss {result['losses'][-1]:.4f}; run in {args.out or cfg.out}")
    return 0


def cmd_grpo(args) -> int:
    return _post(args, "grpo")


def cmd_dpo(args) -> int:
    return _post(args, "dpo")


def _post(args, which: str) -> int:
    import importlib

    from qimage.config import read_yaml

    from .config import DpoConfig, GrpoConfig, check_post

    cfg = read_yaml({"grpo": GrpoConfig, "dpo": DpoConfig}[which], args.config)
    check_post(cfg)
    _positive(args.stop_at, "--stop-at")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be positive, got {args.max_minutes}")
    if args.resume and args.overwrite:
        raise UserError("--resume continues a run and --overwrite starts it over: choose one")
    run = importlib.import_module(f"qimage.train.{which}").run
    result = run(cfg, out=args.out, resume=args.resume, overwrite=args.overwrite, stop_at=args.stop_at,
                 progress=not args.no_progress, max_minutes=args.max_minutes)
    if result["rewards"] and os.environ.get("RANK", "0") == "0":
        print(f"iteration {result['step']}: mean reward {result['rewards'][-1]:.3f}; run in {args.out or cfg.out}")
    return 0


def cmd_vae(args) -> int:
    from .config import VaeConfig, load

    cfg = load(VaeConfig, args.config)
    from .vae import run

    report = run(cfg, out=args.out, decoder_only=args.decoder_only, progress=not args.no_progress)
    print(f"PSNR {report['before']['psnr']:.2f} -> {report['after']['psnr']:.2f} dB; model in {report['model']}")
    return 0


def cmd_recipe(args) -> int:
    from .recipe import run

    run(args.recipe, dry_run=args.dry_run)
    return 0


def cmd_demo(args) -> int:
    _positive(args.steps, "--steps")
    from .demo import run

    run(args.out, model=args.model, seed=args.seed, steps=args.steps, edit_model=args.edit_model)
    return 0


def cmd_eval(args) -> int:
    if args.edit:
        _positive(args.pairs, "--pairs")
        _positive(args.steps, "--steps")
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        bad = [k for k in kinds if k not in ("words", "scenes")]
        if bad or not kinds:
            raise UserError(f"--kinds {args.kinds!r}: choose from words, scenes")
        from .edit_eval import run as run_edit_eval

        run_edit_eval(model=args.model, output=args.output, pairs=args.pairs, kinds=kinds, steps=args.steps,
                      cfg=args.cfg, seed=args.seed, device=args.device)
        return 0
    for flag, value in (("--words", args.words), ("--nonwords", args.nonwords), ("--scenes", args.scenes)):
        if value < 0:
            raise UserError(f"{flag} must be >= 0, got {value}")
    if args.words == 0 and args.scenes == 0 and args.nonwords == 0:
        raise UserError("--words 0 --nonwords 0 --scenes 0 leaves nothing to evaluate")
    _positive(args.steps, "--steps")
    from .eval import run

    run(model=args.model, output=args.output, words=args.words, nonwords=args.nonwords, scenes=args.scenes,
        size=args.size, steps=args.steps, cfg=args.cfg, seed=args.seed, device=args.device, against=args.against)
    return 0
