"""`qimage init` and `qimage generate`: write a model directory, and generate images from one."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from qimage.errors import UserError
from qimage.quiet import quiet_libraries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write a random-initialised model directory (diffusers QwenImagePipeline layout)")
    p.add_argument("dir", help="output directory (must not exist or be empty)")
    p.add_argument("--preset", default="tiny",
                   help="model size: tiny or toy; tiny-edit or toy-edit for an edit model (default tiny)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--zero-cond-t", action="store_true",
                   help="edit models: modulate the condition image's tokens at t=0 (Qwen-Image-Edit-2511's zero_cond_t)")
    p.set_defaults(func=cmd_init)

    g = sub.add_parser("generate", help="generate images from prompts")
    g.add_argument("prompt", nargs="?", help="the prompt (or use --prompts-file)")
    g.add_argument("--prompts-file", help="a UTF-8 file with one prompt per line; image k uses seed + k")
    g.add_argument("-o", "--output", required=True, help="OUT.png for one prompt, a directory for --prompts-file")
    g.add_argument("--model", help="model directory (diffusers QwenImagePipeline layout; default: the shipped toy)")
    g.add_argument("--size", help="WxH in pixels, multiples of 16 (default: the model's, else 1024x1024)")
    g.add_argument("--steps", type=int, help="sampling steps (default: the model's, else 50)")
    g.add_argument("--cfg", type=float, help="true-CFG scale; <= 1 disables CFG (default: the model's, else 4)")
    g.add_argument("--negative", help="negative prompt (default ' ')")
    g.add_argument("--seed", type=int, default=0, help="seed of the first image (default 0)")
    g.add_argument("--batch-size", type=int, default=4, help="prompts per forward pass (does not change images)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("edit", help="edit images by an instruction (diffusers QwenImageEditPipeline layout)")
    e.add_argument("inputs", nargs="+", metavar="IMAGE [IMAGE ...] INSTRUCTION",
                   help="input image(s), then the instruction (several images: Edit-Plus, the output takes the "
                        "last one's size); with --instructions-file, images only")
    e.add_argument("--instructions-file", help="a UTF-8 file with one instruction per line; edit k uses seed + k")
    e.add_argument("-o", "--output", required=True, help="OUT.png for one instruction, a directory for a file of them")
    e.add_argument("--model", help="edit model directory (default: the shipped edit toy)")
    e.add_argument("--size", help="WxH of the output (default: the input's, resized by the model's rule)")
    e.add_argument("--steps", type=int, help="sampling steps (default: the model's, else 50)")
    e.add_argument("--cfg", type=float, help="true-CFG scale; <= 1 disables CFG (default: the model's, else 4)")
    e.add_argument("--negative", help="negative prompt (default ' ')")
    e.add_argument("--seed", type=int, default=0, help="seed of the first edit (default 0)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.set_defaults(func=cmd_edit)


def cmd_init(args) -> int:
    quiet_libraries()
    from qimage.model_dir import init_model_dir
    from qimage.pipeline import SETTINGS_FILE
    from qimage.presets import PRESETS

    root = init_model_dir(args.dir, args.preset, args.seed, zero_cond_t=args.zero_cond_t)
    p = PRESETS[args.preset]
    settings = {"width": p.default_size[0], "height": p.default_size[1], "steps": 20, "cfg": 4.0}
    if p.condition_area:
        settings["condition_area"] = p.condition_area
    (root / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    print(f"wrote a random-initialised {args.preset} model to {root}")
    return 0


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 256x256, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UserError(f"--size must be positive in both dimensions, got {text!r}")
    return w, h


def read_prompts(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read prompts file {path}: {e}") from None
    prompts = [line.strip() for line in lines if line.strip()]
    if not prompts:
        raise UserError(f"prompts file {path} has no prompts")
    return prompts


def cmd_generate(args) -> int:
    if (args.prompt is None) == (args.prompts_file is None):
        raise UserError("give either a PROMPT or --prompts-file, not both or neither")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    size = parse_size(args.size) if args.size else (None, None)
    prompts = read_prompts(args.prompts_file) if args.prompts_file else [args.prompt]
    out = Path(args.output)
    if args.prompt is not None and out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise UserError(f"-o {out} should be an image file name such as out.png")

    quiet_libraries()
    from tqdm.auto import tqdm

    from qimage.model_dir import resolve_model
    from qimage.pipeline import Pipeline

    pipe = Pipeline.load(resolve_model(args.model), device=args.device)
    width, height = (pipe.settings.width, pipe.settings.height) if size == (None, None) else size
    pipe.check_size(width, height)
    pipe.check_steps(pipe.settings.steps if args.steps is None else args.steps)
    kwargs = dict(width=width, height=height, steps=args.steps, cfg=args.cfg, negative_prompt=args.negative)

    images = []
    bar = tqdm(total=len(prompts), desc="generating", unit="img")
    for start in range(0, len(prompts), args.batch_size):
        chunk = prompts[start : start + args.batch_size]
        images += pipe(chunk, seeds=[args.seed + start + k for k in range(len(chunk))], **kwargs)
        bar.update(len(chunk))
    bar.close()

    if args.prompt is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        images[0].save(out)
        print(f"wrote {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for k, (prompt, image) in enumerate(zip(prompts, images)):
        name = f"{k:04d}.png"
        image.save(out / name)
        index.append({"file": name, "prompt": prompt, "seed": args.seed + k})
    (out / "prompts.json").write_text(json.dumps(index, ensure_ascii=False, indent=2) + "\n")
    from qimage.grid import image_grid

    image_grid(images).save(out / "grid.png")
    print(f"wrote {len(images)} images, prompts.json and grid.png to {out}")
    return 0


def read_image(path: str):
    """An RGB PIL image, or a UserError naming the file and what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise UserError(f"input image {p} does not exist")
    if not p.is_file():
        raise UserError(f"input image {p} is not a file")
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except UnidentifiedImageError:
        raise UserError(f"input image {p} is not an image PIL can read") from None
    except (OSError, ValueError) as e:
        raise UserError(f"input image {p} cannot be read: {e}") from None


def cmd_edit(args) -> int:
    from qimage.model_dir import SHIPPED_EDIT_TOY

    if args.instructions_file:
        paths, instructions = args.inputs, read_prompts(args.instructions_file)
    else:
        if len(args.inputs) < 2:
            raise UserError("give an input IMAGE and an INSTRUCTION (or --instructions-file)")
        paths, instructions = args.inputs[:-1], [args.inputs[-1]]
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    size = parse_size(args.size) if args.size else (None, None)
    out = Path(args.output)
    if not args.instructions_file and out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise UserError(f"-o {out} should be an image file name such as out.png")
    images = [read_image(p) for p in paths]
    model = args.model
    if model is None:
        if not (SHIPPED_EDIT_TOY / "model_index.json").is_file():
            raise UserError("no shipped edit toy in this install; pass --model DIR (an edit model directory)")
        model = SHIPPED_EDIT_TOY

    quiet_libraries()
    from tqdm.auto import tqdm

    from qimage.edit import EditPipeline, check_edit_model

    pipe = EditPipeline.load(check_edit_model(model), device=args.device)
    if args.size:
        pipe.check_size(*size)  # a size asked for is used as is (the Python API floors it, as diffusers does)
    inputs = pipe.inputs(images, *size)
    pipe.check_size(inputs.width, inputs.height)
    pipe.check_steps(pipe.settings.steps if args.steps is None else args.steps)
    kwargs = dict(width=inputs.width, height=inputs.height, steps=args.steps, cfg=args.cfg,
                  negative_prompt=args.negative)
    one = len(instructions) == 1
    edited = []
    bar = tqdm(total=len(instructions), desc="editing", unit="img", disable=one)
    for k, text in enumerate(instructions):
        edited += pipe(images, text, seeds=args.seed + k, progress=one, **kwargs)
        bar.update(1)
    bar.close()
    if not args.instructions_file:
        out.parent.mkdir(parents=True, exist_ok=True)
        edited[0].save(out)
        print(f"wrote {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for k, (text, image) in enumerate(zip(instructions, edited)):
        image.save(out / f"{k:04d}.png")
        index.append({"file": f"{k:04d}.png", "instruction": text, "seed": args.seed + k, "inputs": list(paths)})
    (out / "edits.json").write_text(json.dumps(index, ensure_ascii=False, indent=2) + "\n")
    from qimage.grid import image_grid

    image_grid([images[-1].resize(edited[0].size), *edited]).save(out / "grid.png")
    print(f"wrote {len(edited)} edits, edits.json and grid.png (input first) to {out}")
    return 0
