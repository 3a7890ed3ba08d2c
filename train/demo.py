"""`qimage demo -o DIR`: the whole toolkit in one command, on embedded defaults, in a few minutes on a CPU.

    1. synthesise    a small set of word renders and scenes at the toy's size, plus planted bad inputs
    2. clean         the data pipeline's seven stages over that folder (Ray Data), Parquet shards out
    3. fine-tune     the shipped toy briefly on the cleaned shards (flow matching, the same trainer as pretraining)
    4. generate      the same prompts and seeds from the shipped toy and from the fine-tuned model
    5. evaluate      OCR read-back of held-out words and the scenes score, before and after
    6. edit          the shipped edit toy edits one of the synthesised words by three instructions (`qimage edit`),
                     then held-out edit pairs are scored (`qimage eval --edit`)
    7. report        DIR/report.html: what each step did and how long it took, the data report's counts, the loss
                     curve, the sample grids and the eval table

The steps are `qimage` commands run as a recipe (`qimage.train.recipe`): the packages meet only through their
contracts (a folder of samples, Parquet shards, model directories), exactly as a user would chain them. Running the
demo again into the same DIR skips the finished steps.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from qimage.errors import UserError

from .eval import HELDOUT_WORDS, PROMPT
from .recipe import Recipe, Step, run_steps

SIZE = "128x64"
PROMPTS = [
    PROMPT.format(bg="white", fg="black", word=HELDOUT_WORDS[0]),
    PROMPT.format(bg="black", fg="white", word=HELDOUT_WORDS[1]),
    PROMPT.format(bg="navy blue", fg="yellow", word=HELDOUT_WORDS[2]),
    PROMPT.format(bg="cream", fg="dark red", word=HELDOUT_WORDS[3]),
    PROMPT.format(bg="light blue", fg="black", word=HELDOUT_WORDS[4]),
    PROMPT.format(bg="dark green", fg="white", word=HELDOUT_WORDS[5]),
    "A photo of two red circles.",
    "A blue square left of a yellow star.",
]
# The data pipeline's default recipe is tuned for photographs of 256 px and more; the demo's planted photographs are
# 200-256 px and a rendered word fills most of its image, so these keys are relaxed (everything else stays the
# default). Synthesised samples join at stage 4, as in Qwen-Image: stage 1-3 photo filters never judge them.
DATA_RECIPE = """\
filters:
  resolution: {enabled: true, min: 64}
  intensive_text: {enabled: true, max: 0.9}
"""
def _plant(raw: Path) -> None:
    """Bad inputs the cleaning must catch: an empty file, a truncated PNG, a refusal caption, an exact duplicate.
    The captioned ones are photographs (scikit-image's samples), so only the planted fault can reject them."""
    from PIL import Image
    from skimage import data as photos

    d = raw / "planted"
    d.mkdir(parents=True, exist_ok=True)
    astronaut = Image.fromarray(photos.astronaut()).resize((256, 256))
    coffee = Image.fromarray(photos.coffee()).resize((300, 200))
    astronaut.save(d / "refusal.png")
    (d / "refusal.txt").write_text("I'm sorry, but I can't help with describing this image.\n")
    for name in ("coffee.png", "coffee-copy.png"):
        coffee.save(d / name)
        (d / name).with_suffix(".txt").write_text("A cup of coffee on a saucer, seen from above.\n")
    (d / "empty.png").write_bytes(b"")
    (d / "empty.txt").write_text("An empty file.\n")
    data = (d / "refusal.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    (d / "truncated.txt").write_text("A truncated file.\n")


# The demo's edits of its first synthesised word: each instruction form the edit toy learnt, new words held out.
EDITS = [f'Change the text to "{HELDOUT_WORDS[6]}".', "Make the text red.", "Make the background black."]


def _finetune_config(out: Path, model: Path, steps: int, seed: int) -> str:
    import yaml

    cfg = {
        "out": str(out / "finetune"), "seed": seed,
        "model": {"dir": str(model), "init": "pretrained"},
        "sources": {"clean": {"path": str(out / "data" / "clean")}},
        "batch_size": 16,
        "optim": {"lr": 5.0e-5, "warmup_steps": 10, "schedule": "constant", "grad_clip": 1.0},
        "caption_dropout": 0.1,
        "ema_decay": 0.9,  # a short run: the saved EMA weights should reflect it
        "stages": [{"name": "demo", "steps": steps, "buckets": [SIZE]}],
        "log": {"every": 5, "checkpoint_every": steps, "sample_every": 0, "eval_every": 0,
                "sample_steps": 20, "sample_cfg": 4.0},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


FACE = "Arimo 700"  # the face of the shipped toy's words (train/recipes/toy.yaml)


def recipe(out: Path, model: Path, n_words: int, n_scenes: int, eval_words: int, eval_scenes: int,
           edit_pairs: int = 9) -> Recipe:
    ev = f"--words {eval_words} --nonwords {eval_words} --scenes {eval_scenes} --size {SIZE}"
    gen = f"--prompts-file {{out}}/config/prompts.txt --size {SIZE}"
    steps = [
        # the shipped toy learnt words in one bold face: fine-tuning it on seven faces at once costs it letters
        Step("synthesise words", f"synth words -n {n_words} -o {{out}}/data/raw/words --size {SIZE} --seed {{seed}} "
                                 f"--faces '{FACE}'",
             "{out}/data/raw/words/manifest.json",
             what=f"Rendered 4-letter words (never the held-out eval words) in the eval's caption format, in {FACE}."),
        Step("synthesise scenes", f"synth scenes -n {n_scenes} -o {{out}}/data/raw/scenes --size {SIZE} --seed {{seed}}",
             "{out}/data/raw/scenes/manifest.json",
             what="Rendered coloured shapes with compositional captions (counts, colours, positions)."),
        Step("clean", "data run {out}/data/raw -o {out}/data/clean --recipe {out}/config/data-recipe.yaml",
             "{out}/data/clean/report.json",
             what="Ran the seven cleaning stages as Ray Data tasks; every input is kept or rejected with a reason."),
        Step("fine-tune", "train pretrain --config {out}/config/finetune.yaml", "{out}/finetune/done.json",
             resume="train pretrain --config {out}/config/finetune.yaml --resume",
             resume_if="{out}/finetune/trainer_state.safetensors",
             what="Fine-tuned the shipped toy on the kept Parquet shards with flow matching (EMA weights saved)."),
        Step("generate before", f"generate {gen} --model {{model}} -o {{out}}/samples/before",
             "{out}/samples/before/grid.png", what="Sampled the prompts below from the shipped toy."),
        Step("generate after", f"generate {gen} --model {{out}}/finetune/model -o {{out}}/samples/after",
             "{out}/samples/after/grid.png", what="Sampled the same prompts and seeds from the fine-tuned model."),
        Step("eval before", f"eval --model {{model}} {ev} -o {{out}}/eval/before.json", "{out}/eval/before.json",
             what="OCR read-back and scenes score of the shipped toy."),
        Step("eval after", f"eval --model {{out}}/finetune/model {ev} -o {{out}}/eval/after.json",
             "{out}/eval/after.json", what="OCR read-back and scenes score of the fine-tuned model."),
        Step("edit", "edit {out}/data/raw/words/words_000000.png --instructions-file {out}/config/edits.txt "
                     "--model {edit_model} -o {out}/edit/cli", "{out}/edit/cli/grid.png",
             what="Edited the first synthesised word with the shipped edit toy, one edit per instruction below."),
        Step("eval edits", f"eval --edit --pairs {edit_pairs} --model {{edit_model}} -o {{out}}/edit/eval.json",
             "{out}/edit/eval.json",
             what="Scored the edit toy on held-out pairs (new words and colour combinations no training pair used)."),
    ]
    return Recipe(out=str(out), description="qimage demo", steps=steps)


def run(out, model=None, seed: int = 0, steps: int = 60, n_words: int = 192, n_scenes: int = 64,
        eval_words: int = 16, eval_scenes: int = 8, edit_model=None) -> Path:
    from qimage.edit import check_edit_model
    from qimage.model_dir import SHIPPED_EDIT_TOY, resolve_model

    model = resolve_model(model).resolve()
    edit_model = check_edit_model(edit_model or SHIPPED_EDIT_TOY).resolve()
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file, not a directory")
    t0 = time.perf_counter()
    config = out / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "data-recipe.yaml").write_text(DATA_RECIPE)
    (config / "finetune.yaml").write_text(_finetune_config(out, model, steps, seed))
    (config / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    (config / "edits.txt").write_text("\n".join(EDITS) + "\n")
    _plant(out / "data" / "raw")
    rec = recipe(out, model, n_words, n_scenes, eval_words, eval_scenes)
    times = run_steps(rec, {"out": out, "model": model, "seed": seed, "edit_model": edit_model}, label="demo")
    report = write_report(out, model, rec, times, time.perf_counter() - t0)
    print(f"demo finished in {(time.perf_counter() - t0) / 60:.1f} min; open {report}")
    return report


EVAL_METRICS = (("ocr_exact", "held-out words read back exactly"), ("char_acc", "character accuracy"),
                ("nonword_exact", "random letters (no word) read back exactly"),
                ("scenes", "held-out scenes score (GenEval-style, shapes checked)"),
                ("scenes_without_shapes", "held-out scenes: counts, colours and positions only"))
EDIT_METRICS = (("word_exact", "new word read back exactly (held-out words)"),
                ("color_right", "asked colour right (held-out combinations)"),
                ("psnr_untouched", "PSNR of what the instruction does not touch (dB)"),
                ("shift_px", "offset of colour-only edits against the input (px, phase correlation)"))


def _summary(path: Path) -> dict:
    return json.loads(path.read_text())["summary"] if path.is_file() else {}


def write_report(out: Path, model: Path, rec: Recipe, times: dict, wall: float) -> Path:
    """DIR/report.html (the Jinja2 template demo_template.html): the steps with their times, data counts, loss
    curve, samples, the eval table and the edits."""
    from qimage.templates import render

    steps = [(step, times.get("steps", {}).get(step.name, {})) for step in rec.steps]
    written = {str(p.relative_to(out)) for p in out.rglob("*.png")}
    data = json.loads((out / "data" / "clean" / "report.json").read_text())
    page = render("demo_template.html", "qimage.train", model=str(model), wall=wall,
                  total_seconds=times.get("total_seconds", 0), steps=steps, data=data, counts=data["counts"], prompts=PROMPTS, edits=EDITS, written=written, nan=float("nan"),
                  before=_summary(out / "eval" / "before.json"), after=_summary(out / "eval" / "after.json"),
                  edit=_summary(out / "edit" / "eval.json"), eval_metrics=EVAL_METRICS, edit_metrics=EDIT_METRICS)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
