"""The `qimage` command.

Each package contributes its subcommands through a `register(subparsers)` function in its own `cli.py`
(`qimage.synth.cli`, `qimage.datapipe.cli`, `qimage.train.cli`, `qimage.commands`). Those modules import
heavy libraries (torch, ray) inside their handlers so that `qimage --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from qimage import __version__
from qimage.errors import UserError

COMMAND_MODULES = ("qimage.commands", "qimage.synth.cli", "qimage.datapipe.cli", "qimage.train.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qimage", description="Qwen-Image at toy scale.")
    parser.add_argument("--version", action="version", version=f"qimage {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"qimage: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qimage: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug, not bad input: still one line unless asked
        if os.environ.get("QIMAGE_DEBUG"):
            raise
        print(f"qimage: internal error: {type(e).__name__}: {e} (set QIMAGE_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
