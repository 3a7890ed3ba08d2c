"""What a synthesiser returns, and the per-sample random generator.

A sample is an image, a caption and metadata (docs/contracts.md section 2); an edit-pair sample also carries its
target, a sample of its own whose metadata holds the instruction and the region the instruction changed.
The generator for sample `index` of a run with seed `seed` is seeded from (seed, index, stream), so any worker can
make any sample and the bytes never depend on the number of workers or on the order of work.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

SCHEMA_VERSION = 1
STREAMS = {"sample": 0, "edit": 1}


@dataclass
class Sample:
    image: Image.Image
    caption: str
    meta: dict
    edit: "Sample | None" = field(default=None)


def rng_for(seed: int, index: int, stream: str = "sample") -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index), STREAMS[stream]])))


def quad_json(quad, width: int, height: int) -> list[list[float]]:
    """A quad clamped to the image and rounded to 0.1 px, as written to ID.json."""
    return [[round(min(max(float(x), 0.0), width - 1.0), 1), round(min(max(float(y), 0.0), height - 1.0), 1)]
            for x, y in quad]


def sample_lang(rng, lang: str) -> str:
    """`mix` runs draw each sample's language: English, Chinese, or a bilingual text."""
    if lang != "mix":
        return lang
    return ("en", "zh", "mix")[int(rng.choice(3, p=[0.35, 0.35, 0.3]))]


def build(synth, ctx, rng, lang: str, edit_rng=None) -> Sample:
    """Plan, render and caption one sample with synthesiser module `synth`; with `edit_rng`, also its edit target.

    The caption generator is spawned from the sample's generator, and the target's from that one, so the source
    is the same bytes whether or not edit pairs are requested."""
    p = synth.plan(ctx, rng, lang)
    cap_rng = rng.spawn(1)[0]
    s = synth.to_sample(ctx, p, cap_rng)
    if edit_rng is not None:
        s.edit = synth.make_edit(ctx, p, edit_rng, cap_rng)
    return s
