"""Rollout prompts for post-training: items ``{"prompt", "text" or None, "meta" or None}``, drawn by step.

    letters   random 4-letter strings (uniform A-Z), in the eval's caption format and colour pairs
    words     4-letter English words of the training vocabulary (qimage.synth.words), same format
    scenes    `qimage synth scenes` captions (rows layout, objects at scale 2: the toy's scenes) with their answer keys
    file      one prompt per line; ``text`` is the first quoted string of the line

None of them is an eval prompt: letters and words skip the eval's held-out words and non-words, and synth scenes never
draws a held-out combination. ``draw(step, n)`` is a pure function of (seed, step), so a resumed run and every DDP
process see the same prompts.
"""
from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from qimage.errors import UserError

from .config import Prompts, parse_size
from .rewards import quoted

SOURCES = ("letters", "words", "scenes", "file")


class PromptPool:
    def __init__(self, cfg: Prompts, seed: int, needs_text: bool = False):
        from .eval import COLOR_PAIRS, HELDOUT_WORDS, NONWORDS

        self.cfg, self.seed = cfg, seed
        self.banned = set(HELDOUT_WORDS) | set(NONWORDS)
        self.pairs = COLOR_PAIRS
        self.size = parse_size(cfg.size, "prompts.size")
        self.lines = self._read_file(cfg.file, needs_text) if cfg.file else []
        shares = {"letters": cfg.letters, "words": cfg.words, "scenes": cfg.scenes, "file": 1.0 if cfg.file else 0.0}
        if cfg.file and cfg.letters + cfg.words + cfg.scenes > 0:
            raise UserError("prompts: give either a file or shares of letters/words/scenes, not both")
        total = sum(shares.values())
        self.names = [k for k in SOURCES if shares[k] > 0]
        self.p = np.array([shares[k] / total for k in self.names])
        if needs_text and "scenes" in self.names:
            raise UserError("prompts.scenes has no quoted text for an OCR reward: use reward weighted or scenes")

    @staticmethod
    def _read_file(path: str, needs_text: bool) -> list[str]:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"prompts.file {p} does not exist")
        try:
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError:
            raise UserError(f"prompts.file {p} is not UTF-8 text") from None
        if not lines:
            raise UserError(f"prompts.file {p} has no prompts")
        if needs_text:
            for k, ln in enumerate(lines, 1):
                if quoted(ln) is None:
                    raise UserError(f"prompts.file {p}:{k} has no quoted text for the OCR reward: {ln[:60]!r}")
        return lines

    def draw(self, step: int, n: int) -> list[dict]:
        rng = np.random.default_rng([self.seed, step, 0x5EED])
        kinds = rng.choice(len(self.names), size=n, p=self.p)
        return [self._one(self.names[int(k)], rng, step, i) for i, k in enumerate(kinds)]

    def _one(self, kind: str, rng, step: int, i: int) -> dict:
        from .eval import PROMPT

        if kind == "file":
            line = self.lines[int(rng.integers(len(self.lines)))]
            return {"prompt": line, "text": quoted(line), "meta": None, "kind": kind}
        if kind == "scenes":
            return self._scene(rng)
        while True:
            if kind == "letters":
                text = "".join(rng.choice(list(string.ascii_uppercase), 4))
            else:
                vocab = _vocabulary()
                text = vocab[int(rng.integers(len(vocab)))]
            if text not in self.banned:
                break
        bg, fg = self.pairs[int(rng.integers(len(self.pairs)))]
        return {"prompt": PROMPT.format(bg=bg, fg=fg, word=text), "text": text, "meta": None, "kind": kind}

    def _scene(self, rng) -> dict:
        from qimage.synth import scenes
        from qimage.synth.runner import RunConfig, context

        ctx = context(RunConfig(kind="scenes", n=1, out=".", width=self.size[0], height=self.size[1], scale=2.0,
                                layout="rows"))
        s = scenes.make(ctx, np.random.default_rng(rng.integers(2**63)), "en")
        return {"prompt": s.caption, "text": None, "meta": s.meta, "kind": "scenes"}


def _vocabulary() -> tuple[str, ...]:
    from qimage.synth import words

    return words.vocabulary()
