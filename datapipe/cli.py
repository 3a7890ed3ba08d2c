"""`qimage data ...`: the cleaning pipeline's commands. Heavy imports (ray, cv2) happen inside the handlers."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="clean image folders: Qwen-Image's seven-stage pipeline on Ray",
                              description="Qwen-Image's seven-stage data cleaning as a Ray Data pipeline.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    r = sub.add_parser("run", help="clean INPUT_DIR into OUT_DIR (kept/ and rejected/ Parquet, report.json, report.html)",
                       description="Score every file under INPUT_DIR (recursively) with the recipe's filters; write "
                                   "OUT_DIR/kept/*.parquet, OUT_DIR/rejected/*.parquet, report.json and report.html. "
                                   "A killed run restarted with the same arguments resumes where it stopped.")
    r.add_argument("input_dir", metavar="INPUT_DIR", help="a folder, or an object-store URI (s3://bucket/raw, gs://...)")
    r.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="a folder or an object-store URI")
    r.add_argument("--recipe", metavar="FILE", help="YAML merged over the default recipe (see `qimage data recipe`)")
    r.add_argument("--address", metavar="ADDR", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    r.add_argument("--stages", metavar="A-B", default="1-7", help="run only stages A..B of 1..7, or a list such as 1-2,5 "
                                                                   "(default 1-7); "
                                                                   "broken files are always rejected")
    r.add_argument("--overwrite", action="store_true", help="discard an earlier run in OUT_DIR made with other inputs or recipe")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_run)

    c = sub.add_parser("recipe", help="print the default recipe (YAML) to start your own from")
    c.add_argument("--check", metavar="FILE", help="validate FILE merged over the default instead, print the result")
    c.set_defaults(func=_recipe)

    d = sub.add_parser("demo", help="write a folder of sample photos with planted defects to try `data run` on")
    d.add_argument("dir", metavar="DIR")
    d.set_defaults(func=_demo)

    f = sub.add_parser("filters", help="list the filters, their stages and what their score measures")
    f.set_defaults(func=_filters)


def _run(args: argparse.Namespace) -> int:
    from qimage.datapipe.pipeline import run
    from qimage.datapipe.storage import display_uri

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    rep = run(args.input_dir, args.out, recipe_path=args.recipe, stages=args.stages, address=args.address,
              overwrite=args.overwrite, progress=not args.quiet, log=log)
    c = rep["counts"]
    pairs = c.get("pairs", {})
    what = f"{c['inputs']} files" if not pairs.get("inputs") else \
        f"{c['inputs']} samples ({c['files']} files; {pairs['inputs']} edit pairs, {pairs['kept']} kept)"
    print(f"{what}: {c['kept']} kept, {c['rejected']} rejected -> {display_uri(args.out)}/report.html")
    for s in rep["stages_detail"]:
        by = ", ".join(f"{f['name']} {f['rejected']}" for f in s["filters"] if f["rejected"])
        if by:
            print(f"  stage {s['stage']}: {by}")
    return 0


def _recipe(args: argparse.Namespace) -> int:
    from qimage.datapipe import recipe as R

    if args.check:
        import yaml

        print(yaml.safe_dump(R.load(args.check), sort_keys=False, allow_unicode=True), end="")
    else:
        print(R.default_text(), end="")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qimage.datapipe.demo import build
    from qimage.errors import UserError

    p = Path(args.dir)
    if p.exists() and any(p.iterdir()):
        raise UserError(f"{p} exists and is not empty")
    expected = build(p)
    bad = sum(v is not None for v in expected.values())
    print(f"{len(expected)} files in {p}: {len(expected) - bad} should be kept, {bad} rejected (each by a named filter)")
    return 0


def _filters(args: argparse.Namespace) -> int:
    from qimage.datapipe.filters import load_all

    for cls in sorted(load_all().values(), key=lambda c: c.stage):
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        print(f"stage {cls.stage}  {cls.name:16s} {doc.split(': ', 1)[-1]}")
    return 0
