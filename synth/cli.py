"""`qimage synth KIND -n N -o DIR ...`: the synthesisers' command (registered by qimage/cli.py).

Arguments are parsed as strings and checked by the handler, so bad input is always one `UserError` line and exit
status 2 (argparse's own errors would print a usage block). Heavy modules load inside the handler.
"""
from __future__ import annotations

from qimage.errors import UserError

KINDS_HELP = "pure | compose | complex | scenes | words"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="synthesise text-rendering (pure, compose, complex) or shape-scene samples",
        description="Write N samples (ID.png + ID.txt + ID.json) and manifest.json into DIR. "
                    "The same --seed gives the same bytes for any --workers.")
    p.add_argument("kind", metavar="KIND", help=KINDS_HELP)
    p.add_argument("-n", dest="n", default="16", help="number of samples (default 16)")
    p.add_argument("-o", "--out", dest="out", default=None, help="output directory (required)")
    p.add_argument("--lang", default="en", help="en | zh | mix (default en)")
    p.add_argument("--size", default="512x512", help="WxH in pixels (default 512x512)")
    p.add_argument("--seed", default="0", help="random seed (default 0)")
    p.add_argument("--workers", default="1", help="worker processes (default 1)")
    p.add_argument("--fonts", default=None, help="folder of extra .ttf/.otf/.ttc fonts")
    p.add_argument("--faces", default=None,
                   help="draw with these faces only: comma-separated labels such as 'Arimo 700' "
                        "(an unknown label lists them all; default: every face that suits the kind)")
    p.add_argument("--pairs", default=None,
                   help="words only: draw these background/text colour pairs, e.g. 'white/black,navy blue/yellow' "
                        "(default: 12 pairs on light and dark backgrounds; all: every pair of their colours with "
                        "contrast >= 3)")
    p.add_argument("--scale", default="1",
                   help="scenes only: object size factor, 0.25-2 (default 1: radii 5-20%% of the shorter side)")
    p.add_argument("--layout", default="random",
                   help="scenes only: random placement (default) or rows: one canonical layout per caption")
    p.add_argument("--max-text-area", dest="max_text_area", default=None,
                   help="pure and complex: the largest share of the image the text boxes may cover, 0.05-1 (default 0.3, "
                        "under the data pipeline's intensive_text 0.35; 1: no cap)")
    p.add_argument("--backgrounds", default=None, help="folder of background photos for compose")
    p.add_argument("--edit-pairs", action="store_true", help="also write an edited target per sample in DIR/edits/")
    p.set_defaults(func=handle)


def _int(name: str, value: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise UserError(f"{name} {value!r}: expected an integer") from None


def _float(name: str, value: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise UserError(f"{name} {value!r}: expected a number") from None


def handle(args) -> int:
    from .runner import RunConfig, parse_size, run

    if not args.out:
        raise UserError("-o DIR is required: where to write the samples")
    w, h = parse_size(args.size)
    cfg = RunConfig(kind=args.kind, n=_int("-n", args.n), out=args.out, lang=args.lang, width=w, height=h,
                    seed=_int("--seed", args.seed), workers=_int("--workers", args.workers), fonts=args.fonts,
                    faces=args.faces, pairs=args.pairs, backgrounds=args.backgrounds, edit_pairs=bool(args.edit_pairs),
                    scale=_float("--scale", args.scale), layout=args.layout,
                    **({} if args.max_text_area is None else
                       {"max_text_area": _float("--max-text-area", args.max_text_area)}))
    manifest = run(cfg)
    print(f"wrote {manifest['count']} {cfg.kind} samples to {cfg.out}")
    return 0
